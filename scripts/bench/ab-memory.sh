#!/usr/bin/env bash
# In-memory ingest of several release builds, alternated, fresh server per run
# (BENCHMARKS.md). Usage: ab-memory.sh RATE ROUNDS BIN [BIN ...]
set -u
ulimit -n 20000 || true
LOADGEN=${LOADGEN:-target/release/loadgen}
rate=$1 rounds=$2; shift 2
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    "$bin" --addr 127.0.0.1:3900 --no-simulator --in-memory >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:3900/healthz >/dev/null && break; sleep 0.1; done
    echo "### $bin $rate/s r$round"
    $LOADGEN --url ws://127.0.0.1:3900/ws --subscribers 1 --publishers 8 --duration 10 --rate "$rate" 2>&1 \
      | grep -E "^(loss|latency p50)"
    awk '{print "server CPU s:", ($14+$15)/100}' /proc/$pid/stat
    kill $pid; wait $pid 2>/dev/null
  done
done
