#!/usr/bin/env bash
# Machine B against a cold build: `examples/web` restored from the remote
# cache (a fresh cache dir, a read-only remote, the images gone from the
# engine) against building it without a cache.
#
# Target (from the issue): the restore at least 5x faster than the cold
# build. Each run makes the project its own (a marker in its lowest layer
# and a tag of its own), so every image above the preamble is new to the
# engine; the preamble (packages on the base, the same in every run) may
# come from podman's layer cache, which only makes the cold build faster
# and the ratio smaller. Per run:
#   1. cold    an empty cache dir and no remote cache: wall time of the
#              whole `ov build`;
#   2. machine A, another empty cache dir, builds the same project again
#              (the engine's layer cache makes this quick) and uploads to
#              the nginx cache of scripts/setup-cache-server.sh (untimed);
#   3. the images above the preamble and the tag are removed;
#   4. restore machine B, an empty cache dir, `--remote-cache-mode read`:
#              wall time of the whole `ov build` (fetching, loading the
#              images back, the tag).
# Prints the medians and their ratio.
#
# Environment: OV_BENCH_RUNS (default 3), OV_BIN (default: the release
# binary, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${OV_BENCH_RUNS:-3}
BASE_IMAGE=localhost/bookworm-minbase:1
source bench/lib.sh
check_host
release_ov
bash scripts/setup-cache-server.sh >&2

WORK=$(mktemp -d /var/tmp/ov-bench-restore.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
summary() { grep '"event":"summary"' "$1" | tail -1; }
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1" | head -1; }

cold=() restore=()
for ((r = 1; r <= RUNS; r++)); do
  marker=bench$$x$r$(date +%s%N)
  proj=$WORK/web-$r
  cp -r "$ROOT/examples/web" "$proj"
  sed -i "s/^\(\s*\)tag: .*/\1tag: $marker/" "$proj/overthink.yml"
  printf '  task:\n    - write: /etc/ov-bench-run\n      content: %s\n' "$marker" >>"$proj/layers/supervisord/layer.yml"
  base=http://127.0.0.1:${OV_CACHE_SERVER_PORT:-8081}/bench-restore-$marker/

  t0=$(now)
  "$OV" -C "$proj" --cache-dir "$WORK/cold-$r" build --progress json >"$WORK/cold-$r.json"
  t_cold=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
  s=$(summary "$WORK/cold-$r.json")
  [[ $(field "$s" engine_builds) -gt 0 ]] || die "run $r: the cold build built nothing: $s"

  "$OV" -C "$proj" --cache-dir "$WORK/a-$r" build --progress json --remote-cache "$base" >"$WORK/a-$r.json"
  s=$(summary "$WORK/a-$r.json")
  [[ $(field "$s" errors) == 0 ]] || die "run $r: machine A's uploads failed: $s"

  podman rmi "localhost/ov-examples/web:$marker" >/dev/null
  for id in image:web layer:web@web layer:supervisord@web; do
    key=$("$OV" -C "$proj" --cache-dir "$WORK/a-$r" explain "$id" | sed -n 's/^key //p')
    podman rmi -f "localhost/ov-node:$key" >/dev/null
  done

  t0=$(now)
  "$OV" -C "$proj" --cache-dir "$WORK/b-$r" build --progress json --remote-cache "$base" --remote-cache-mode read >"$WORK/b-$r.json"
  t_restore=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
  s=$(summary "$WORK/b-$r.json")
  [[ $(field "$s" engine_builds) == 0 ]] || die "run $r: machine B built: $s"
  [[ $(field "$s" images_restored) == 3 ]] || die "run $r: machine B did not load the 3 images back: $s"
  log "run $r: cold $t_cold s, restore $t_restore s"
  cold+=("$t_cold") restore+=("$t_restore")
  podman rmi "localhost/ov-examples/web:$marker" >/dev/null 2>&1 || true
  curl -s -X DELETE "$base" >/dev/null || true
done

c=$(median "${cold[@]}")
b=$(median "${restore[@]}")
x=$(ratio "$c" "$b" '%.1f')
printf '\n| measure | median of %d | runs |\n|---|---|---|\n' "$RUNS"
printf '| cold build (A) | %s s | %s |\n' "$c" "${cold[*]}"
printf '| restore from the remote (B) | %s s | %s |\n' "$b" "${restore[*]}"
verdict=missed
awk -v x="$x" 'BEGIN { exit !(x >= 5) }' && verdict=met
printf '\nrestore is %sx faster than the cold build (target >= 5x: %s)\n' "$x" "$verdict"
