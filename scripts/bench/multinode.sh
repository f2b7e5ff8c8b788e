#!/usr/bin/env bash
# Fan-out with the subscribers split over 1, 2 and 3 nodes sharing one Redis,
# against one node without Redis (BENCHMARKS.md, "Several nodes over Redis").
# The publisher always talks to the leader (node 1); subscribers on the other
# nodes receive every event through Redis (leader commit → log → follower).
# Also: the failover gap under a steady tick stream.
# Usage: scripts/bench/multinode.sh [SUBSCRIBERS] [RATE] [DURATION] [ROUNDS]
set -u
SUBS=${1:-3000}
RATE=${2:-100}
DURATION=${3:-10}
ROUNDS=${4:-1}
PULSE=${PULSE:-target/release/pulse}
LOADGEN=${LOADGEN:-target/release/loadgen}
ulimit -n 20000 || true
dir=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

start_redis() {
  rm -rf "$dir/redis" && mkdir -p "$dir/redis"
  redis-server --bind 127.0.0.1 --port 6391 --save '' --appendonly yes --appendfsync always \
    --maxmemory-policy noeviction --dir "$dir/redis" >/dev/null &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p 6391 ping >/dev/null 2>&1 && return; sleep 0.1; done
}

start_node() { # index extra-args...
  local i=$1; shift
  rm -f "$dir/n$i.db"*
  "$PULSE" --addr 127.0.0.1:$((3910 + i)) --no-simulator --db "$dir/n$i.db" --sync normal \
    --max-connections 20000 --max-connections-per-ip 20000 --ingest-rate 0 "$@" \
    >/dev/null 2>"$dir/n$i.log" &
  PIDS[$i]=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$((3910 + i))/readyz >/dev/null && return; sleep 0.1; done
  echo "node $i did not become ready"; cat "$dir/n$i.log"; exit 1
}

wait_leader() { # index
  for _ in $(seq 100); do
    curl -s http://127.0.0.1:$((3910 + $1))/metrics | grep -q 'pulse_cluster_role{role="leader"} 1' && return
    sleep 0.1
  done
  echo "node $1 did not lead"; exit 1
}

cpu() { awk '{printf "%.1f", ($14+$15)/100}' /proc/$1/stat; }

fanout() { # label nodes with-redis
  local label=$1 nodes=$2 redis=$3 urls="" i
  declare -ga PIDS=()
  if [ "$redis" = yes ]; then
    start_redis
    for i in $(seq "$nodes"); do
      start_node "$i" --redis redis://127.0.0.1:6391/0 --node-id "n$i"
      [ "$i" = 1 ] && wait_leader 1
    done
  else
    start_node 1
  fi
  for i in $(seq "$nodes"); do urls="$urls${urls:+,}ws://127.0.0.1:$((3910 + i))/ws"; done
  echo "### $label: $SUBS subscribers over $nodes node(s) × $RATE events/s"
  "$LOADGEN" --url ws://127.0.0.1:3911/ws --subscriber-urls "$urls" --subscribers "$SUBS" \
    --rate "$RATE" --duration "$DURATION" 2>&1 \
    | grep -E "^(delivered events/s|loss|duplicates|offset gaps|disconnects|latency)"
  for i in $(seq "$nodes"); do echo "node $i CPU s: $(cpu "${PIDS[$i]}")"; done
  [ "$redis" = yes ] && echo "redis CPU s: $(cpu "$REDIS_PID")"
  kill "${PIDS[@]}" 2>/dev/null; [ "$redis" = yes ] && kill "$REDIS_PID"; wait 2>/dev/null
}

failover() {
  declare -ga PIDS=()
  start_redis
  for i in 1 2; do
    start_node "$i" --redis redis://127.0.0.1:6391/0 --node-id "n$i"
    [ "$i" = 1 ] && wait_leader 1
  done
  # A steady producer on node 2 (a follower) while node 1, the leader, is killed.
  local acked=0 refused=0 last ok gap=0 t now
  last=$(date +%s%3N)
  for n in $(seq 400); do
    [ "$n" = 100 ] && kill -9 "${PIDS[1]}"
    if curl -sf -XPOST http://127.0.0.1:3912/api/ticks -H 'content-type: application/json' \
      -d "{\"symbol\":\"ACME\",\"price\":10,\"volume\":$n,\"ts\":$(date +%s%3N)}" >/dev/null; then
      now=$(date +%s%3N); t=$((now - last)); [ "$t" -gt "$gap" ] && gap=$t; last=$now
      acked=$((acked + 1))
    else
      refused=$((refused + 1))
    fi
    sleep 0.01
  done
  echo "### failover: leader killed after 100 ticks; $acked acked, $refused refused, longest pause between acks $gap ms"
  kill "${PIDS[@]}" "$REDIS_PID" 2>/dev/null; wait 2>/dev/null
}

durable() { # label rate with-redis
  declare -ga PIDS=()
  if [ "$3" = yes ]; then
    start_redis
    start_node 1 --redis redis://127.0.0.1:6391/0 --node-id n1
    wait_leader 1
  else
    start_node 1
  fi
  echo "### durable ingest, $1: $2 ticks/s from 8 WebSocket publishers into the leader"
  "$LOADGEN" --url ws://127.0.0.1:3911/ws --subscribers 1 --publishers 8 --duration 10 --rate "$2" 2>&1 \
    | grep -E "^(published|delivered events/s|loss|latency p)"
  echo "node CPU s: $(cpu "${PIDS[1]}")"
  [ "$3" = yes ] && echo "redis CPU s: $(cpu "$REDIS_PID")"
  kill "${PIDS[@]}" 2>/dev/null; [ "$3" = yes ] && kill "$REDIS_PID"; wait 2>/dev/null
}

for round in $(seq "$ROUNDS"); do
  for rate in ${DURABLE_RATES:-2000 10000}; do
    durable "r$round no Redis" "$rate" no
    durable "r$round with Redis" "$rate" yes
  done
  fanout "r$round one node, no Redis" 1 no
  fanout "r$round one node + Redis" 1 yes
  fanout "r$round two nodes + Redis" 2 yes
  fanout "r$round three nodes + Redis" 3 yes
done
failover
