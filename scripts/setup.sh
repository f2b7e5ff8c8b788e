#!/usr/bin/env bash
# Installs what Pulse needs to build, run and test, and nothing twice.
# Usage: scripts/setup.sh [--tests] [--release] [--static]
#   --tests    also the browser and npm packages for the end-to-end suite,
#              and what --static installs (the suite tests the static bundle)
#   --release  also wasm-opt (binaryen), used by release builds
#   --static   also trunk and wasm-opt, which build the static dashboard
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=false
want_release=false
want_static=false
for arg in "$@"; do
  case "$arg" in
    --tests) want_tests=true; want_static=true ;;
    --release) want_release=true ;;
    --static) want_static=true ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

export PATH="$HOME/.cargo/bin:$PATH"
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=false
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  if ! $apt_updated; then as_root apt-get update -qq; apt_updated=true; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# C builds inside crates: SQLite (bundled) needs a C compiler, jemalloc also make.
command -v cc >/dev/null || apt_install gcc
command -v make >/dev/null || apt_install make

# Rust toolchain pieces.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

LEPTOS_VERSION=0.3.10
if ! cargo leptos --version 2>/dev/null | grep -q "$LEPTOS_VERSION"; then
  say "cargo install cargo-leptos $LEPTOS_VERSION (takes ~12 minutes once)"
  cargo install cargo-leptos --version "$LEPTOS_VERSION" --locked
fi

# The wasm-bindgen CLI must match the library version in Cargo.lock exactly.
if [ ! -f Cargo.lock ]; then cargo generate-lockfile; fi
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
  say "cargo install wasm-bindgen-cli $BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --locked \
    || cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
fi

# trunk builds the static dashboard (Trunk.toml). 0.21.14 is the last
# release that builds with this toolchain (0.22 needs a newer rustc).
TRUNK_VERSION=0.21.14
if $want_static && ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
  say "cargo install trunk $TRUNK_VERSION (takes ~10 minutes once)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if { $want_release || $want_static; } && ! command -v wasm-opt >/dev/null; then
  say "npm install -g binaryen@132 (wasm-opt for release builds)"
  npm install -g --silent binaryen@132
fi

if $want_tests; then
  apt_install chromium
  # The multi-node tests start their own redis-server (crates/server/tests/multinode.rs).
  command -v redis-server >/dev/null || apt_install redis-server
  if [ ! -x end2end/node_modules/.bin/playwright ]; then
    say "npm ci in end2end/"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  fi
fi
say "ready"
