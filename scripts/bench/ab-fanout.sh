#!/usr/bin/env bash
# Fan-out (1,000 subscribers, 100 events/s, in memory) of several release
# builds, alternated, fresh server per run (BENCHMARKS.md).
# Usage: ab-fanout.sh ROUNDS BIN [BIN ...]; a binary whose path names
# ca31936 predates the connection caps and gets no flags for them.
set -u
ulimit -n 20000 || true
LOADGEN=${LOADGEN:-target/release/loadgen}
rounds=$1; shift
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    caps="--max-connections 20000 --max-connections-per-ip 20000"
    case $bin in *ca31936*) caps="" ;; esac
    # shellcheck disable=SC2086
    "$bin" --addr 127.0.0.1:3900 --no-simulator --in-memory $caps >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:3900/healthz >/dev/null && break; sleep 0.1; done
    echo "### $bin r$round"
    $LOADGEN --url ws://127.0.0.1:3900/ws --subscribers 1000 --rate 100 --duration 10 2>&1 \
      | grep -E "^(delivered|loss|latency p50)"
    awk '{print "server CPU s:", ($14+$15)/100}' /proc/$pid/stat
    kill $pid; wait $pid 2>/dev/null
  done
done
