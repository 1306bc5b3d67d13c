# Process checks shared by the setup scripts (sourced, not run).
#
# The daemons here run without systemd, so each script keeps a pid file and
# must tell "our daemon is up" from "the pid file is stale". Two checks:
#
#   pid_running PID          the process exists and is not a zombie (PID 1
#                            here does not reap, and kill -0 succeeds on
#                            zombies).
#   pid_is PID PATTERN       pid_running, and its command line contains
#                            PATTERN (a plain substring).
#
# Use pid_is for a pid read from a file (it may be reused by anything) and
# pid_running for a child just started with `&`: until it has exec'd, its
# command line is still the calling script's, so a pattern check fails for a
# process that is about to become the daemon.

pid_running() {
  local pid=$1 stat state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ $state != Z && $state != X ]]
}

pid_is() {
  local pid=$1 pattern=$2 cmdline
  pid_running "$pid" || return 1
  # Read whole, then match: `tr | grep -q` under pipefail fails when grep
  # exits before tr has written everything.
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$pattern"* ]]
}
