#!/usr/bin/env bash
# Ingest of several release builds, alternated, a fresh server (and database
# file) per run (BENCHMARKS.md): 8 WebSocket producers, one subscriber.
# Usage: ab-ingest.sh durable|memory RATE ROUNDS BIN [BIN ...]
set -u
ulimit -n 20000 || true
LOADGEN=${LOADGEN:-target/release/loadgen}
storage=$1 rate=$2 rounds=$3; shift 3
case $storage in
  durable) flags=(--db /tmp/pulse-bench.db --sync full) ;;
  memory) flags=(--in-memory) ;;
  *) echo "storage is durable or memory, not $storage" >&2; exit 2 ;;
esac
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    rm -f /tmp/pulse-bench.db*
    "$bin" --addr 127.0.0.1:3900 --no-simulator "${flags[@]}" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:3900/healthz >/dev/null && break; sleep 0.1; done
    echo "### $bin $storage $rate/s r$round"
    $LOADGEN --url ws://127.0.0.1:3900/ws --subscribers 1 --publishers 8 --duration 10 --rate "$rate" 2>&1 \
      | grep -E "^(published|delivered|loss|latency)"
    awk '{print "server CPU s:", ($14+$15)/100}' /proc/$pid/stat
    kill $pid; wait $pid 2>/dev/null
  done
done
