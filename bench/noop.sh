#!/usr/bin/env bash
# No-op build benchmark: builds a generated 200-layer project against the
# podman service once, then times no-op builds and counts their engine
# calls; see benches/noop.rs. OV_BENCH_SCALE=0.05 shrinks it to 10 layers
# for a smoke run; OV_BENCH_RUNS sets the timed runs (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
# The bench drives the release binary; build it first so its build time is
# not part of the run.
cargo build --release --bin ov
exec cargo bench --bench noop -- "$@"
