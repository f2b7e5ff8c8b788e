//! Reads of the past, for time travel: what the stored data says the
//! dashboard showed at a given time, and what happened after it.
//!
//! A candle counts from its end (`start + width`), when its close was known,
//! so the past never shows a price from after the moment asked for. Posts
//! count from their `ts`. A post's counts at a time are its totals less the
//! engagement events after that time (exact while those events are kept).

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::read::{candle_from_row, post_from_row, symbols_of, BySymbol, POST_COLUMNS};
use pulse_core::model::{
    Candle, CandleInterval, Counts, Engagement, EngagementKind, Post, TimestampMs,
};
use pulse_core::time::bucket_start;

/// A symbol as it stood at a time: from its stored candles.
#[derive(Clone, Debug, PartialEq)]
pub struct PastQuote {
    pub symbol: String,
    /// Open of the first candle of that UTC day (the change is measured from it).
    pub open: f64,
    pub last: f64,
    /// When `last` was known: the end of its candle.
    pub last_ts: TimestampMs,
    /// The latest closes, oldest first, as `(end, close)`.
    pub spark: Vec<(TimestampMs, f64)>,
}

/// Every symbol with a candle that ended by `at`, finest interval first.
pub(super) fn quotes_at(
    conn: &Connection,
    at: TimestampMs,
    spark_points: usize,
) -> Result<Vec<PastQuote>, rusqlite::Error> {
    let symbols = symbols_of(conn, BySymbol::Candles)?;
    let mut latest = conn.prepare_cached(
        "SELECT start, close FROM candles WHERE symbol = ?1 AND interval = ?2 AND start <= ?3
         ORDER BY start DESC LIMIT ?4",
    )?;
    let mut day_open = conn.prepare_cached(
        "SELECT open FROM candles WHERE symbol = ?1 AND interval = '1m' AND start >= ?2 AND start <= ?3
         ORDER BY start LIMIT 1",
    )?;
    let mut quotes = Vec::new();
    for symbol in symbols {
        // The finest interval whose newest candle ended last.
        let mut best: Option<Vec<(TimestampMs, f64)>> = None;
        for interval in CandleInterval::STORED {
            let width = interval.millis();
            let mut closes: Vec<(TimestampMs, f64)> = latest
                .query_map(
                    params![
                        symbol,
                        interval.as_str(),
                        at.saturating_sub(width),
                        spark_points as i64
                    ],
                    |row| Ok((row.get::<_, i64>(0)?.saturating_add(width), row.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            closes.reverse();
            let newer = match (&best, closes.last()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(b), Some(c)) => b.last().is_none_or(|l| c.0 > l.0),
            };
            if newer {
                best = Some(closes);
            }
        }
        let Some(spark) = best else { continue };
        let Some(&(last_ts, last)) = spark.last() else {
            continue;
        };
        let day = bucket_start(at, CandleInterval::OneDay.millis()).unwrap_or(at);
        let minute = CandleInterval::OneMinute.millis();
        let open = day_open
            .query_row(params![symbol, day, at.saturating_sub(minute)], |row| {
                row.get(0)
            })
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(spark[0].1),
                other => Err(other),
            })?;
        quotes.push(PastQuote {
            symbol,
            open,
            last,
            last_ts,
            spark,
        });
    }
    Ok(quotes)
}

/// Candles of `interval` (stored ones only) that ended in `(from, to]`,
/// oldest end first; of every symbol, or of `symbol`. At most `limit`.
pub(super) fn candles_ended_between(
    conn: &Connection,
    symbol: Option<&str>,
    interval: CandleInterval,
    from: TimestampMs,
    to: TimestampMs,
    limit: usize,
) -> Result<Vec<Candle>, rusqlite::Error> {
    let width = interval.source().millis();
    let mut statement = conn.prepare_cached(
        "SELECT symbol, interval, start, open, high, low, close, volume FROM candles
         WHERE interval = ?1 AND start > ?2 AND start <= ?3 AND (?4 IS NULL OR symbol = ?4)
         ORDER BY start, symbol LIMIT ?5",
    )?;
    let candles = statement
        .query_map(
            params![
                interval.source().as_str(),
                from.saturating_sub(width),
                to.saturating_sub(width),
                symbol,
                limit as i64
            ],
            candle_from_row,
        )?
        .collect();
    candles
}

/// Posts with `ts` in `(from, to]`, oldest first, at most `limit`, each
/// with its counts at `counts_at`.
pub(super) fn posts_between(
    conn: &Connection,
    from: TimestampMs,
    to: TimestampMs,
    limit: usize,
    counts_at: TimestampMs,
) -> Result<Vec<(Post, Counts)>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE ts > ?1 AND ts <= ?2 ORDER BY ts, id LIMIT ?3"
    ))?;
    let posts: Vec<(Post, Counts)> = statement
        .query_map(params![from, to, limit as i64], post_from_row)?
        .collect::<Result<_, _>>()?;
    counts_then(conn, posts, counts_at)
}

/// The newest `limit` posts with `ts` at or before `at`, newest first, with
/// their counts at `at`.
pub(super) fn posts_until(
    conn: &Connection,
    at: TimestampMs,
    limit: usize,
) -> Result<Vec<(Post, Counts)>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE ts <= ?1 ORDER BY ts DESC, id DESC LIMIT ?2"
    ))?;
    let posts: Vec<(Post, Counts)> = statement
        .query_map(params![at, limit as i64], post_from_row)?
        .collect::<Result<_, _>>()?;
    counts_then(conn, posts, at)
}

/// Each post's totals less its engagement after `at`.
fn counts_then(
    conn: &Connection,
    posts: Vec<(Post, Counts)>,
    at: TimestampMs,
) -> Result<Vec<(Post, Counts)>, rusqlite::Error> {
    let mut later = conn.prepare_cached(
        "SELECT kind, SUM(delta) FROM engagement WHERE post_id = ?1 AND ts > ?2 GROUP BY kind",
    )?;
    posts
        .into_iter()
        .map(|(post, mut counts)| {
            let rows = later.query_map(params![post.id as i64, at], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (kind, delta) = row?;
                if let Some(kind) = EngagementKind::from_name(&kind) {
                    counts.add(kind, delta.saturating_neg());
                }
            }
            Ok((post, counts.clamped()))
        })
        .collect()
}

/// Which end of a range a bounded read keeps.
#[derive(Clone, Copy, Debug)]
pub enum Keep {
    /// The first `limit` (a player moving forward reads on from there).
    Earliest,
    /// The last `limit` (a window ending at a moment: what is nearest it counts most).
    Latest,
}

/// Engagement events with `ts` in `(from, to]`, in time order, at most
/// `limit` of them from the end `keep` says.
pub(super) fn engagement_between(
    conn: &Connection,
    from: TimestampMs,
    to: TimestampMs,
    limit: usize,
    keep: Keep,
) -> Result<Vec<Engagement>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(match keep {
        Keep::Earliest => {
            "SELECT post_id, kind, delta, ts FROM engagement WHERE ts > ?1 AND ts <= ?2
             ORDER BY ts, id LIMIT ?3"
        }
        Keep::Latest => {
            "SELECT post_id, kind, delta, ts FROM engagement WHERE ts > ?1 AND ts <= ?2
             ORDER BY ts DESC, id DESC LIMIT ?3"
        }
    })?;
    let rows = statement.query_map(params![from, to, limit as i64], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (post_id, kind, delta, ts) = row?;
        if let Some(kind) = EngagementKind::from_name(&kind) {
            events.push(Engagement {
                post_id: post_id as u64,
                kind,
                delta,
                ts,
            });
        }
    }
    if matches!(keep, Keep::Latest) {
        events.reverse();
    }
    Ok(events)
}

/// Posts by id (those still stored), with their counts at `at`.
pub(super) fn posts_by_id(
    conn: &Connection,
    ids: &[u64],
    at: TimestampMs,
) -> Result<HashMap<u64, (Post, Counts)>, rusqlite::Error> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {POST_COLUMNS} FROM posts WHERE id = ?1"))?;
    let mut found = Vec::new();
    for id in ids {
        match statement.query_row(params![*id as i64], post_from_row) {
            Ok(post) => found.push(post),
            Err(rusqlite::Error::QueryReturnedNoRows) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(counts_then(conn, found, at)?
        .into_iter()
        .map(|(post, counts)| (post.id, (post, counts)))
        .collect())
}
