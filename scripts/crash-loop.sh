#!/usr/bin/env bash
# The long crash loop for the benchmark notes: the CI test (tests/it/crashloop.rs) with many more
# rounds, on a release build. Usage: scripts/crash-loop.sh [rounds] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rewind_setup test
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rewind-target}"
export REWIND_CRASH_ROUNDS="${1:-40}" REWIND_CRASH_SEED="${2:-$RANDOM$RANDOM}" REWIND_CRASH_PACE_MS="${REWIND_CRASH_PACE_MS:-20}"
exec cargo test --release --locked --features rewind/failpoints --test it crash_loop -- --nocapture
