#!/usr/bin/env bash
# Starts a plain-HTTP OCI registry (Debian's `docker-registry`, the CNCF
# distribution registry) on 127.0.0.1:5000 for the image-cache tests and
# examples (`oci://127.0.0.1:5000/<namespace>`). Idempotent and without
# systemd: installs the package when missing, writes its config, and starts
# it in its own session unless one started by this script already answers.
# Run as root.
#
#   config   $STATE/config.yml (storage in $STATE/data, deletes enabled)
#   pid      /run/ov-registry.pid, log /var/log/ov-registry.log
#   check    GET http://127.0.0.1:5000/v2/ answers 200
#
# Environment: OV_REGISTRY_STATE_DIR (default /var/lib/ov-registry),
# OV_REGISTRY_ADDR (default 127.0.0.1:5000).
set -euo pipefail

STATE=${OV_REGISTRY_STATE_DIR:-/var/lib/ov-registry}
ADDR=${OV_REGISTRY_ADDR:-127.0.0.1:5000}
PIDFILE=/run/ov-registry.pid
LOG=/var/log/ov-registry.log

log() { printf 'setup-registry: %s\n' "$*"; }
die() { printf 'setup-registry: error: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run this script as root"

if ! command -v docker-registry >/dev/null; then
  if ! apt-get install -y --no-install-recommends docker-registry >/dev/null 2>&1; then
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry >/dev/null
  fi
  # The package's own service is not wanted (no systemd here, and the tests
  # start theirs); its init script may have started one on the same port.
  pkill_pid=$(cat /run/docker-registry.pid 2>/dev/null || true)
  [[ -n $pkill_pid ]] && kill "$pkill_pid" 2>/dev/null || true
fi

mkdir -p "$STATE/data"
conf="$STATE/config.yml"
want=$(cat <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: $ADDR
health:
  storagedriver:
    enabled: false
CONF
)
changed=0
if [[ ! -f $conf || $(cat "$conf") != "$want" ]]; then
  printf '%s\n' "$want" >"$conf"
  changed=1
fi

# shellcheck source=scripts/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
alive() { pid_is "$1" 'docker-registry serve'; }
answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$ADDR/v2/") == 200 ]]; }

pid=$(cat "$PIDFILE" 2>/dev/null || true)
if alive "$pid"; then
  if ((changed)); then
    log "config changed: restarting pid $pid"
    kill "$pid"
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  elif answers; then
    log "already running (pid $pid) on $ADDR"
    exit 0
  fi
fi
if ! alive "$pid" || ((changed)); then
  if answers; then
    die "something else answers on $ADDR; stop it or set OV_REGISTRY_ADDR"
  fi
  # From /, so no daemon holds on to the checkout it was started in.
  (cd / && exec setsid nohup docker-registry serve "$conf" >>"$LOG" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$PIDFILE"
fi
for _ in $(seq 100); do
  answers && { log "running (pid $pid) on $ADDR"; exit 0; }
  pid_running "$pid" || { tail -n 20 "$LOG" >&2; die "the registry exited; log above"; }
  sleep 0.1
done
die "no answer on http://$ADDR/v2/ after 10 s"
