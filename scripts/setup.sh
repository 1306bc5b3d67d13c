#!/usr/bin/env bash
# Installs what ov's tests, examples and benchmarks need on a Debian 12
# machine, as root. Idempotent: a second run changes nothing and takes a few
# seconds. Works from any directory.
#
# What it does, step by step (each step prints its time):
#   1. packages   apt-get install --no-install-recommends of PACKAGES below;
#                 `apt-get update` only when the lists are missing or a
#                 package has no candidate (or the install fails once).
#   2. config     /etc/containers/containers.conf: runtime=runc,
#                 default_ulimits=[], cgroup_manager=cgroupfs (see
#                 /work/shared/docs/host-notes.md section 1). A file this
#                 script does not manage is kept once as *.orig.
#   3. service    `podman system service --time=0` on the socket below, in
#                 its own session. Left alone when already running with the
#                 current config; restarted when the config changed (the
#                 service reads containers.conf only at start).
#   4. base       (skip with OV_SETUP_BASE=0) a Debian bookworm minbase made
#                 by debootstrap from the host's own apt mirror, cached as a
#                 tar and imported into podman, only when the image is missing.
#   5. smoke      the API answers _ping; `podman run --rm BASE_IMAGE true`.
#
# Facts other scripts can rely on (nothing is exported):
#   API socket     /run/podman/podman.sock   (root only; bollard's
#                  Docker::connect_with_podman_defaults() finds it)
#   service pid    /run/podman/service.pid, log /var/log/podman-service.log
#   base image     localhost/bookworm-minbase:1   (CMD ["/bin/bash"]; no apt
#                  lists inside, so run `apt-get update` before installing)
#   base tar       /var/lib/ov-setup/bookworm-minbase.tar (rootfs, uncompressed)
#
# Environment:
#   OV_SETUP_BASE=0         skip the base image (step 4) and its smoke run
#   OV_SETUP_STATE_DIR=DIR  where the base tar lives (default /var/lib/ov-setup)
#   OV_SETUP_MIRROR=URL     Debian mirror for debootstrap (default: the host's
#                           apt sources, else http://deb.debian.org/debian)
set -euo pipefail

PACKAGES=(
  # ov's tests and benchmark (chromium: the graph page's browser tests)
  graphviz ninja-build b3sum time pkg-config chromium
  # podman, rootful, with the runc runtime and netavark bridge networking
  # (crun fails on this kernel's hybrid cgroups; iptables is what netavark
  # drives for the bridge)
  podman runc conmon netavark aardvark-dns iptables
  # base image and the API checks
  debootstrap curl ca-certificates tar
)
SOCK=/run/podman/podman.sock
PIDFILE=/run/podman/service.pid
# Hash of containers.conf the running service was started with; /run is
# cleared with the service on reboot.
CONF_STAMP=/run/podman/service.conf-sha256
SERVICE_LOG=/var/log/podman-service.log
CONTAINERS_CONF=/etc/containers/containers.conf
STATE_DIR=${OV_SETUP_STATE_DIR:-/var/lib/ov-setup}
BASE_IMAGE=localhost/bookworm-minbase:1
BASE_TAR=$STATE_DIR/bookworm-minbase.tar
BASE_SUITE=bookworm
WITH_BASE=${OV_SETUP_BASE:-1}
PING_TIMEOUT=${OV_SETUP_PING_TIMEOUT:-30}

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

T_ALL=$EPOCHREALTIME
T_STEP=$T_ALL
step_begin() { T_STEP=$EPOCHREALTIME; }
# step_end NAME MESSAGE: prints the step's result and how long it took.
step_end() {
  local now=$EPOCHREALTIME
  printf 'setup: %-9s %s (%.2f s)\n' "$1" "$2" "$(bc_sub "$now" "$T_STEP")"
}
bc_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

[[ $(id -u) -eq 0 ]] || die "run this script as root (it installs packages and starts the podman service)"

# --- 1. packages ------------------------------------------------------------

# A temporary policy-rc.d keeps package scripts from starting daemons (there
# is no init system to hand them to). An existing one is left alone.
POLICY_RC=/usr/sbin/policy-rc.d
policy_rc_added=0
cleanup() { if ((policy_rc_added)); then rm -f "$POLICY_RC"; fi; }
trap cleanup EXIT

apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }
has_candidate() {
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
  [[ -n $c && $c != "(none)" ]]
}

step_begin
# One dpkg-query for all: names not listed as installed are missing.
declare -A installed=()
while read -r name status; do
  [[ $status == 'install ok installed' ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e $POLICY_RC ]]; then
    printf '#!/bin/sh\n# Added by ov scripts/setup.sh for the length of an install.\nexit 101\n' >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"
    policy_rc_added=1
  fi
  need_update=0
  if ! apt_lists_present; then
    need_update=1
  else
    for p in "${missing[@]}"; do has_candidate "$p" || { need_update=1; break; }; done
  fi
  if ((need_update)); then
    log "apt-get update"
    apt-get update -qq
  fi
  log "installing ${missing[*]}"
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    ((need_update)) && die "apt-get install ${missing[*]} failed"
    # Stale lists give 404s on the mirror: refresh them once and retry.
    log "install failed; apt-get update and retry"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  step_end packages "installed ${#missing[@]}: ${missing[*]}"
else
  step_end packages "unchanged (${#PACKAGES[@]} already installed)"
fi

# --- 2. containers.conf -----------------------------------------------------

MANAGED_MARK='# Managed by ov scripts/setup.sh'
read -r -d '' WANT_CONF <<EOF || true
$MANAGED_MARK; edits are overwritten.
# See host-notes.md section 1: crun fails on this host's hybrid cgroups and
# the compat API ignores HostConfig.Runtime, so runc is set here; the default
# NOFILE/NPROC ulimits cannot be applied without CAP_SYS_RESOURCE; there is
# no systemd, so cgroupfs. The podman service reads this file only at start.
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF

step_begin
mkdir -p /etc/containers
if [[ -f $CONTAINERS_CONF ]] && [[ $(cat "$CONTAINERS_CONF") == "$WANT_CONF" ]]; then
  step_end config "unchanged $CONTAINERS_CONF"
else
  if [[ -f $CONTAINERS_CONF && ! -e $CONTAINERS_CONF.orig ]] && ! grep -qF "$MANAGED_MARK" "$CONTAINERS_CONF"; then
    cp -p "$CONTAINERS_CONF" "$CONTAINERS_CONF.orig"
    log "kept the previous $CONTAINERS_CONF as $CONTAINERS_CONF.orig"
  fi
  printf '%s\n' "$WANT_CONF" >"$CONTAINERS_CONF.tmp"
  mv -f "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
  step_end config "wrote $CONTAINERS_CONF"
fi
conf_sha=$(sha256sum "$CONTAINERS_CONF" | cut -d' ' -f1)

# --- 3. podman API service --------------------------------------------------

# shellcheck source=scripts/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
alive() { pid_is "$1" 'podman system service'; }
# The running service: the pidfile's, else one started by hand on our socket.
service_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if alive "$pid"; then echo "$pid"; return 0; fi
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    if alive "$pid" && pid_is "$pid" "$SOCK"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}
ping_ok() { [[ $(curl -s --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null) == OK ]]; }
stop_service() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || return 0; sleep 0.1; done
  die "podman service (pid $pid) does not stop"
}
log_tail() { tail -n 20 "$SERVICE_LOG" 2>/dev/null | sed 's/^/    /' >&2 || true; }

step_begin
mkdir -p "$(dirname "$SOCK")"
action=""
if pid=$(service_pid); then
  if [[ $(cat "$CONF_STAMP" 2>/dev/null) == "$conf_sha" ]]; then
    action="already running (pid $pid)"
  else
    log "containers.conf changed since the service started: restarting pid $pid"
    stop_service "$pid"
  fi
fi
if [[ -z $action ]]; then
  rm -f "$SOCK"
  printf '\n=== %s setup.sh starts podman system service\n' "$(date -Is)" >>"$SERVICE_LOG"
  # Without job control the background child is not a process-group leader,
  # so setsid execs in place and $! is podman's own pid.
  # From /: a daemon keeps the directory it started in, and conmon fails
  # every container ("Failed to get working directory") once that is gone
  # (a CI checkout removed after its run).
  (cd / && exec setsid nohup podman system service --time=0 "unix://$SOCK" >>"$SERVICE_LOG" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$PIDFILE"
  echo "$conf_sha" >"$CONF_STAMP"
  action="started (pid $pid)"
fi
deadline=$(awk -v t="$EPOCHREALTIME" -v d="$PING_TIMEOUT" 'BEGIN { printf "%d", t + d }')
until ping_ok; do
  # pid_running, not alive: a service just started may not have exec'd yet.
  if ! pid_running "$pid"; then
    log_tail
    die "podman service exited; last lines of $SERVICE_LOG above"
  fi
  if ((${EPOCHREALTIME%.*} >= deadline)); then
    log_tail
    die "no answer on $SOCK after ${PING_TIMEOUT}s; last lines of $SERVICE_LOG above"
  fi
  sleep 0.1
done
step_end service "$action; $SOCK answers"

# --- 4. base image ----------------------------------------------------------

# The Debian mirror the host's apt uses for the bookworm suite: deb822
# *.sources or one-line *.list entries; else deb.debian.org.
host_mirror() {
  local f files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]})) || { echo http://deb.debian.org/debian; return; }
  awk -v suite="$BASE_SUITE" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " suite " ") && uris != "" && !found) {
        split(uris, u, " "); print u[1]; found = 1
      }
      types = ""; suites = ""; uris = ""; enabled = ""
    }
    FILENAME ~ /\.sources$/ {
      if (FILENAME != cur) { flush(); cur = FILENAME }
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^[ \t]*#/) next
      key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      if (key == "types") types = val
      else if (key == "uris") uris = val
      else if (key == "suites") suites = val
      else if (key == "enabled") enabled = tolower(val)
      next
    }
    {
      if (FILENAME != cur) { flush(); cur = FILENAME }
      line = $0; sub(/#.*/, "", line)
      n = split(line, w, " ")
      if (n < 3 || w[1] != "deb") next
      i = 2
      if (w[i] ~ /^\[/) { while (i <= n && w[i] !~ /\]$/) i++; i++ }
      if (i + 1 <= n && w[i + 1] == suite && !found) { print w[i]; found = 1 }
    }
    END { flush(); if (!found) print "http://deb.debian.org/debian" }
  ' "${files[@]}"
}

if [[ $WITH_BASE != 0 ]]; then
  step_begin
  if podman image exists "$BASE_IMAGE"; then
    step_end base "unchanged ($BASE_IMAGE present)"
  else
    mkdir -p "$STATE_DIR"
    if [[ -s $BASE_TAR ]]; then
      log "importing the cached $BASE_TAR"
    else
      mirror=${OV_SETUP_MIRROR:-$(host_mirror)}
      rootfs=$STATE_DIR/rootfs.tmp
      rm -rf "$rootfs" "$BASE_TAR.tmp"
      log "debootstrap --variant=minbase $BASE_SUITE from $mirror (about 40 s)"
      t=$EPOCHREALTIME
      if ! debootstrap --variant=minbase "$BASE_SUITE" "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$STATE_DIR/debootstrap.log" | sed 's/^/    /' >&2
        die "debootstrap failed; see $STATE_DIR/debootstrap.log"
      fi
      log "debootstrap done ($(bc_sub "$EPOCHREALTIME" "$t") s)"
      # Downloaded .debs and apt lists are 80 MB of the 206; builds run
      # apt-get update anyway.
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
      mkdir -p "$rootfs/var/lib/apt/lists/partial"
      tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' -cf "$BASE_TAR.tmp" .
      mv -f "$BASE_TAR.tmp" "$BASE_TAR"
      rm -rf "$rootfs"
    fi
    podman import -q --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
    step_end base "imported $BASE_IMAGE from $BASE_TAR ($(du -m "$BASE_TAR" | cut -f1) MB)"
  fi
fi

# The OCI registry the image-cache tests push to (127.0.0.1:5000).
bash "$(dirname "${BASH_SOURCE[0]}")/setup-registry.sh"

# --- 5. smoke test ----------------------------------------------------------

step_begin
ping_ok || die "the podman API on $SOCK stopped answering"
api=$(curl -s --max-time 5 --unix-socket "$SOCK" http://d/version | sed -n 's/.*"ApiVersion":"\([^"]*\)".*/\1/p')
smoke="API $api on $SOCK"
if [[ $WITH_BASE != 0 ]]; then
  podman run --rm "$BASE_IMAGE" true || die "podman run --rm $BASE_IMAGE true failed"
  smoke="$smoke; podman run $BASE_IMAGE ok"
fi
step_end smoke "$smoke"

bash "$(dirname "${BASH_SOURCE[0]}")/setup-seed.sh"
# VM boots: qemu, OVMF, libvirtd and the test guest (see the script's header).
bash "$(dirname "${BASH_SOURCE[0]}")/setup-vm.sh"
bash "$(dirname "${BASH_SOURCE[0]}")/setup-cache-server.sh"
bash "$(dirname "${BASH_SOURCE[0]}")/setup-disk.sh"

# The Rust toolchain comes with the machine (rustup); make sure it is on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || die "cargo not found; install Rust (rustup) first"
log "ok ($(cargo --version)) in $(bc_sub "$EPOCHREALTIME" "$T_ALL") s"
