//! Exports read from the database in chunks, each found by keyset
//! pagination (the last row's sort key, never an `OFFSET`), so every chunk
//! costs the same whatever the range and memory stays one chunk.
//!
//! Each export opens its **own read-only connection**: the storage's shared
//! reader is one mutex-guarded connection that the API and the dashboard
//! need promptly, and a long export must not hold it. Each chunk is its own
//! statement and hence its own short read transaction, so an export never
//! pins a WAL snapshot (which would stop checkpoints and grow the WAL) for
//! as long as a slow client takes to download. The price: an export is not
//! a snapshot. Ticks, posts and engagement are capped at the newest id that
//! existed when the export started (later rows are left out, pruned rows
//! may be missing); candles still open may show a later state than those
//! read before them.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, Row};

use pulse_core::model::{
    Candle, CandleInterval, Counts, Engagement, EngagementKind, Post, Tick, TimestampMs,
};

use super::read::{candle_from_row, post_from_row, POST_COLUMNS};
use super::{Storage, StorageError};

/// What to export: one kind of row and its filters. Bounds are inclusive;
/// `None` is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportQuery {
    /// Ordered by `ts`, then arrival.
    Ticks {
        symbol: Option<String>,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
    },
    /// One stored series, ordered by `start`.
    Candles {
        symbol: String,
        interval: CandleInterval,
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
    },
    /// Ordered by id (creation order), filtered by `ts`.
    Posts {
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
    },
    /// Ordered by `ts`, then arrival.
    Engagement {
        from: Option<TimestampMs>,
        to: Option<TimestampMs>,
    },
}

/// One chunk of exported rows, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportRows {
    Ticks(Vec<Tick>),
    Candles(Vec<Candle>),
    Posts(Vec<(Post, Counts)>),
    Engagement(Vec<Engagement>),
}

impl ExportRows {
    pub fn len(&self) -> usize {
        match self {
            Self::Ticks(rows) => rows.len(),
            Self::Candles(rows) => rows.len(),
            Self::Posts(rows) => rows.len(),
            Self::Engagement(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the next chunk starts: just after the last row returned.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// Nothing returned yet.
    Start,
    /// `(ts, id)` of ticks and engagement, `(start, 0)` of candles, `(0, id)` of posts.
    After(i64, i64),
    Done,
}

/// Reads one export chunk by chunk on its own read-only connection. Blocking:
/// run it on a blocking thread.
pub struct ExportReader {
    conn: Connection,
    query: ExportQuery,
    /// The newest id when the export started (ticks, posts, engagement);
    /// for posts of a time range, the newest in that range.
    max_id: i64,
    /// Posts of a time range: ids at or below this are outside it (posts
    /// are in id order, not `ts` order, so a range is found by its ids).
    min_id: i64,
    cursor: Cursor,
}

impl Storage {
    /// Opens a read-only connection of its own for `query`. Blocking.
    pub fn export_reader(&self, query: ExportQuery) -> Result<ExportReader, StorageError> {
        ExportReader::open(&self.path, query)
    }
}

impl ExportReader {
    pub fn open(path: &Path, query: ExportQuery) -> Result<Self, StorageError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StorageError::Open {
            path: path.to_owned(),
            source,
        })?;
        // The writer's group commits are short; waiting for one is fine.
        conn.busy_timeout(Duration::from_secs(5))?;
        let table = match query {
            ExportQuery::Ticks { .. } => Some("ticks"),
            ExportQuery::Posts { .. } => Some("posts"),
            ExportQuery::Engagement { .. } => Some("engagement"),
            ExportQuery::Candles { .. } => None,
        };
        let max_id = match table {
            Some(table) => conn
                .query_row(&format!("SELECT MAX(id) FROM {table}"), [], |row| {
                    row.get::<_, Option<i64>>(0)
                })?
                .unwrap_or(0),
            None => 0,
        };
        // Without this, a range's first chunk walked every post before it
        // and its last every post after it (the table is never pruned).
        let (min_id, max_id) = match query {
            ExportQuery::Posts { from, to } if from.is_some() || to.is_some() => {
                let (first, last) = conn.query_row(
                    "SELECT MIN(id), MAX(id) FROM posts WHERE ts >= ?1 AND ts <= ?2",
                    params![from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)],
                    |row| Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?)),
                )?;
                match (first, last) {
                    (Some(first), Some(last)) => (first - 1, last.min(max_id)),
                    _ => (0, 0),
                }
            }
            _ => (0, max_id),
        };
        Ok(Self {
            conn,
            query,
            max_id,
            min_id,
            cursor: Cursor::Start,
        })
    }

    /// The next at most `limit` rows, or `None` once every row was returned.
    pub fn next_chunk(&mut self, limit: usize) -> Result<Option<ExportRows>, StorageError> {
        let after = match self.cursor {
            Cursor::Done => return Ok(None),
            Cursor::Start => None,
            Cursor::After(key, id) => Some((key, id)),
        };
        let limit = limit.clamp(1, i64::MAX as usize) as i64;
        let (rows, last) = match &self.query {
            ExportQuery::Ticks { symbol, from, to } => {
                let keyed = self.ticks(symbol.as_deref(), (*from, *to), after, limit)?;
                let last = keyed.last().map(|(id, tick)| (tick.ts, *id));
                (
                    ExportRows::Ticks(keyed.into_iter().map(|(_, t)| t).collect()),
                    last,
                )
            }
            ExportQuery::Candles {
                symbol,
                interval,
                from,
                to,
            } => {
                let lower = match after {
                    Some((start, _)) => start.checked_add(1),
                    None => Some(from.unwrap_or(i64::MIN)),
                };
                let rows = match lower {
                    Some(lower) => self.candles(symbol, *interval, lower, *to, limit)?,
                    None => Vec::new(),
                };
                let last = rows.last().map(|c| (c.start, 0));
                (ExportRows::Candles(rows), last)
            }
            ExportQuery::Posts { from, to } => {
                let after_id = after.map_or(self.min_id, |(_, id)| id);
                let rows = self.posts((*from, *to), after_id, limit)?;
                let last = rows.last().map(|(p, _)| (0, p.id as i64));
                (ExportRows::Posts(rows), last)
            }
            ExportQuery::Engagement { from, to } => {
                let keyed = self.engagement((*from, *to), after, limit)?;
                let last = keyed.last().map(|(id, event)| (event.ts, *id));
                (
                    ExportRows::Engagement(keyed.into_iter().map(|(_, e)| e).collect()),
                    last,
                )
            }
        };
        self.cursor = match last {
            Some((key, id)) if rows.len() as i64 == limit => Cursor::After(key, id),
            _ => Cursor::Done,
        };
        Ok((!rows.is_empty()).then_some(rows))
    }

    /// Ticks in `(ts, id)` order after `after`: the index range starts at
    /// the cursor's `ts` and the rows of that same `ts` already returned are
    /// skipped by id, so equal timestamps across a chunk boundary come out
    /// exactly once.
    fn ticks(
        &self,
        symbol: Option<&str>,
        range: Range,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<(i64, Tick)>, StorageError> {
        let bounds = keyset_bounds(range, after, self.max_id);
        let sql = format!(
            "SELECT id, symbol, price, volume, ts FROM ticks WHERE {} {KEYSET} ORDER BY ts, id LIMIT ?6",
            if symbol.is_some() { "symbol = ?7 AND" } else { "" }
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let row = |row: &Row<'_>| -> Result<(i64, Tick), rusqlite::Error> {
            Ok((
                row.get(0)?,
                Tick {
                    symbol: row.get(1)?,
                    price: row.get(2)?,
                    volume: row.get(3)?,
                    ts: row.get(4)?,
                },
            ))
        };
        let [lower, upper, max_id, after_ts, after_id] = bounds;
        let rows = match symbol {
            Some(symbol) => statement
                .query_map(
                    params![lower, upper, max_id, after_ts, after_id, limit, symbol],
                    row,
                )?
                .collect::<Result<_, _>>()?,
            None => statement
                .query_map(
                    params![lower, upper, max_id, after_ts, after_id, limit],
                    row,
                )?
                .collect::<Result<_, _>>()?,
        };
        Ok(rows)
    }

    fn candles(
        &self,
        symbol: &str,
        interval: CandleInterval,
        lower: i64,
        to: Option<TimestampMs>,
        limit: i64,
    ) -> Result<Vec<Candle>, StorageError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT symbol, interval, start, open, high, low, close, volume FROM candles
             WHERE symbol = ?1 AND interval = ?2 AND start >= ?3 AND start <= ?4
             ORDER BY start LIMIT ?5",
        )?;
        let rows = statement
            .query_map(
                params![
                    symbol,
                    interval.as_str(),
                    lower,
                    to.unwrap_or(i64::MAX),
                    limit
                ],
                candle_from_row,
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn posts(
        &self,
        (from, to): Range,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(Post, Counts)>, StorageError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {POST_COLUMNS} FROM posts
             WHERE id > ?1 AND id <= ?2 AND ts >= ?3 AND ts <= ?4 ORDER BY id LIMIT ?5"
        ))?;
        let rows = statement
            .query_map(
                params![
                    after_id,
                    self.max_id,
                    from.unwrap_or(i64::MIN),
                    to.unwrap_or(i64::MAX),
                    limit
                ],
                post_from_row,
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Like [`ExportReader::ticks`]: `(ts, id)` order.
    fn engagement(
        &self,
        range: Range,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<(i64, Engagement)>, StorageError> {
        let [lower, upper, max_id, after_ts, after_id] = keyset_bounds(range, after, self.max_id);
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT id, post_id, kind, delta, ts FROM engagement WHERE {KEYSET}
             ORDER BY ts, id LIMIT ?6"
        ))?;
        let rows = statement
            .query_map(
                params![lower, upper, max_id, after_ts, after_id, limit],
                |row| {
                    let kind: String = row.get(2)?;
                    let kind = EngagementKind::from_name(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            2,
                            rusqlite::types::Type::Text,
                            format!("unknown engagement kind '{kind}'").into(),
                        )
                    })?;
                    Ok((
                        row.get(0)?,
                        Engagement {
                            post_id: row.get::<_, i64>(1)?.max(0) as u64,
                            kind,
                            delta: row.get(3)?,
                            ts: row.get(4)?,
                        },
                    ))
                },
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

/// `from` and `to` of a query (inclusive, `None` open).
type Range = (Option<TimestampMs>, Option<TimestampMs>);

/// The `(ts, id)` keyset condition shared by ticks and engagement: within
/// the range, no newer than the export's first id, after the cursor.
const KEYSET: &str = "ts >= ?1 AND ts <= ?2 AND id <= ?3 AND (ts > ?4 OR id > ?5)";

/// `?1`..`?5` of [`KEYSET`]: the index range starts at the cursor's `ts`
/// (or `from`), and rows at exactly that `ts` must lie after its id.
fn keyset_bounds((from, to): Range, after: Option<(i64, i64)>, max_id: i64) -> [i64; 5] {
    let upper = to.unwrap_or(i64::MAX);
    match after {
        Some((ts, id)) => [ts, upper, max_id, ts, id],
        None => [from.unwrap_or(i64::MIN), upper, max_id, i64::MIN, i64::MIN],
    }
}

#[cfg(test)]
mod tests;
