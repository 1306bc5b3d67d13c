# Shared by the bench scripts that time ov against podman: messages,
# preconditions, the ov binary, medians and the interleaved run loop.
# Source it after setting ROOT, RUNS and BASE_IMAGE.

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# Root, podman and the debootstrapped base image: what every engine bench needs.
check_host() {
  [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "OV_BENCH_RUNS must be a positive integer, not '$RUNS'"
  [[ $(id -u) -eq 0 ]] || die "run as root: podman's rootful store is the one ov's engine (the API service) uses"
  command -v podman >/dev/null || die "podman not found; run scripts/setup.sh"
  podman image exists "$BASE_IMAGE" || die "$BASE_IMAGE is missing; run scripts/setup.sh"
}

# Sets OV: $OV_BIN when given, else the release binary, built now.
release_ov() {
  if [[ -n ${OV_BIN:-} ]]; then
    OV=$OV_BIN
    return
  fi
  if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  log "cargo build --release --bins"
  (cd "$ROOT" && cargo build --release --bins --quiet)
  OV=$ROOT/target/release/ov
}

now() { printf '%s' "$EPOCHREALTIME"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, a / b }'; }

# Calls `run_ov R` and `run_podman R` for R in 1..RUNS, swapping which goes
# first every run: on a shared machine neither tool should always get the
# warmer caches or the quieter neighbour.
interleave() {
  local r
  log "ov $("$OV" --version | awk '{ print $2 }'), $(podman --version); $RUNS run(s)${1:+ $1}"
  for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then
      run_ov "$r"
      run_podman "$r"
    else
      run_podman "$r"
      run_ov "$r"
    fi
  done
}
