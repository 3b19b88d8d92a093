#!/usr/bin/env bash
# The run command: installs what the build needs when it is missing (scripts/setup.sh, shared with
# the test command), then builds and starts `rewind demo`. Arguments go to `rewind demo`
# (for example --query-listen 127.0.0.1:9090). It builds the `demo` profile (Cargo.toml): release with
# dependencies at opt-level 1: on two cores 12m42s from nothing, where `--release` spends ~18 minutes
# on DataFusion alone; the workspace's own crates are optimized as in release.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rewind_setup build
exec cargo run --profile demo --locked -- demo "$@"
