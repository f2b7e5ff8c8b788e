#!/usr/bin/env bash
# Sets up what is missing, then runs every test: unit and integration
# (cargo test) and end-to-end (Playwright in Chromium against the real server,
# and against the static bundle served from another origin).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo test"
# The default members: everything but pulse-frontend, whose `hydrate` feature
# would be unified into the native server build (cargo leptos builds it for wasm).
cargo test --all-targets

echo "== cargo leptos build (server + hydrate WASM)"
cargo leptos build

echo "== trunk build --release (the static dashboard, dist/)"
trunk build --release

echo "== Playwright end-to-end tests"
cd end2end
npx playwright test
