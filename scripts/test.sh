#!/usr/bin/env bash
# Set-up, then every check CI runs: format, lints, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# A smoke run of the benchmark at a tenth of its size keeps it compiling and
# running; the full run is `bash bench/run.sh`.
OV_BENCH_SCALE=0.1 OV_BENCH_RUNS=3 cargo bench --bench foundation
OV_BENCH_SCALE=0.1 OV_BENCH_RUNS=1 cargo bench --bench scheduler
# Ten layers built for real, then three no-op builds (the full 200 layers
# take minutes: `bash bench/noop.sh`).
OV_BENCH_SCALE=0.05 OV_BENCH_RUNS=3 cargo bench --bench noop
# The test suite runs last, so its summary closes the output. Its build
# tests drive the podman service setup.sh started; two test threads keep
# two engine builds going at once without starving the 2-core CI machine.
cargo test --workspace -- --test-threads 2
