#!/usr/bin/env bash
# examples/web: ov against `podman build` of the same Containerfiles.
#
# Targets (from the issue): a no-op rebuild at least 20x faster than
# `podman build` with a warm layer cache; a cold build at most 1.15x the cold
# `podman build`. Both ratios come from one run of this script, the tools
# interleaved, each figure the median of OV_BENCH_RUNS runs.
#
# Equivalence. ov builds every node as its own Containerfile (`FROM <parent
# image id>` plus the node's steps) on its own context. With
# OV_KEEP_CONTEXTS=DIR, ov's engine client unpacks each context tar it sends
# (the layer's directory, generated `.ov/...` files and `.ov.Containerfile`)
# to DIR/<n>-<tag>/ (see `Engine::build` in rules/src/engine.rs). The script
# checks those against `ov image generate web` (same nodes in the same order,
# same steps, same generated files, the layer directory's files), then builds
# the same directories with `podman build --layers`, one build per node, each
# FROM the previous node's image (FROM is the only line it rewrites), with
# the label ov gives each node and, for the image node, a second tag as ov
# tags the image. The podman side thus does the same work: the same steps,
# the same contexts, the same chain of separate builds and commits.
#
# Each run:
#   cold   remove every image of this chain (images labelled with one of its
#          node ids, which covers ov's localhost/ov-node:<key> tags, the
#          intermediate layer-cache images and the bench's own builds, plus
#          localhost/ov-examples/web:* and localhost/ov-bench-web:*), then
#          `podman image prune -f`; then `ov build web` with an empty
#          --cache-dir, or the podman chain with `--layers` (no --no-cache:
#          the cache is emptied instead, so both tools also write it).
#          localhost/bookworm-minbase:1 is never removed, nor the
#          localhost/ov-node:* images of other projects.
#   no-op  the same build again: ov on its warm store, podman on its warm
#          layer cache (checked: every image id unchanged, so every step was
#          a cache hit).
# Odd runs time ov first, even runs podman first. Layer-cache hits in the
# cold builds (a step some other build on this machine left, such as the
# metadata-only `USER root` on the base image) are counted and printed.
#
# Environment:
#   OV_BENCH_RUNS=N    timed runs per tool (default 3; 1 for a quick check)
#   OV_BENCH_STRICT=1  exit 1 when a target is missed
#   OV_BENCH_LOGS=DIR  keep every build's output there (podman's with the
#                      time of each node's build)
# Needs root (podman's rootful store, shared with the API service that
# scripts/setup.sh starts) and the Debian mirror (cold builds run apt-get).
# Works from any directory; builds ov (release) first; removes its temporary
# files and the bench's podman images on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROJECT=$ROOT/examples/web
IMAGE=web
IMAGE_TAG=localhost/ov-examples/web
BENCH_REPO=localhost/ov-bench-web
BASE_IMAGE=localhost/bookworm-minbase:1
NODE_LABEL=org.overthinkos.ov.node
RUNS=${OV_BENCH_RUNS:-3}
STRICT=${OV_BENCH_STRICT:-0}
COLD_TARGET=1.15
NOOP_TARGET=20

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

check_host
release_ov

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ov-bench-web.XXXXXX")
cleanup() {
  local ids
  if [[ -n ${OV_BENCH_LOGS:-} ]]; then
    mkdir -p "$OV_BENCH_LOGS" && cp "$TMP"/*.log "$OV_BENCH_LOGS"/ 2>/dev/null || true
  fi
  ids=$(podman images -q --no-trunc --filter "reference=$BENCH_REPO" 2>/dev/null | sort -u)
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086
    podman rmi -f $ids >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# --- the chain, from `ov image generate` --------------------------------------

GEN=$TMP/generate.txt
"$OV" -C "$PROJECT" image generate "$IMAGE" >"$GEN"
# One directory per node under $TMP/gen/<i>: `id`, `from`, `steps` (the lines
# after FROM), `files/<path>` (each context file as generate prints it).
awk -v out="$TMP/gen" '
  function flush_file() { if (file != "") { close(file); file = "" } }
  /^# node: / {
    flush_file(); i++; dir = out "/" (i - 1); system("mkdir -p \"" dir "/files\"")
    print substr($0, 9) > (dir "/id"); close(dir "/id"); state = "from"; next
  }
  state == "from" { print substr($0, 6) > (dir "/from"); close(dir "/from"); state = "steps"; next }
  /^# context file: / {
    flush_file(); path = substr($0, 17); file = dir "/files/" path
    sub(/\/[^\/]*$/, "", path); system("mkdir -p \"" dir "/files/" path "\"")
    printf "" > file; state = "file"; next
  }
  state == "file" && /^#\|/ { line = substr($0, 3); sub(/^ /, "", line); print line > file; next }
  state == "steps" { print > (dir "/steps") }
' "$GEN"
NODES=()
for d in "$TMP"/gen/*; do NODES+=("$(cat "$d/id")"); done
N=${#NODES[@]}
((N > 0)) || die "ov image generate $IMAGE printed no node"
# Sections are separated by one blank line: drop it from each node's steps.
for ((i = 0; i < N; i++)); do
  f=$TMP/gen/$i/steps
  touch "$f"
  if [[ -s $f && -z $(tail -n 1 "$f") ]]; then sed -i '$d' "$f"; fi
done
[[ $(cat "$TMP/gen/0/from") == "$BASE_IMAGE" ]] || die "the chain does not start FROM $BASE_IMAGE"
log "chain of $N nodes: ${NODES[*]}"

# --- cleaning ------------------------------------------------------------------

# Removes every image of this chain, whoever built it (see the header).
clean_chain() {
  local ids=() n
  for n in "${NODES[@]}"; do
    mapfile -t -O "${#ids[@]}" ids < <(podman images -a -q --no-trunc --filter "label=$NODE_LABEL=$n")
  done
  for n in "$IMAGE_TAG" "$BENCH_REPO"; do
    mapfile -t -O "${#ids[@]}" ids < <(podman images -q --no-trunc --filter "reference=$n")
  done
  if ((${#ids[@]})); then
    mapfile -t ids < <(printf '%s\n' "${ids[@]}" | sort -u)
    podman rmi -f "${ids[@]}" >/dev/null 2>&1 || true
  fi
  podman image prune -f >/dev/null
  podman image exists "$BASE_IMAGE" || die "$BASE_IMAGE disappeared"
}

# --- ov -----------------------------------------------------------------------

# ov_build RUN KIND: one `ov build`; prints its wall time. The cold build
# keeps its contexts in $TMP/ctx.RUN.
ov_build() {
  local run=$1 kind=$2 cache=$TMP/cache.$1 out=$TMP/ov.$2.$1.log t0 t1 summary
  local -a env=()
  [[ $kind == cold ]] && env=(OV_KEEP_CONTEXTS="$TMP/ctx.$run")
  t0=$(now)
  env "${env[@]}" "$OV" -C "$PROJECT" --cache-dir "$cache" build --progress plain "$IMAGE" >"$out" 2>&1 ||
    { cat "$out" >&2; die "ov build ($kind, run $run) failed"; }
  t1=$(now)
  summary=$(grep -E '^[0-9]+ built, [0-9]+ cached' "$out" | tail -n 1 || true)
  case $kind in
    cold) [[ $summary == "$N built, 0 cached"* ]] || die "cold ov build did not build all $N nodes: $summary" ;;
    noop) [[ $summary == "0 built, $N cached"* ]] || die "no-op ov build rebuilt something: $summary" ;;
  esac
  sub "$t1" "$t0"
}

# The layer-cache hits of ov's cold build, as `hits/steps`, from the node logs
# in its store; `?` when the store holds no readable log.
ov_cache_hits() {
  local store=$TMP/cache.$1 steps hits
  steps=$(grep -raE '^STEP [0-9]+/[0-9]+: ' "$store" 2>/dev/null | grep -vc ': FROM ' || true)
  hits=$({ grep -rac '^--> Using cache ' "$store" 2>/dev/null || true; } | awk -F: '{ s += $NF } END { print s + 0 }')
  if ((steps)); then echo "$hits/$steps"; else echo "?"; fi
}

# --- equivalence: kept contexts vs `image generate` ------------------------------

# check_contexts RUN: the contexts ov sent in its cold build RUN are the nodes
# of `image generate`, in order, with its steps and files, each FROM the
# previous node's image.
check_contexts() {
  local run=$1 i dir from prev_tag layer want got
  local -a dirs
  mapfile -t dirs < <(find "$TMP/ctx.$run" -mindepth 1 -maxdepth 1 -type d | sort)
  ((${#dirs[@]} == N)) || die "run $run: ov sent ${#dirs[@]} build contexts, image generate lists $N nodes"
  for ((i = 0; i < N; i++)); do
    dir=${dirs[i]}
    # Steps: everything after FROM, as generate renders them.
    tail -n +2 "$dir/.ov.Containerfile" | diff -q - "$TMP/gen/$i/steps" >/dev/null ||
      die "run $run: node ${NODES[i]}: the steps ov built differ from image generate (diff $dir/.ov.Containerfile $TMP/gen/$i/steps)"
    # Generated files, as generate prints them (trailing blanks trimmed).
    while IFS= read -r -d '' want; do
      got=$dir/${want#"$TMP/gen/$i/files/"}
      [[ -f $got ]] || die "run $run: node ${NODES[i]}: no ${got#"$dir/"} in the context ov sent"
      sed 's/[[:space:]]*$//' "$got" | diff -q - "$want" >/dev/null ||
        die "run $run: node ${NODES[i]}: ${got#"$dir/"} differs from image generate"
    done < <(find "$TMP/gen/$i/files" -type f -print0)
    # A layer's context is its directory.
    if [[ ${NODES[i]} =~ ^layer:([^@]+)@ ]]; then
      layer=${BASH_REMATCH[1]}
      diff -rq -x .ov -x .ov.Containerfile "$PROJECT/layers/$layer" "$dir" >/dev/null ||
        die "run $run: node ${NODES[i]}: its context is not layers/$layer"
    fi
    # FROM: the base image, then the image ov built for the previous node.
    from=$(head -n 1 "$dir/.ov.Containerfile")
    if ((i == 0)); then
      want=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")
    else
      prev_tag=$(basename "${dirs[i - 1]}")
      prev_tag=${prev_tag#*-}
      prev_tag=localhost/ov-node:${prev_tag#localhost_ov-node_}
      want=$(podman image inspect --format '{{.Id}}' "$prev_tag")
    fi
    [[ $from == "FROM ${want#sha256:}" ]] || die "run $run: node ${NODES[i]} is not built FROM the previous node ($from)"
  done
}

# prepare_podman: podman's contexts are run 1's, FROM rewritten to the chain.
prepare_podman() {
  local i dir
  local -a dirs
  mapfile -t dirs < <(find "$TMP/ctx.1" -mindepth 1 -maxdepth 1 -type d | sort)
  for ((i = 0; i < N; i++)); do
    dir=$TMP/podman/$i
    mkdir -p "$TMP/podman"
    cp -a "${dirs[i]}" "$dir"
    if ((i == 0)); then
      sed -i "1s|.*|FROM $BASE_IMAGE|" "$dir/.ov.Containerfile"
    else
      sed -i "1s|.*|FROM $BENCH_REPO:$((i - 1))|" "$dir/.ov.Containerfile"
    fi
  done
}

# --- podman -------------------------------------------------------------------

# podman_chain RUN KIND: the chain of `podman build`s; prints its wall time.
podman_chain() {
  local run=$1 kind=$2 out=$TMP/podman.$2.$1.log t0 t1 t i
  local -a tags
  : >"$out"
  t0=$(now)
  for ((i = 0; i < N; i++)); do
    tags=(-t "$BENCH_REPO:$i")
    ((i == N - 1)) && tags+=(-t "$BENCH_REPO:image")
    t=$(now)
    podman build --layers "${tags[@]}" --label "$NODE_LABEL=${NODES[i]}" \
      -f "$TMP/podman/$i/.ov.Containerfile" "$TMP/podman/$i" >>"$out" 2>&1 ||
      { tail -n 30 "$out" >&2; die "podman build of ${NODES[i]} ($kind, run $run) failed"; }
    printf 'bench: built %s (%s s)\n' "${NODES[i]}" "$(sub "$(now)" "$t")" >>"$out"
  done
  t1=$(now)
  sub "$t1" "$t0"
}
podman_ids() {
  local i
  for ((i = 0; i < N; i++)); do podman image inspect --format '{{.Id}}' "$BENCH_REPO:$i"; done
}
podman_cache_hits() {
  local out=$TMP/podman.cold.$1.log steps hits
  steps=$(grep -aE '^STEP [0-9]+/[0-9]+: ' "$out" | grep -vc ': FROM ' || true)
  hits=$(grep -ac '^--> Using cache ' "$out" || true)
  echo "$hits/$steps"
}

# --- runs ---------------------------------------------------------------------

declare -a OV_COLD OV_NOOP PM_COLD PM_NOOP OV_HITS PM_HITS
run_ov() {
  local r=$1 t
  clean_chain
  t=$(ov_build "$r" cold)
  OV_COLD+=("$t")
  OV_HITS+=("$(ov_cache_hits "$r")")
  check_contexts "$r"
  ((r == 1)) && prepare_podman
  t=$(ov_build "$r" noop)
  OV_NOOP+=("$t")
  log "run $r: ov cold ${OV_COLD[-1]} s (layer-cache hits ${OV_HITS[-1]}), no-op $t s"
}
run_podman() {
  local r=$1 t ids
  clean_chain
  t=$(podman_chain "$r" cold)
  PM_COLD+=("$t")
  PM_HITS+=("$(podman_cache_hits "$r")")
  ids=$(podman_ids)
  t=$(podman_chain "$r" noop)
  PM_NOOP+=("$t")
  [[ $(podman_ids) == "$ids" ]] || die "run $r: the warm podman chain rebuilt a step (an image id changed)"
  log "run $r: podman cold ${PM_COLD[-1]} s (layer-cache hits ${PM_HITS[-1]}), no-op $t s"
}

interleave
ov_cold=$(median "${OV_COLD[@]}")
pm_cold=$(median "${PM_COLD[@]}")
ov_noop=$(median "${OV_NOOP[@]}")
pm_noop=$(median "${PM_NOOP[@]}")
cold_ratio=$(ratio "$ov_cold" "$pm_cold")
noop_speedup=$(ratio "$pm_noop" "$ov_noop" %.1f)
cold_ok=$(awk -v r="$cold_ratio" -v t="$COLD_TARGET" 'BEGIN { print (r <= t) ? "ok" : "MISSED" }')
noop_ok=$(awk -v r="$noop_speedup" -v t="$NOOP_TARGET" 'BEGIN { print (r >= t) ? "ok" : "MISSED" }')

echo
echo "examples/web ($N nodes: ${NODES[*]}), median of $RUNS run(s), tools interleaved"
printf '%-8s %12s %12s %14s %12s\n' "" "ov" "podman" "ratio" "target"
printf '%-8s %10.3f s %10.3f s %8s ov/pm %9s  %s\n' cold "$ov_cold" "$pm_cold" "$cold_ratio" "<= $COLD_TARGET" "$cold_ok"
printf '%-8s %10.3f s %10.3f s %8s x    %9s  %s\n' no-op "$ov_noop" "$pm_noop" "$noop_speedup" ">= $NOOP_TARGET" "$noop_ok"
echo "runs (s):  ov cold ${OV_COLD[*]} | podman cold ${PM_COLD[*]} | ov no-op ${OV_NOOP[*]} | podman no-op ${PM_NOOP[*]}"
# Each run's two builds ran back to back, under the same load on a shared
# machine: the median of the per-run ratios is a second view of the same data.
pair_cold=() pair_noop=()
for ((r = 0; r < RUNS; r++)); do
  pair_cold+=("$(ratio "${OV_COLD[r]}" "${PM_COLD[r]}")")
  pair_noop+=("$(ratio "${PM_NOOP[r]}" "${OV_NOOP[r]}" %.1f)")
done
echo "per-run ratios: cold ${pair_cold[*]} (median $(median "${pair_cold[@]}")) | no-op ${pair_noop[*]} (median $(median "${pair_noop[@]}"))"
echo "layer-cache hits in cold builds (hits/steps): ov ${OV_HITS[*]} | podman ${PM_HITS[*]}"

if [[ $STRICT == 1 && ($cold_ok != ok || $noop_ok != ok) ]]; then
  exit 1
fi
