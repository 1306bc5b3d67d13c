#!/usr/bin/env bash
# Set-up, then ov on examples/hello from nothing: validate, list, plan,
# draw and explain.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
ov=target/release/ov
ex=examples/hello
set -x
"$ov" -C "$ex" image validate
"$ov" -C "$ex" image list
"$ov" -C "$ex" image inspect hello
"$ov" -C "$ex" build --dry-run
"$ov" -C "$ex" graph --format dot | dot -Tsvg -o target/hello-graph.svg
"$ov" -C "$ex" explain motd@hello
