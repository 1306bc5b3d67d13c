#!/usr/bin/env bash
# examples/vm's disk node against the same steps as a plain shell script,
# and what an edit that only the disk reads costs against redoing the rootfs.
#
# Targets (from the issue), ratios from one run of this script:
#   cold disk     `ov build disk:vm` with everything upstream cached and a
#                 disk_size never built, at most 1.05x the plain script: the
#                 very script ov ran (kept with OV_KEEP_DISK_SCRIPT=DIR, see
#                 rules/src/rule/disk/bootstrap.rs) run with `podman run
#                 --privileged -v /dev:/dev` in the same builder image, then
#                 `qemu-img convert` to qcow2 and a copy of the result kept
#                 (ov keeps it in its store).
#   disk_size     `ov build disk:vm` after changing only disk_size, and
#   template      after changing only a bootloader template line (a file the
#                 disk step reads), each at least 4x faster than
#   rootfs+disk   redoing the rootfs and the disk, as ov's own `ov vm build`
#                 does on every run (here: a rootfs input the builder ignores,
#                 `source.bootstrap_arch`, changed, so the same work reruns).
# Each figure is the wall time of the whole `ov build` (start-up, cache
# checks and recording included).
#
# Environment:
#   OV_BIN=PATH          the ov binary (default: a release build, made now)
#   OV_BENCH_CACHE=DIR   a cache dir to reuse (the rootfs takes minutes cold;
#                        default: a fresh one, filled by an untimed build)
#   OV_BENCH_STRICT=1    exit 1 when a target is missed
# Needs root, podman (scripts/setup.sh), the host tools of
# scripts/setup-disk.sh and the Debian mirror.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=1
BASE_IMAGE=localhost/bookworm-minbase:1
STRICT=${OV_BENCH_STRICT:-0}
BUILDER_IMAGE=localhost/ov-examples/vm-builder:dev
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

check_host
release_ov
TMP=$(mktemp -d /var/tmp/ov-bench-disk.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
CACHE=${OV_BENCH_CACHE:-$TMP/cache}
P=$TMP/project
cp -r "$ROOT/examples/vm" "$P"

ovb() { "$OV" -C "$P" --cache-dir "$CACHE" build disk:vm >>"$TMP/ov.log" 2>&1; }
# The seconds "$@" takes; a failure stops the script.
timed() { local t0=$EPOCHREALTIME; "$@"; awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.2f", a - b }'; }
set_size() { sed -i "s/^        disk_size: .*/        disk_size: $1/" "$P/vm.yml"; }

log "warm-up: the rootfs and a first disk (untimed), keeping the disk script"
# A size of its own, so the disk runs (and its script is kept) even when
# the cache dir already holds examples/vm's disk.
set_size "$((4000 + $$ % 90))M"
OV_KEEP_DISK_SCRIPT=$TMP/kept ovb || die "ov build disk:vm failed; see $TMP/ov.log"
[[ -f $TMP/kept/disk-vm.sh ]] || die "ov kept no disk script"

W=$TMP/plain
plain() {
  rm -rf "$W" && mkdir -p "$W" "$TMP/out"
  cp "$TMP/kept/disk-vm.sh" "$W/disk.sh"
  ln "$TMP/kept/rootfs-vm.tar" "$W/rootfs.tar"
  podman run --rm --privileged --user 0 -v /dev:/dev -v "$W:/ov" "$BUILDER_IMAGE" \
    /bin/bash /ov/disk.sh >>"$TMP/plain.log" 2>&1
  qemu-img convert -f raw -O qcow2 "$W/disk.raw" "$W/disk.qcow2"
  rm -f "$W/disk.raw"
  cp --sparse=always "$W/disk.qcow2" "$TMP/out/disk.qcow2"
}
# Each timed run starts with the page cache written back (`sync`, untimed),
# so no run pays for the writeback of the one before; the cold pair runs
# twice in opposite orders (ov, plain, plain, ov) and the ratio is of sums.
timed_synced() { sync; timed "$@"; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
log "cold disk: ov (a disk_size never built)"
set_size "$((4100 + $$ % 90))M"
t_ov1=$(timed_synced ovb)
log "cold disk: the same script, plainly (twice)"
t_plain=$(add "$(timed_synced plain)" "$(timed_synced plain)")
log "cold disk: ov again (another new disk_size)"
set_size "$((4300 + $$ % 40))M"
t_ov=$(add "$t_ov1" "$(timed_synced ovb)")

log "disk_size only"
set_size "$((4200 + $$ % 90))M"
t_size=$(timed_synced ovb)
log "a bootloader template line only"
sed -i 's/GRUB_TIMEOUT=0/GRUB_TIMEOUT=0 # bench/' "$P/build.yml"
t_tpl=$(timed_synced ovb)
log "rootfs and disk again"
sed -i 's/^            rootfs: ext4/            rootfs: ext4\n            bootstrap_arch: bench-'"$$"'/' "$P/vm.yml"
t_full=$(timed_synced ovb)

r_cold=$(ratio "$t_ov" "$t_plain")
r_size=$(ratio "$t_full" "$t_size" '%.1f')
r_tpl=$(ratio "$t_full" "$t_tpl" '%.1f')
missed=0
verdict() { if awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { exit !((op == "le") ? a <= b : a >= b) }'; then echo met; else echo MISSED; missed=1; fi; }
printf '| measure | ov | against | ratio | target |\n|---|---|---|---|---|\n'
printf '| cold disk node, two runs | %s s | plain script, two runs %s s | %s | <= 1.05: %s |\n' "$t_ov" "$t_plain" "$r_cold" "$(verdict "$r_cold" le 1.05)"
printf '| disk_size changed | %s s | rootfs + disk %s s | %sx faster | >= 4x: %s |\n' "$t_size" "$t_full" "$r_size" "$(verdict "$r_size" ge 4)"
printf '| bootloader template changed | %s s | rootfs + disk %s s | %sx faster | >= 4x: %s |\n' "$t_tpl" "$t_full" "$r_tpl" "$(verdict "$r_tpl" ge 4)"
if ((missed && STRICT)); then exit 1; fi
