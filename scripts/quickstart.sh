#!/usr/bin/env bash
# Set-up, then examples/hello built end to end from nothing: a bookworm
# rootfs made by debootstrap, two layers, an image and its eval checks;
# then a second build that finds everything cached, and a look at the
# result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
ov=target/release/ov
ex=examples/hello
set -x
"$ov" -C "$ex" image validate
"$ov" -C "$ex" build --dry-run
"$ov" -C "$ex" build --progress plain
# Nothing changed: every node comes from the cache, no engine build runs.
"$ov" -C "$ex" build --progress plain
podman run --rm localhost/ov-examples/hello:dev cat /etc/motd
"$ov" -C "$ex" graph --format dot | dot -Tsvg -o target/hello-graph.svg
"$ov" -C "$ex" explain motd@hello
