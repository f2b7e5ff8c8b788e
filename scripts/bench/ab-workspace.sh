#!/usr/bin/env bash
# A/B in one sitting (BENCHMARKS.md, "The workspace and the broker seam"): server render
# of `/`, gzipped sizes and fan-out of two release builds, alternated.
# Usage: ab-workspace.sh BEFORE_BIN BEFORE_SITE AFTER_BIN AFTER_SITE [ROUNDS]
# (each *_SITE is the target/site of that build's `cargo leptos build --release`).
set -u
ulimit -n 20000 || true
LOADGEN=${LOADGEN:-target/release/loadgen}
ssr() { # name bin site
  # (the env var, not the flag: older builds must start too)
  LEPTOS_SITE_ROOT=$3 PULSE_RPC_READ_RATE=0 $2 --addr 127.0.0.1:3300 --in-memory >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:3300/healthz >/dev/null && break; sleep 0.1; done
  sleep 2
  for _ in $(seq 5); do curl -s -o /dev/null -H 'Accept-Encoding: gzip' http://127.0.0.1:3300/; done
  echo "### ssr $1 p50/p90 of 20 (s): $(for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' -H 'Accept-Encoding: gzip' http://127.0.0.1:3300/; done | sort -n | awk '{a[NR]=$1} END {print a[10], a[18]}')"
  echo "### sizes $1: $(for p in /pkg/pulse.wasm / /api/snapshot; do curl -s -o /dev/null -w "$p %{size_download} " -H 'Accept-Encoding: gzip' http://127.0.0.1:3300$p; done)"
  kill $pid; wait $pid 2>/dev/null
}
fanout() { # name bin
  $2 --addr 127.0.0.1:3900 --no-simulator --in-memory --max-connections 20000 --max-connections-per-ip 20000 >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:3900/healthz >/dev/null && break; sleep 0.1; done
  echo "### fanout $1"
  $LOADGEN --url ws://127.0.0.1:3900/ws --subscribers 1000 --rate 100 --duration 10 2>&1 | grep -v "^loadgen: t="
  awk '{print "server CPU s:", ($14+$15)/100}' /proc/$pid/stat
  kill $pid; wait $pid 2>/dev/null
}
for round in $(seq "${5:-2}"); do
  ssr "before r$round" "$1" "$2"
  ssr "after r$round" "$3" "$4"
  fanout "before r$round" "$1"
  fanout "after r$round" "$3"
done
