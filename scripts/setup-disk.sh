#!/usr/bin/env bash
# What VM disk builds and their tests need on the host, as root, on Debian 12.
# Idempotent: installs only what is missing.
#
#   qemu-utils   qemu-img: a disk node converts raw to qcow2 and grows cloud
#                images on the host
#   util-linux   losetup: the build detaches loop devices an interrupted
#                disk run left attached
#   fdisk        sfdisk: tests read a built disk's partition table
#   mtools       mdir: tests read the ESP without mounting it (this kind of
#                host kernel has no vfat)
#   e2fsprogs    debugfs: tests read the root file system without mounting it
#   time         /usr/bin/time: the disk build's peak-memory test
#
# The disk itself is partitioned and filled inside the builder image (see
# examples/vm's vm-builder layer), not on the host. Loop devices must be
# usable (`losetup -f` finds one).
set -euo pipefail

PACKAGES=(qemu-utils util-linux fdisk mtools e2fsprogs time)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-disk: installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
[[ -e /dev/loop-control ]] || modprobe loop 2>/dev/null || true
losetup -f >/dev/null || { echo "setup-disk: error: no free loop device" >&2; exit 1; }
echo "setup-disk: ok (qemu-img $(qemu-img --version | head -1 | awk '{print $3}'))"
