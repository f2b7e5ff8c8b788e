//! Reads: what a restart restores, and history queries for the API and the
//! dashboard.

use std::sync::Arc;

use rusqlite::{params, Connection, Row};

use crate::fanout::Event;
use crate::ingest::{RECENT_POSTS, RECENT_TICKS_PER_SYMBOL};
use pulse_core::analytics::market::rollup;
use pulse_core::model::{Candle, CandleInterval, Counts, Post, Sentiment, SentimentLabel, Tick};
use pulse_core::protocol::Topic;
use pulse_core::time::{bucket_start, whole_buckets};

/// Posts reloaded into the engagement engine (it forgets older ones anyway).
const ENGAGEMENT_POSTS: usize = 10_000;
/// Candles reloaded into the market engine per symbol and interval.
const CANDLES_PER_SERIES: usize = 300;

/// One topic as the last run left it.
pub struct RestoredTopic {
    pub topic: Topic,
    pub epoch: String,
    pub last_offset: u64,
    pub history: Vec<Event>,
}

/// What the in-memory views and the hub start from after a restart.
#[derive(Default)]
pub struct Restored {
    pub topics: Vec<RestoredTopic>,
    /// Oldest first; the newest [`RECENT_POSTS`] feed the post list, all of
    /// them the engagement engine.
    pub posts: Vec<(Post, Counts)>,
    /// Per symbol, oldest first.
    pub ticks: Vec<Tick>,
    pub candles: Vec<Candle>,
    pub next_post_id: u64,
    /// How far this archive has followed the cluster's log (multi-node).
    pub log: Option<super::LogPosition>,
}

impl Restored {
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.posts.is_empty() && self.ticks.is_empty()
    }
}

/// A table whose rows are found by symbol first (an index starts with it).
#[derive(Clone, Copy, Debug)]
pub(super) enum BySymbol {
    /// Primary key `(symbol, interval, start)`.
    Candles,
    /// Index `ticks_symbol_ts`.
    Ticks,
}

/// The distinct symbols of `table`, in name order, one index seek each:
/// `DISTINCT symbol` reads every row (about a second for 2 million candles,
/// BENCHMARKS "Storage queries at scale").
pub(super) fn symbols_of(
    conn: &Connection,
    table: BySymbol,
) -> Result<Vec<String>, rusqlite::Error> {
    let table = match table {
        BySymbol::Candles => "candles",
        BySymbol::Ticks => "ticks",
    };
    conn.prepare_cached(&symbols_sql(table))?
        .query_map([], |row| row.get(0))?
        .collect()
}

/// [`symbols_of`]'s query: each step finds the next symbol by a seek.
pub(super) fn symbols_sql(table: &str) -> String {
    format!(
        "WITH RECURSIVE stored(symbol) AS (
             SELECT MIN(symbol) FROM {table}
             UNION ALL
             SELECT (SELECT MIN(symbol) FROM {table} WHERE symbol > stored.symbol)
             FROM stored WHERE stored.symbol IS NOT NULL
         )
         SELECT symbol FROM stored WHERE symbol IS NOT NULL"
    )
}

/// The interval after `?2` that symbol `?1` has candles of.
pub(super) const INTERVALS_OF_SYMBOL: &str =
    "SELECT MIN(interval) FROM candles WHERE symbol = ?1 AND interval > ?2";

/// The intervals `symbol` has candles of, in name order, one seek each.
pub(super) fn intervals_of(
    conn: &Connection,
    symbol: &str,
) -> Result<Vec<String>, rusqlite::Error> {
    let mut next = conn.prepare_cached(INTERVALS_OF_SYMBOL)?;
    let mut intervals = Vec::new();
    let mut after = String::new();
    while let Some(interval) = next.query_row(params![symbol, after], |row| {
        row.get::<_, Option<String>>(0)
    })? {
        after.clone_from(&interval);
        intervals.push(interval);
    }
    Ok(intervals)
}

pub(super) fn post_from_row(row: &Row<'_>) -> Result<(Post, Counts), rusqlite::Error> {
    let label = row
        .get::<_, String>(8)?
        .parse()
        .unwrap_or(SentimentLabel::Neutral);
    let symbols: String = row.get(9)?;
    let post = Post {
        id: row.get::<_, i64>(0)? as u64,
        author: row.get(1)?,
        text: row.get(2)?,
        ts: row.get(3)?,
        sentiment: Sentiment {
            compound: row.get(4)?,
            pos: row.get(5)?,
            neu: row.get(6)?,
            neg: row.get(7)?,
            label,
        },
        symbols: serde_json::from_str(&symbols).unwrap_or_default(),
    };
    let counts = Counts {
        likes: row.get(10)?,
        shares: row.get(11)?,
        comments: row.get(12)?,
    };
    Ok((post, counts))
}

pub(super) const POST_COLUMNS: &str =
    "id, author, text, ts, compound, pos, neu, neg, label, symbols, likes, shares, comments";

pub(super) fn candle_from_row(row: &Row<'_>) -> Result<Candle, rusqlite::Error> {
    let interval = row
        .get::<_, String>(1)?
        .parse()
        .unwrap_or(CandleInterval::OneMinute);
    Ok(Candle {
        symbol: row.get(0)?,
        interval,
        start: row.get(2)?,
        open: row.get(3)?,
        high: row.get(4)?,
        low: row.get(5)?,
        close: row.get(6)?,
        volume: row.get(7)?,
    })
}

pub(super) fn restore(conn: &Connection, history_len: usize) -> Result<Restored, rusqlite::Error> {
    let mut restored = Restored {
        log: log_position(conn)?,
        ..Restored::default()
    };

    let mut topics = conn.prepare("SELECT topic, epoch, last_offset FROM topics ORDER BY topic")?;
    let mut events = conn.prepare(
        "SELECT \"offset\", body, conflation_key, source_ts FROM events
         WHERE topic = ?1 ORDER BY \"offset\" DESC LIMIT ?2",
    )?;
    let rows: Vec<(String, String, i64)> = topics
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (name, epoch, last_offset) in rows {
        let Ok(topic) = name.parse::<Topic>() else {
            tracing::warn!(topic = %name, "ignoring an unknown topic in the database");
            continue;
        };
        let mut history: Vec<Event> = events
            .query_map(params![name, history_len as i64], |row| {
                Ok(Event {
                    offset: row.get::<_, i64>(0)? as u64,
                    body: row.get::<_, String>(1)?.into_boxed_str(),
                    conflation_key: row.get::<_, Option<String>>(2)?.map(Arc::from),
                    source_ts: row.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        history.reverse();
        restored.topics.push(RestoredTopic {
            topic,
            epoch,
            last_offset: last_offset.max(0) as u64,
            history,
        });
    }

    let mut posts = conn.prepare(&format!(
        "SELECT {POST_COLUMNS} FROM posts ORDER BY id DESC LIMIT ?1"
    ))?;
    restored.posts = posts
        .query_map(
            params![ENGAGEMENT_POSTS.max(RECENT_POSTS) as i64],
            post_from_row,
        )?
        .collect::<Result<_, _>>()?;
    restored.posts.reverse();
    restored.next_post_id = conn
        .query_row("SELECT MAX(id) FROM posts", [], |row| {
            row.get::<_, Option<i64>>(0)
        })?
        .map_or(1, |max| max as u64 + 1);

    let symbols = symbols_of(conn, BySymbol::Ticks)?;
    let mut ticks = conn.prepare(
        "SELECT price, volume, ts FROM ticks WHERE symbol = ?1 ORDER BY ts DESC, id DESC LIMIT ?2",
    )?;
    for symbol in symbols {
        let mut recent: Vec<Tick> = ticks
            .query_map(params![symbol, RECENT_TICKS_PER_SYMBOL as i64], |row| {
                Ok(Tick {
                    symbol: symbol.clone(),
                    price: row.get(0)?,
                    volume: row.get(1)?,
                    ts: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        recent.reverse();
        restored.ticks.extend(recent);
    }

    let mut candles = conn.prepare(
        "SELECT symbol, interval, start, open, high, low, close, volume FROM candles
         WHERE symbol = ?1 AND interval = ?2 ORDER BY start DESC LIMIT ?3",
    )?;
    let mut series: Vec<(String, String)> = Vec::new();
    for symbol in symbols_of(conn, BySymbol::Candles)? {
        for interval in intervals_of(conn, &symbol)? {
            series.push((symbol.clone(), interval));
        }
    }
    for (symbol, interval) in series {
        let mut rows: Vec<Candle> = candles
            .query_map(
                params![symbol, interval, CANDLES_PER_SERIES as i64],
                candle_from_row,
            )?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        restored.candles.extend(rows);
    }
    Ok(restored)
}

pub(super) fn posts(
    conn: &Connection,
    limit: usize,
    before: Option<u64>,
) -> Result<Vec<(Post, Counts)>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let posts = statement
        .query_map(params![before, limit as i64], post_from_row)?
        .collect();
    posts
}

/// The newest `limit` candles of `interval` starting in `[from, to]`,
/// oldest first. Longer intervals are rolled up from the stored 1 min rows
/// as they are read, newest bucket first, so the query touches only the
/// rows of the buckets it answers and holds one bucket's rows at a time.
pub(super) fn candles(
    conn: &Connection,
    symbol: &str,
    interval: CandleInterval,
    from: Option<i64>,
    to: Option<i64>,
    limit: usize,
) -> Result<Vec<Candle>, rusqlite::Error> {
    let source = interval.source();
    // A bucket that starts before `from` is not asked for, but its rows
    // may start after it: the bounds are widened to whole buckets.
    let (from, to) = whole_buckets(from, to, interval.millis());
    let mut statement = conn.prepare_cached(
        "SELECT symbol, interval, start, open, high, low, close, volume FROM candles
         WHERE symbol = ?1 AND interval = ?2 AND start >= ?3 AND start <= ?4
         ORDER BY start DESC",
    )?;
    let mut rows = statement.query(params![
        symbol,
        source.as_str(),
        from.unwrap_or(i64::MIN),
        to.unwrap_or(i64::MAX),
    ])?;
    let mut newest_first: Vec<Candle> = Vec::new();
    // Rows of the bucket being read, newest first.
    let mut bucket: Vec<Candle> = Vec::new();
    let finish = |bucket: &mut Vec<Candle>, out: &mut Vec<Candle>| {
        bucket.reverse();
        out.extend(rollup(bucket, interval));
        bucket.clear();
    };
    while newest_first.len() < limit {
        let Some(row) = rows.next()? else {
            break;
        };
        let candle = candle_from_row(row)?;
        if source == interval {
            newest_first.push(candle);
            continue;
        }
        let same_bucket = bucket.first().is_some_and(|newest| {
            bucket_start(newest.start, interval.millis())
                == bucket_start(candle.start, interval.millis())
        });
        if !same_bucket && !bucket.is_empty() {
            finish(&mut bucket, &mut newest_first);
            if newest_first.len() >= limit {
                break;
            }
        }
        bucket.push(candle);
    }
    if newest_first.len() < limit && !bucket.is_empty() {
        finish(&mut bucket, &mut newest_first);
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// The cluster log position the last commit recorded, if any.
pub(super) fn log_position(
    conn: &Connection,
) -> Result<Option<super::LogPosition>, rusqlite::Error> {
    let value = |key: &str| -> Result<Option<String>, rusqlite::Error> {
        conn.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|error| match error {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
    };
    let epoch = value(super::writer::LOG_EPOCH_KEY)?;
    let g = value(super::writer::LOG_G_KEY)?.and_then(|g| g.parse::<u64>().ok());
    Ok(epoch.zip(g).map(|(epoch, g)| super::LogPosition {
        epoch: epoch.into(),
        g,
    }))
}
