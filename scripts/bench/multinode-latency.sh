#!/usr/bin/env bash
# Publish → delivery latency at low load (BENCHMARKS.md, "Several nodes over Redis"):
# a single node, then a leader and a follower over one Redis, subscribers on either.
set -u
cd "$(dirname "$0")/../.."
d=$(mktemp -d)
redis-server --port 6394 --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always --dir $d --daemonize yes --logfile $d/r.log; sleep 0.3
start() { target/release/pulse --addr 127.0.0.1:$1 --no-simulator --db $d/$1.db --sync normal --ingest-rate 0 ${@:2} >/dev/null 2>$d/$1.log & for _ in $(seq 100); do curl -sf localhost:$1/readyz >/dev/null && break; sleep 0.1; done; }
for round in 1 2 3; do
  start 3960; p0=$!; sleep 1
  echo "## r$round single node (no Redis), 10 subscribers"; target/release/loadgen --url ws://127.0.0.1:3960/ws --subscribers 10 --rate 100 --duration 5 2>&1 | grep -E "^latency p"
  kill $p0; wait $p0 2>/dev/null; rm -f $d/3960.db*
  redis-cli -p 6394 flushall >/dev/null
  start 3961 --redis redis://127.0.0.1:6394/0 --node-id a; p1=$!; sleep 1.5
  start 3962 --redis redis://127.0.0.1:6394/0 --node-id b; p2=$!; sleep 1
  echo "## r$round leader, 10 subscribers on the leader"; target/release/loadgen --url ws://127.0.0.1:3961/ws --subscribers 10 --rate 100 --duration 5 2>&1 | grep -E "^latency p"
  echo "## r$round leader, 10 subscribers on the follower"; target/release/loadgen --url ws://127.0.0.1:3961/ws --subscriber-urls ws://127.0.0.1:3962/ws --subscribers 10 --rate 100 --duration 5 2>&1 | grep -E "^latency p"
  echo "## r$round publisher on the follower, subscribers on the follower"; target/release/loadgen --url ws://127.0.0.1:3962/ws --subscribers 10 --rate 100 --duration 5 2>&1 | grep -E "^latency p"
  kill $p1 $p2; wait $p1 $p2 2>/dev/null; rm -f $d/396*.db*
done
redis-cli -p 6394 shutdown nosave; rm -rf $d
