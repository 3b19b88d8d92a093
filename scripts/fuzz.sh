#!/usr/bin/env bash
# Runs every fuzz target (fuzz/) for a while: scripts/fuzz.sh [seconds per target] [target...]
# With REWIND_FUZZ_RUNS=N each target runs N inputs from a fixed seed instead (what CI does, so
# that a run is repeatable).
# cargo-fuzz drives libFuzzer; it needs nightly's -Z flags, which RUSTC_BOOTSTRAP lets the
# machine's stable toolchain accept. The corpus grows in fuzz/corpus (not committed); a crash
# leaves its input in fuzz/artifacts: copy it to fuzz/regressions/<target>/ and the test suite
# replays it from then on (tests/it/fuzz.rs, over fuzz/seeds/ too).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rewind_setup build
tools="$HOME/.cache/rewind-tools"
if ! [ -x "$tools/bin/cargo-fuzz" ]; then
  echo "installing cargo-fuzz into $tools"
  cargo install --locked --quiet --root "$tools" cargo-fuzz
fi
export PATH="$tools/bin:$PATH" RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${REWIND_FUZZ_TARGET_DIR:-$HOME/.cache/rewind-fuzz-target}"
seconds="${1:-60}"
shift || true
if [ -n "${REWIND_FUZZ_RUNS:-}" ]; then
  budget=(-runs="$REWIND_FUZZ_RUNS" -seed=1)
else
  budget=(-max_total_time="$seconds")
fi
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  seeds=()
  for d in seeds regressions; do
    [ -d "fuzz/$d/$t" ] && seeds+=("fuzz/$d/$t")
  done
  echo "== $t: ${budget[*]}"
  # No sanitizer: the code under test is safe Rust; what the fuzzer hunts is panics (overflow
  # checks and debug assertions are on) and round trips that do not hold.
  log="$(mktemp)"
  status=0
  cargo fuzz run --fuzz-dir fuzz --sanitizer none "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
    "${budget[@]}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done |SUMMARY)|panicked" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed: its input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  rm -f "$log"
done
