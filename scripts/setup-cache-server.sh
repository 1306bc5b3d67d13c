#!/usr/bin/env bash
# Starts nginx as a Bazel HTTP cache (WebDAV PUT on /ac/ and /cas/) on
# 127.0.0.1, for ov's remote-cache tests and benchmark. Run as root on
# Debian 12. Idempotent: when the server already answers with this
# script's config, nothing changes.
#
# What it does:
#   1. installs Debian's `nginx` package when missing (its WebDAV module is
#      built in); package scripts are kept from starting the distribution's
#      own nginx service;
#   2. writes $DIR/nginx.conf: user root (the workers must write the cache
#      dir), `dav_methods PUT DELETE`, `create_full_put_path on` (so
#      /ac/<key> and /cas/<sha256> need no mkdir), `client_max_body_size 0`
#      (multi-GB blobs), and temp paths under $DIR (no dependence on
#      /var/lib/nginx);
#   3. starts `nginx -c $DIR/nginx.conf` in its own session, without
#      systemd, unless it already runs with that config (a changed config
#      restarts it);
#   4. checks a PUT, a GET and a HEAD of a missing key.
#
# Facts other scripts and tests rely on:
#   URL         http://127.0.0.1:$PORT   (default port 8081)
#   cache root  $DIR/cache   (wipe it to empty the cache)
#   pid file    $DIR/nginx.pid, log $DIR/error.log
#
# Environment:
#   OV_CACHE_SERVER_DIR=DIR    default /var/lib/ov-setup/nginx-cache
#   OV_CACHE_SERVER_PORT=PORT  default 8081
set -euo pipefail

DIR=${OV_CACHE_SERVER_DIR:-/var/lib/ov-setup/nginx-cache}
PORT=${OV_CACHE_SERVER_PORT:-8081}
URL="http://127.0.0.1:$PORT"

log() { printf 'setup-cache-server: %s\n' "$*"; }
die() { printf 'setup-cache-server: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run this script as root (it installs nginx and runs it as root)"

if ! command -v nginx >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  added=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    added=1
  fi
  log "installing nginx"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nginx >/dev/null ||
    { apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nginx >/dev/null; }
  ((added)) && rm -f "$policy"
fi

mkdir -p "$DIR/cache" "$DIR/tmp"
conf="$DIR/nginx.conf"
want=$(cat <<EOF
# Written by ov scripts/setup-cache-server.sh: a Bazel HTTP cache on WebDAV.
user root;
worker_processes 2;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $DIR/tmp/body;
  proxy_temp_path $DIR/tmp/proxy;
  fastcgi_temp_path $DIR/tmp/fastcgi;
  uwsgi_temp_path $DIR/tmp/uwsgi;
  scgi_temp_path $DIR/tmp/scgi;
  client_max_body_size 0;
  sendfile on;
  server {
    listen 127.0.0.1:$PORT;
    root $DIR/cache;
    location / {
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
  }
}
EOF
)

running() {
  local pid
  pid=$(cat "$DIR/nginx.pid" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

if running && [[ -f $conf ]] && [[ $(cat "$conf") == "$want" ]]; then
  log "already running at $URL"
else
  if running; then
    log "config changed: restarting"
    kill "$(cat "$DIR/nginx.pid")"
    for _ in $(seq 50); do running || break; sleep 0.1; done
  fi
  # As $(...) read it (no final newline), so the next run compares equal.
  printf '%s' "$want" >"$conf"
  nginx -t -q -c "$conf" || die "nginx refused $conf"
  # From /, so no daemon holds on to the checkout it was started in.
  (cd / && exec setsid nohup nginx -c "$conf" >>"$DIR/error.log" 2>&1 </dev/null) &
  for _ in $(seq 50); do
    curl -s -o /dev/null --max-time 1 "$URL/" && break
    sleep 0.1
  done
  log "started at $URL (root $DIR/cache)"
fi

probe="$URL/cas/setup-probe-$$"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary probe "$probe")
[[ $code == 201 || $code == 204 ]] || die "PUT $probe answered $code (see $DIR/error.log)"
[[ $(curl -sf "$probe") == probe ]] || die "GET $probe did not return what was put"
curl -s -o /dev/null -X DELETE "$probe"
code=$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/ac/missing-$$")
[[ $code == 404 ]] || die "HEAD of a missing key answered $code, not 404"
log "ok: PUT, GET, DELETE and a missing HEAD behave at $URL"
