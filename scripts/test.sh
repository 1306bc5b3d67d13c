#!/usr/bin/env bash
# Set-up, then every check CI runs: format, lints, benchmark smoke runs and
# the whole test suite. Each phase's time is printed once more at the end
# (also when a phase fails), so the tail of a CI log says where time went;
# after a failure, so do why each failed test failed and the machine's state
# (disk, memory, engine), since a log's middle may be cut.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

TIMES=()
START=$SECONDS
LOGS=()
# The free disk, sampled through the run: a build that failed for want of
# space leaves no trace in the state at the end once its files are gone.
DISK_LOG=$(mktemp)
# Each sample is "free used": the least free says how close the machine
# came to full, the most used over the first sample what the run itself
# took (the machine's disk is shared, so free space alone says little).
(while :; do df --output=avail,used -B1M / | tail -1; sleep 10; done) >"$DISK_LOG" 2>/dev/null &
DISK_PID=$!
# machine_state: what a cascade of unrelated failures usually comes from.
machine_state() {
  df -h / /tmp | awk 'NR == 1 || !seen[$1]++' | sed 's/^/  /'
  free -m | sed -n 2p | awk '{print "  memory MiB: total " $2 ", available " $7}'
  if curl -sf --max-time 5 --unix-socket /run/podman/podman.sock http://d/_ping >/dev/null 2>&1; then
    echo "  podman service: answers"
  else
    echo "  podman service: does not answer"
  fi
  # /proc/vmstat counts every OOM kill, cgroup ones too, and needs no
  # privilege (dmesg may be closed to us, which read as "0").
  local oom
  oom=$(awk '$1 == "oom_kill" {print $2}' /proc/vmstat 2>/dev/null || true)
  echo "  kernel OOM kills since boot: ${oom:-unknown} (${OOM_AT_START:-unknown} at the start)"
}
OOM_AT_START=$(awk '$1 == "oom_kill" {print $2}' /proc/vmstat 2>/dev/null || true)
# What the engine said during this run: a step killed from outside (a
# signal, a removed image) is told only in the engine's own log. The
# userinfo of any URL in it is masked.
SERVICE_LOG=/var/log/podman-service.log
SERVICE_LOG_AT=$(stat -c %s "$SERVICE_LOG" 2>/dev/null || echo 0)
engine_log() {
  [[ -r $SERVICE_LOG ]] || return 0
  tail -c +"$((SERVICE_LOG_AT + 1))" "$SERVICE_LOG" |
    { grep -i -E 'level=(error|warning)|killed|signal' || true; } |
    # A client that hangs up on a stream it has read enough of (as ov and
    # the tests do on purpose) makes the service log a broken pipe: noise
    # that pushed the lines that matter out of the last 15.
    { grep -v -i -E 'broken pipe|connection reset by peer' || true; } | tail -15 |
    sed -E 's#(://)[^/@[:space:]]+@#\1***@#g' | cut -c1-300 | sed 's/^/  /'
}
report() {
  local rc=${1:-$?}
  if ((rc != 0)) && ((${#LOGS[@]} > 0)); then
    printf '\ntest.sh: why tests failed (the first 20)\n'
    awk -f scripts/test-digest.awk "${LOGS[@]}" | head -20
    printf '\ntest.sh: the machine at the end\n'
    machine_state
    printf '\ntest.sh: what the engine logged of errors, warnings and signals, hang-ups aside (the last 15)\n'
    engine_log
  fi
  kill "$DISK_PID" 2>/dev/null || true
  printf '\ntest.sh: phase times (total %d s, exit %d)\n' "$((SECONDS - START))" "$rc"
  printf '  %s\n' "${TIMES[@]}"
  awk 'NR == 1 {first = $2} min == "" || $1 < min {min = $1} $2 > max {max = $2}
    END {if (NR) print "  least free disk on /: " min " MiB; the most this run used: " max - first " MiB"}' "$DISK_LOG"
  rm -f "${LOGS[@]}" "$DISK_LOG"
}
trap report EXIT
# phase NAME CMD...: runs CMD and notes how long it took.
phase() {
  local name=$1 t=$SECONDS
  shift
  "$@"
  TIMES+=("$(printf '%-10s %5d s' "$name" "$((SECONDS - t))")")
}

phase setup bash scripts/setup.sh
# One build from nothing: incremental compilation's state would only take
# the disk (three quarters of a gigabyte) that the tests' images need.
export CARGO_INCREMENTAL=0
printf 'test.sh: the machine at the start\n'
machine_state
phase fmt cargo fmt --all -- --check
# The lints run inside the test build: clippy's driver compiles the
# workspace's own crates (as `cargo clippy` has it do for a check), with
# warnings denied. A separate `cargo clippy` type-checked every dependency
# a second time: six and a half of CI's minutes.
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
[ -x "$RUSTC_WORKSPACE_WRAPPER" ] || rustup component add clippy
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
# Every workspace member is selected here, so every one is linted (a
# build that selects one package lints only that one); the benchmarks'
# own targets are linted as their smoke runs build them.
phase test-build cargo test --workspace --no-run
# Smoke runs of the benchmarks at a fraction of their size, in the dev
# profile the tests share (a release build of the workspace would cost CI
# minutes): they keep the benchmarks compiling and running. The real runs
# are `bash bench/run.sh`.
phase bench-fnd env OV_BENCH_SCALE=0.1 OV_BENCH_RUNS=3 cargo bench --profile dev --bench foundation
phase bench-sch env OV_BENCH_SCALE=0.1 OV_BENCH_RUNS=1 cargo bench --profile dev --bench scheduler
# Two layers built for real, then three no-op builds.
phase bench-noop env OV_BENCH_SCALE=0.01 OV_BENCH_RUNS=3 cargo bench --profile dev --bench noop
phase bench-graph env OV_BENCH_SCALE=0.05 OV_BENCH_RUNS=1 cargo bench --profile dev --bench graph_page
# The test suite runs last, so its summary closes the output. Its build
# tests drive the podman service setup.sh started; two test threads keep
# two engine builds going at once without starving the 2-core CI machine.
# The examples/vm chain (a cold debootstrap rootfs, the disk, two TCG
# boots and a second machine's restore: ten minutes, serialised on one
# cache dir) runs in a second process beside the rest from the start; by
# name it would run last and alone. (Moving more tests there made that
# process the longer one: the machine's two cores are the limit.) Its
# output follows the rest's.
SIDE=(vm_disk::)
SIDE_LOG=$(mktemp)
MAIN_LOG=$(mktemp)
LOGS=("$MAIN_LOG" "$SIDE_LOG")
# Its own session, so an early exit stops the whole group (cargo and the
# test binary under it).
setsid cargo test --test integration -- --test-threads 1 "${SIDE[@]}" >"$SIDE_LOG" 2>&1 &
SIDE_PID=$!
trap 'r=$?; kill -- "-$SIDE_PID" 2>/dev/null || true; report "$r"' EXIT
skips=()
for f in "${SIDE[@]}"; do skips+=(--skip "$f"); done
t=$SECONDS
rc=0
cargo test --workspace --no-fail-fast -- --test-threads 2 "${skips[@]}" 2>&1 | tee "$MAIN_LOG" || rc=$?
TIMES+=("$(printf '%-10s %5d s' tests "$((SECONDS - t))")")
side_rc=0
wait "$SIDE_PID" || side_rc=$?
TIMES+=("$(printf '%-10s %5d s' side-tests "$((SECONDS - t))")")
printf '\n=== the longest tests, run beside the rest: %s ===\n' "${SIDE[*]}"
cat "$SIDE_LOG"
((rc == 0 && side_rc == 0)) || exit 1
