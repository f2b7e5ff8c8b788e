#!/usr/bin/env bash
# Sets up what is missing, then builds and serves the dashboard on
# http://127.0.0.1:3000 with the simulated feed. Extra arguments go to pulse
# (see `target/release/pulse --help`), e.g. scripts/run.sh --sim-tick-rate 200
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --release
export PATH="$HOME/.cargo/bin:$PATH"
cargo leptos build --release
echo "Pulse: http://127.0.0.1:3000"
LEPTOS_SITE_ROOT=target/site exec target/release/pulse "$@"
