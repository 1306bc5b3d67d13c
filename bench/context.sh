#!/usr/bin/env bash
# Build contexts: ov's peak memory and time sending a large layer, against
# `podman build` of the same context.
#
# Target (from the issue): the peak RSS of `ov build` of a layer holding a
# 1 GiB file stays under 150 MB, whatever the size of the layer (ov streams
# the context tar to the engine instead of building it in memory). The time
# is printed as a ratio to `podman build` of the very same context.
#
# The project is made here: one image `ctxbench`, one layer `big` whose
# directory holds big.bin (OV_BENCH_MIB MiB of random bytes: every byte is
# read and sent, none is a hole) and whose one task copies it into the
# image, so the engine unpacks and commits all of it. Before each timed
# build the first 32 bytes of big.bin get a fresh random salt, so neither
# tool finds the COPY in podman's layer cache.
#
# Equivalence: a first, untimed `ov build` runs with OV_KEEP_CONTEXTS (see
# `Engine::build` in rules/src/engine.rs), which unpacks the context ov
# sends: the layer directory plus `.ov.Containerfile`. podman builds that
# directory with that file, labelled as ov labels the node. GNU time
# (`/usr/bin/time -v`) measures both: peak RSS and wall time. podman's RSS
# is the CLI's own (it builds in-process); ov's engine is the API service,
# whose memory is not ov's.
#
# Environment:
#   OV_BENCH_MIB=N     size of big.bin in MiB (default 1024; CI smoke: 64)
#   OV_BENCH_RUNS=N    timed runs per tool (default 3), tools interleaved;
#                      the figures are medians
#   OV_BENCH_STRICT=1  exit 1 when the memory target is missed
#   OV_BIN=PATH        the ov binary (default: build and use the release one)
# Needs root (podman's rootful store, shared with the API service that
# scripts/setup.sh starts). Removes its files and the images it built on
# exit; never touches other images.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIB=${OV_BENCH_MIB:-1024}
RUNS=${OV_BENCH_RUNS:-3}
STRICT=${OV_BENCH_STRICT:-0}
RSS_TARGET_MB=150
BASE_IMAGE=localhost/bookworm-minbase:1
NODE=layer:big@ctxbench
NODE_LABEL=org.overthinkos.ov.node
BENCH_TAG=localhost/ov-bench-context:podman

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "OV_BENCH_MIB must be a positive integer, not '$MIB'"
check_host
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) not found; run scripts/setup.sh"
release_ov

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ov-bench-context.XXXXXX")
# Every image this bench builds carries the node label of its own project.
ours() { podman images -a -q --no-trunc --filter "label=$NODE_LABEL=$NODE" 2>/dev/null | sort -u; }
remove_ours() {
  local ids
  ids=$(ours)
  # shellcheck disable=SC2086
  [[ -z $ids ]] || podman rmi -f $ids >/dev/null 2>&1 || true
}
cleanup() {
  remove_ours
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- the project ----------------------------------------------------------------

P=$TMP/project
mkdir -p "$P/layers/big"
cp "$ROOT/tests/fixtures/deb-tasks/build.yml" "$P/"
cat >"$P/overthink.yml" <<'EOF'
version: 2026.141.1600
include:
    - image.yml
    - build.yml
discover:
    layer:
        - path: layers
defaults:
    registry: localhost/ov-bench-context
    build: [deb]
    distro: [debian:12, debian]
    tag: bench
EOF
cat >"$P/image.yml" <<EOF
version: 2026.141.1600
image:
    ctxbench:
        base: $BASE_IMAGE
        layer:
            - big
EOF
cat >"$P/layers/big/layer.yml" <<'EOF'
layer:
  task:
    - copy: big.bin
      to: /opt/big.bin
      mode: "0644"
EOF
log "writing $MIB MiB of random data"
head -c "$((MIB << 20))" /dev/urandom >"$P/layers/big/big.bin"

salt() { head -c 32 /dev/urandom | dd of="$1" bs=32 count=1 conv=notrunc status=none; }
# GNU time -v: peak RSS in MB and wall time in seconds.
rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.3f", s }' "$1"; }

# --- the context ov sends, kept ------------------------------------------------

log "untimed ov build, keeping its context"
OV_KEEP_CONTEXTS=$TMP/ctx "$OV" -C "$P" --cache-dir "$TMP/cache.0" build --progress plain "$NODE" >"$TMP/ov.0.log" 2>&1 ||
  { cat "$TMP/ov.0.log" >&2; die "ov build failed"; }
CTX=$(find "$TMP/ctx" -mindepth 1 -maxdepth 1 -type d | sort | tail -n 1)
[[ -n $CTX && -f $CTX/.ov.Containerfile ]] || die "ov kept no context in $TMP/ctx"
cmp -s "$CTX/big.bin" "$P/layers/big/big.bin" || die "the context ov sent does not hold big.bin as it is"
remove_ours

# --- runs ----------------------------------------------------------------------

declare -a OV_RSS OV_T PM_RSS PM_T
run_ov() {
  local r=$1 out=$TMP/ov.$1.time
  salt "$P/layers/big/big.bin"
  /usr/bin/time -v -o "$out" "$OV" -C "$P" --cache-dir "$TMP/cache.$r" build --progress plain "$NODE" \
    >"$TMP/ov.$r.log" 2>&1 || { cat "$TMP/ov.$r.log" >&2; die "ov build (run $r) failed"; }
  grep -qE '^1 built' "$TMP/ov.$r.log" || die "ov build (run $r) did not build the layer: $(tail -n 1 "$TMP/ov.$r.log")"
  OV_RSS+=("$(rss_mb "$out")")
  OV_T+=("$(wall_s "$out")")
  remove_ours
  log "run $r: ov ${OV_T[-1]} s, peak RSS ${OV_RSS[-1]} MB"
}
run_podman() {
  local r=$1 out=$TMP/podman.$1.time
  salt "$CTX/big.bin"
  /usr/bin/time -v -o "$out" podman build --layers -t "$BENCH_TAG" --label "$NODE_LABEL=$NODE" \
    -f "$CTX/.ov.Containerfile" "$CTX" >"$TMP/podman.$r.log" 2>&1 ||
    { tail -n 30 "$TMP/podman.$r.log" >&2; die "podman build (run $r) failed"; }
  PM_RSS+=("$(rss_mb "$out")")
  PM_T+=("$(wall_s "$out")")
  remove_ours
  log "run $r: podman ${PM_T[-1]} s, peak RSS ${PM_RSS[-1]} MB"
}

interleave "of $MIB MiB"
ov_rss=$(median "${OV_RSS[@]}")
ov_t=$(median "${OV_T[@]}")
pm_rss=$(median "${PM_RSS[@]}")
pm_t=$(median "${PM_T[@]}")
ratio=$(ratio "$ov_t" "$pm_t")
max_rss=$(printf '%s\n' "${OV_RSS[@]}" | sort -g | tail -n 1)
rss_ok=$(awk -v r="$max_rss" -v t="$RSS_TARGET_MB" 'BEGIN { print (r < t) ? "ok" : "MISSED" }')

echo
echo "layer of one $MIB MiB file, median of $RUNS run(s), tools interleaved"
printf '%-16s %12s %12s\n' "" "ov" "podman"
printf '%-16s %10s MB %10s MB   ov max %s MB, target < %s MB: %s\n' "peak RSS" "$ov_rss" "$pm_rss" "$max_rss" "$RSS_TARGET_MB" "$rss_ok"
printf '%-16s %10s s  %10s s    ov/podman %s\n' "wall time" "$ov_t" "$pm_t" "$ratio"
echo "runs: ov RSS ${OV_RSS[*]} MB, ${OV_T[*]} s | podman RSS ${PM_RSS[*]} MB, ${PM_T[*]} s"

if [[ $STRICT == 1 && $rss_ok != ok ]]; then
  exit 1
fi
