#!/usr/bin/env python3
"""Storage queries that used to read whole tables, before and after, on one
SQLite file with large tables (BENCHMARKS.md "Storage queries at scale").
Usage: storage-plans.py [SYMBOLS] [MINUTES_EACH] [BACKFILLED] [TICKS]"""
import glob, os, sqlite3, sys, tempfile, time

symbols = int(sys.argv[1]) if len(sys.argv) > 1 else 200
minutes = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
backfilled = int(sys.argv[3]) if len(sys.argv) > 3 else 300_000
ticks = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
path = os.path.join(tempfile.mkdtemp(prefix="pulse-plans-"), "plans.db")
db = sqlite3.connect(path)
for migration in sorted(glob.glob(os.path.join(root, "crates/server/migrations/*.sql"))):
    db.executescript(open(migration).read())
now = 1_764_590_000_000 // 60_000 * 60_000
old = 1_546_300_800_000  # 2019-01-01: a backfill, arrived now
candle = "INSERT INTO candles (symbol, interval, start, open, high, low, close, volume, updated_at) VALUES (?,?,?,1,1,1,1,1,?)"
db.executemany(candle, ((f"S{s:04d}", "1m", now - m * 60_000, now)
                        for s in range(symbols) for m in range(minutes)))
db.executemany(candle, (("BACK", "1m", old + m * 60_000, now) for m in range(backfilled)))
db.executemany("INSERT INTO ticks (symbol, price, volume, ts, received_at) VALUES (?,1,1,?,?)",
               ((f"S{i % symbols:04d}", now + i, now + i) for i in range(ticks)))
posts = 500_000
db.executemany("INSERT INTO posts (author, text, ts, compound, pos, neu, neg, label, symbols) "
               "VALUES ('ann', 'a post of some length', ?, 0, 0, 1, 0, 'neutral', '[]')",
               ((now + i,) for i in range(posts)))
db.commit()
skip = lambda table: f"""WITH RECURSIVE stored(symbol) AS (
    SELECT MIN(symbol) FROM {table} UNION ALL
    SELECT (SELECT MIN(symbol) FROM {table} WHERE symbol > stored.symbol)
    FROM stored WHERE stored.symbol IS NOT NULL)
  SELECT symbol FROM stored WHERE symbol IS NOT NULL"""

def series_by_seeks():
    out = []
    for (symbol,) in db.execute(skip("candles")).fetchall():
        after = ""
        while True:
            (interval,) = db.execute("SELECT MIN(interval) FROM candles WHERE symbol = ? AND interval > ?",
                                     (symbol, after)).fetchone()
            if interval is None:
                break
            out.append((symbol, interval))
            after = interval
    return out

cutoff = now - 30 * 86_400_000
legacy = "SELECT symbol, interval, start FROM candles WHERE interval = '1m' AND updated_at IS NULL AND {} < ? LIMIT 2000"
# The posts export of a time range in the middle of the table: its first chunk.
columns = "id, author, text, ts, compound, pos, neu, neg, label, symbols, likes, shares, comments"
(max_id,) = db.execute("SELECT MAX(id) FROM posts").fetchone()
middle = (now + posts // 2, now + posts // 2 + 10_000)
chunk = f"SELECT {columns} FROM posts WHERE id > ? AND id <= ? AND ts >= ? AND ts <= ? ORDER BY id LIMIT 1000"
def export_after():
    first, last = db.execute("SELECT MIN(id), MAX(id) FROM posts WHERE ts >= ? AND ts <= ?", middle).fetchone()
    return db.execute(chunk, (first - 1, min(last, max_id), *middle)).fetchall()
cases = [
    ("past watchlist: symbols of candles",
     lambda: db.execute("SELECT DISTINCT symbol FROM candles WHERE interval = '1m' ORDER BY symbol").fetchall(),
     lambda: db.execute(skip("candles")).fetchall()),
    ("restore: (symbol, interval) series of candles",
     lambda: sorted(db.execute("SELECT DISTINCT symbol, interval FROM candles").fetchall()),
     series_by_seeks),
    ("restore: symbols of ticks",
     lambda: db.execute("SELECT DISTINCT symbol FROM ticks ORDER BY symbol").fetchall(),
     lambda: db.execute(skip("ticks")).fetchall()),
    ("posts export of a time range: first chunk",
     lambda: db.execute(chunk, (0, max_id, *middle)).fetchall(),
     export_after),
    ("prune round: candles from before schema v2 (none here)",
     lambda: db.execute(legacy.format("start"), (cutoff,)).fetchall(),
     lambda: db.execute(legacy.format("+start"), (cutoff,)).fetchall()),
]
print(f"SQLite {sqlite3.sqlite_version}: {symbols} symbols x {minutes} minutes + {backfilled} backfilled "
      f"minutes of one symbol = {symbols * minutes + backfilled:,} candles; {ticks:,} ticks; {posts:,} posts")
for name, before, after in cases:
    timings = []
    for query in (before, after):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            answer = query()
            times.append(time.perf_counter() - started)
        times.sort()
        timings.append((times[2] * 1000, answer))
    assert timings[0][1] == timings[1][1], f"{name}: the same answer"
    print(f"{name}: {timings[0][0]:.2f} ms -> {timings[1][0]:.2f} ms (median of 5, {len(timings[1][1])} rows)")
db.close()
os.remove(path)
