#!/usr/bin/env bash
# The test command: installs whatever is missing (system packages, the Python and Node
# OpenTelemetry SDKs used as real agents), then runs formatting, lints and every test.
# Cargo's target directory defaults to ~/.cache/rewind-target so repeated runs stay warm.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/setup.sh
rewind_setup test

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rewind-target}"

venv="$HOME/.cache/rewind-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
export REWIND_TEST_PYTHON="$venv/bin/python"

if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --features rewind/failpoints -- -D warnings
cargo test --workspace --locked --features rewind/failpoints
# A short, repeatable fuzzing pass over every target (scripts/fuzz.sh runs long ones).
REWIND_FUZZ_RUNS="${REWIND_FUZZ_RUNS:-200000}" scripts/fuzz.sh
