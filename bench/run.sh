#!/usr/bin/env bash
# Foundation benchmark: ov vs ninja (no-op) and b3sum (hashing); see
# benches/foundation.rs. Installs the comparison tools if missing, then runs
# the bench target. OV_BENCH_SCALE=0.1 shrinks the project for a smoke run;
# OV_BENCH_RUNS sets the number of timed runs per tool (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v b3sum >/dev/null 2>&1 || need+=(b3sum)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when a package is not known yet.
    if ! $sudo apt-get install -y --no-install-recommends "${need[@]}"; then
        $sudo apt-get update
        $sudo apt-get install -y --no-install-recommends "${need[@]}"
    fi
fi

# The bench drives the release binary; build it first so its build time is
# not part of the run.
cargo build --release --bin ov
exec cargo bench --bench foundation -- "$@"
