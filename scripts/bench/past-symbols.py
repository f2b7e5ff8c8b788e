#!/usr/bin/env python3
"""The past watchlist's symbol list (storage::past::quotes_at) on a large candles
table: the old DISTINCT scan against the primary-key skip-scan, same SQLite file
(BENCHMARKS.md). Usage: past-symbols.py [SYMBOLS] [MINUTES_EACH]"""
import os, sqlite3, sys, tempfile, time

symbols = int(sys.argv[1]) if len(sys.argv) > 1 else 200
minutes = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
path = os.path.join(tempfile.mkdtemp(prefix="pulse-past-"), "past.db")
db = sqlite3.connect(path)
db.executescript(open(os.path.join(root, "crates/server/migrations/0001_init.sql")).read())
t0 = 1_764_590_000_000 // 60_000 * 60_000
rows = ((f"S{s:04d}", "1m", t0 + m * 60_000, 1.0, 1.0, 1.0, 1.0, 1.0)
        for s in range(symbols) for m in range(minutes))
db.executemany("INSERT INTO candles VALUES (?,?,?,?,?,?,?,?)", rows)
db.commit()
queries = {
    "DISTINCT (before)": "SELECT DISTINCT symbol FROM candles WHERE interval = '1m' ORDER BY symbol",
    "skip-scan (after)": """WITH RECURSIVE stored(symbol) AS (
        SELECT MIN(symbol) FROM candles
        UNION ALL
        SELECT (SELECT MIN(symbol) FROM candles WHERE symbol > stored.symbol)
        FROM stored WHERE stored.symbol IS NOT NULL)
      SELECT symbol FROM stored WHERE symbol IS NOT NULL""",
}
print(f"{symbols} symbols x {minutes} minute candles = {symbols * minutes:,} rows, SQLite {sqlite3.sqlite_version}")
answers = []
for name, sql in queries.items():
    times = []
    for _ in range(5):
        started = time.perf_counter()
        answer = db.execute(sql).fetchall()
        times.append(time.perf_counter() - started)
    answers.append(answer)
    times.sort()
    print(f"{name}: median {times[2] * 1000:.2f} ms (min {times[0] * 1000:.2f}, max {times[-1] * 1000:.2f}), {len(answer)} symbols")
assert answers[0] == answers[1], "both list the same symbols"
db.close()
os.remove(path)
