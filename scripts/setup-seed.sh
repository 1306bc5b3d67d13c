#!/usr/bin/env bash
# Installs what the tests of VM seeds and cloud images need on a Debian 12
# machine, as root:
#   qemu-utils    `qemu-img` makes the qcow2 that the cloud image tests
#                 serve from 127.0.0.1;
#   python3-yaml  PyYAML, the YAML reader cloud-init uses: the tests read
#                 rendered user-data with it.
# Seed ISOs are written by ov itself and need no tool. Idempotent: when both
# are there it does nothing. Called from scripts/setup.sh; works from any
# directory.
set -euo pipefail

have() {
  command -v qemu-img >/dev/null 2>&1 && python3 -c 'import yaml' >/dev/null 2>&1
}
have && exit 0
export DEBIAN_FRONTEND=noninteractive
PKGS=(qemu-utils python3-yaml)
if ! apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
fi
have || { echo "setup-seed: qemu-img or PyYAML still missing" >&2; exit 1; }
echo "setup-seed: installed ${PKGS[*]}"
