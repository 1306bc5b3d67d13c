#!/usr/bin/env bash
# Remote cache throughput: ov's client against curl, both to the nginx
# WebDAV cache that scripts/setup-cache-server.sh starts on 127.0.0.1.
#
# Target (from the issue): upload and download of a 1 GiB blob at least
# 0.8x curl's throughput each way. Each run makes a fresh random blob (so
# the server lacks it), then in turn: ov uploads it and downloads it into an
# empty store (cache/benches/remote.rs: HEAD, streamed PUT with the digest
# re-checked; GET streamed to disk with the digest checked before the blob
# enters the store), and curl PUTs it (`-T`) and GETs it to a file. Figures
# are medians of OV_BENCH_RUNS runs (default 3), the tools interleaved;
# each upload starts after a `sync`, so neither tool pays for writing back
# the other's (or the blob's) dirty pages.
# Also prints the peak RSS of ov's process for the whole round trip.
#
# Environment: OV_BENCH_RUNS, OV_BENCH_SIZE_MIB (default 1024),
# OV_BENCH_DIR (scratch, default a temp dir; needs ~4x the size free).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${OV_BENCH_RUNS:-3}
SIZE_MIB=${OV_BENCH_SIZE_MIB:-1024}
log() { printf 'bench: %s\n' "$*" >&2; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { printf '%s' "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

bash scripts/setup-cache-server.sh >&2
BASE=http://127.0.0.1:${OV_CACHE_SERVER_PORT:-8081}
SERVER_ROOT=${OV_CACHE_SERVER_DIR:-/var/lib/ov-setup/nginx-cache}/cache
cargo bench -p ov-cache --bench remote --no-run >&2
BIN=$(cargo bench -p ov-cache --bench remote --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*remote-[^"]*\)".*/\1/p' | tail -1)
[[ -x $BIN ]] || { log "cannot find the bench binary"; exit 1; }

WORK=${OV_BENCH_DIR:-$(mktemp -d /var/tmp/ov-bench-remote.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
ov_up=() ov_down=() curl_up=() curl_down=() rss=()
for ((r = 1; r <= RUNS; r++)); do
  blob=$WORK/blob
  head -c "$((SIZE_MIB << 20))" /dev/urandom >"$blob"
  sum=$(sha256sum "$blob" | cut -d' ' -f1)
  sync
  prefix=bench-$$-$r
  run_ov() {
    rm -rf "$WORK/ov"
    # The bench syncs after storing the blob, before it times the upload.
    out=$("$BIN" "$BASE/$prefix-ov/" "$blob" "$WORK/ov")
    ov_up+=("$(sed -n 's/.*upload_s=\([0-9.]*\).*/\1/p' <<<"$out")")
    ov_down+=("$(sed -n 's/.*download_s=\([0-9.]*\).*/\1/p' <<<"$out")")
    rss+=("$(sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' <<<"$out")")
    rm -rf "$WORK/ov"
  }
  run_curl() {
    local t0 t1
    sync
    t0=$(now)
    curl -sf -T "$blob" "$BASE/$prefix-curl/cas/$sum" -o /dev/null
    t1=$(now)
    curl_up+=("$(sub "$t1" "$t0")")
    t0=$(now)
    curl -sf "$BASE/$prefix-curl/cas/$sum" -o "$WORK/curl-down"
    t1=$(now)
    curl_down+=("$(sub "$t1" "$t0")")
    rm -f "$WORK/curl-down"
  }
  if ((r % 2)); then run_ov; run_curl; else run_curl; run_ov; fi
  log "run $r: ov up ${ov_up[-1]}s down ${ov_down[-1]}s; curl up ${curl_up[-1]}s down ${curl_down[-1]}s"
  rm -rf "$SERVER_ROOT/$prefix-ov" "$SERVER_ROOT/$prefix-curl"
done
mib=$SIZE_MIB
ou=$(median "${ov_up[@]}") od=$(median "${ov_down[@]}")
cu=$(median "${curl_up[@]}") cd_=$(median "${curl_down[@]}")
awk -v m="$mib" -v ou="$ou" -v od="$od" -v cu="$cu" -v cd="$cd_" -v rss="$(median "${rss[@]}")" 'BEGIN {
  printf "blob: %d MiB, medians of the runs\n", m
  printf "upload:   ov %.0f MiB/s, curl %.0f MiB/s: %.2fx curl (target >= 0.8x)\n", m / ou, m / cu, cu / ou
  printf "download: ov %.0f MiB/s, curl %.0f MiB/s: %.2fx curl (target >= 0.8x)\n", m / od, m / cd, cd / od
  printf "peak RSS of the ov round trip: %.1f MiB\n", rss / 1024
}'
