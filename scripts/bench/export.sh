#!/usr/bin/env bash
# Export rate of GET /api/export (BENCHMARKS.md, "Export"): fills a fresh
# database with sqlite3, then times curl downloading each kind and format.
# Usage: scripts/bench/export.sh [ROWS] (default 1,000,000 ticks; candles,
# posts and engagement get ROWS/2, ROWS/5 and ROWS).
# Needs a release build: cargo build --release -p pulse-server --bin pulse
set -eu
rows=${1:-1000000}
bin=${PULSE_BIN:-target/release/pulse}
port=${PORT:-3911}
dir=$(mktemp -d /tmp/pulse-export-bench.XXXXXX)
"$bin" --addr 127.0.0.1:$port --no-simulator --db "$dir/pulse.db" --sync normal >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done

# Rows go straight into the file (the server is idle, WAL lets both in):
# 8 symbols, 4 ticks per millisecond; 1 min candles of one symbol; posts of
# ~80 characters; engagement on them.
sqlite3 "$dir/pulse.db" <<SQL
PRAGMA busy_timeout = 10000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $rows)
INSERT INTO ticks (symbol, price, volume, ts)
SELECT 'S' || (i % 8), 100 + (i % 1000) / 8.0, i % 500, 1700000000000 + i / 4 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $rows / 2)
INSERT INTO candles (symbol, interval, start, open, high, low, close, volume)
SELECT 'S0', '1m', 1600000020000 + i * 60000, 100 + (i % 7), 108, 99, 100 + (i % 5), i % 1000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $rows / 5)
INSERT INTO posts (author, text, ts, compound, pos, neu, neg, label, symbols)
SELECT 'author' || (i % 100), 'Post number ' || i || ': \$S0 looks "strong", buying more, up 3% today',
       1700000000000 + i * 10, 0.4, 0.3, 0.7, 0, 'positive', '["S0"]' FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $rows)
INSERT INTO engagement (post_id, kind, delta, ts)
SELECT 1 + i % ($rows / 5), 'like', 1, 1700000000000 + i FROM n;
COMMIT;
SQL

run() {
  local label=$1 count=$2 query=$3
  local out
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "http://127.0.0.1:$port/api/export?$query")
  set -- $out
  [ "$1" = 200 ] || { echo "$label: HTTP $1" >&2; exit 1; }
  awk -v l="$label" -v n="$count" -v t="$2" -v b="$3" \
    'BEGIN { printf "%-28s %9d rows %7.2f s %10.0f rows/s %7.1f MB/s\n", l, n, t, n / t, b / t / 1e6 }'
}
for round in 1 2; do
  echo "### round $round"
  run "ticks csv" "$rows" "kind=ticks"
  run "ticks ndjson" "$rows" "kind=ticks&format=ndjson"
  run "ticks of one symbol csv" $((rows / 8)) "kind=ticks&symbol=S3"
  run "candles 1m csv" $((rows / 2)) "kind=candles&symbol=S0&interval=1m"
  run "posts csv" $((rows / 5)) "kind=posts"
  run "posts ndjson" $((rows / 5)) "kind=posts&format=ndjson"
  run "engagement csv" "$rows" "kind=engagement"
done
awk '{print "server CPU s:", ($14+$15)/100}' /proc/$pid/stat
grep VmHWM /proc/$pid/status
