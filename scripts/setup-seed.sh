#!/usr/bin/env bash
# Installs what the tests of VM seeds and cloud images need on a Debian 12
# machine, as root: qemu-utils, whose `qemu-img` makes the qcow2 the cloud
# image tests serve from 127.0.0.1. (Seed ISOs are written by ov itself and
# need no tool.) Idempotent: when the package is there it does nothing.
# Called from scripts/setup.sh; works from any directory.
set -euo pipefail

if command -v qemu-img >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
fi
command -v qemu-img >/dev/null || { echo "setup-seed: qemu-img still missing" >&2; exit 1; }
echo "setup-seed: installed qemu-utils ($(qemu-img --version | head -1))"
