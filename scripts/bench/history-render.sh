#!/usr/bin/env bash
# Server render time of long ranges (BENCHMARKS.md, "History: drawing long
# ranges"): a year of daily candles, a day of 1 min candles (also rolled up
# into hours), and the same day travelled to. Posts the data through the
# HTTP API into a fresh database, then times curl fetching each page.
# Usage: scripts/bench/history-render.sh [REQUESTS] (default 100 per page).
# Needs a release build: cargo leptos build --release (or PULSE_BIN=...).
set -eu
requests=${1:-100}
bin=${PULSE_BIN:-target/release/pulse}
site=${LEPTOS_SITE_ROOT:-target/site}
port=${PORT:-3912}
dir=$(mktemp -d /tmp/pulse-render-bench.XXXXXX)
# Page renders share the per-address read rate; a benchmark measures renders, not the limit.
LEPTOS_SITE_ROOT=$site PULSE_RPC_READ_RATE=0 "$bin" --addr 127.0.0.1:$port --no-simulator --db "$dir/pulse.db" --sync normal \
  --ingest-rate 0 >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done

now=$(($(date +%s) * 1000))
day=86400000
# 365 daily closes ending yesterday, and 1,440 minutes ending a minute ago.
python3 - "$now" "$day" >"$dir/year.json" <<'PY'
import json, math, sys
now, day = int(sys.argv[1]), int(sys.argv[2])
today = now - now % day
print(json.dumps([{"symbol": "YEAR", "price": round(2500 + 40 * math.sin(i / 9) + i, 2),
                   "volume": 1000, "ts": today - (365 - i) * day + 52_200_000} for i in range(365)]))
PY
python3 - "$now" >"$dir/day.json" <<'PY'
import json, math, sys
now = int(sys.argv[1])
start = now - now % 60_000 - 1440 * 60_000
print(json.dumps([{"symbol": "DAYM", "price": round(100 + 5 * math.sin(i / 30) + i / 100, 2),
                   "volume": 10 + i % 7, "ts": start + i * 60_000 + 1_000} for i in range(1440)]))
PY
for file in year day; do
  curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @"$dir/$file.json" \
    http://127.0.0.1:$port/api/ticks
done

run() {
  local label=$1 path=$2
  for _ in $(seq 20); do curl -s -o /dev/null "http://127.0.0.1:$port$path"; done
  local bytes
  bytes=$(curl -s "http://127.0.0.1:$port$path" | wc -c)
  for _ in $(seq "$requests"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port$path"
  done | sort -n | awk -v label="$label" -v bytes="$bytes" '
    { t[NR] = $1 * 1000 }
    END { printf "%-44s %8d B  p50 %6.2f ms  p90 %6.2f ms  p99 %6.2f ms\n", label, bytes,
          t[int(NR * 0.5)], t[int(NR * 0.9)], t[int(NR * 0.99)] }'
}
run "/ (simulator off, the default view)" "/"
run "a year of daily candles (1d, 1 year)" "/?symbol=YEAR&interval=1d&range=1y"
run "a day of 1 min candles (1m, 1 day)" "/?symbol=DAYM&interval=1m&range=1d"
run "the same day rolled up (1h, 1 day)" "/?symbol=DAYM&interval=1h&range=1d"
run "travelled to 12 h before now (1m, 1 day)" "/?symbol=DAYM&interval=1m&range=1d&at=$((now - day / 2))"
