//! The writer thread: group commit, then release to the hub, then acknowledge.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, Transaction};

use crate::analytics::engagement::Counts;
use crate::model::{Candle, CandleInterval};

use super::{Request, Retention, StorageError, WriteBatch};
use crate::server::hub::Hub;
use crate::server::ingest::now_ms;

/// Requests committed together at most.
const MAX_GROUP: usize = 512;
/// Rows deleted per pruning statement; small chunks keep commits flowing.
const PRUNE_CHUNK: usize = 2_000;

pub(super) struct Writer {
    pub conn: Connection,
    pub hub: Arc<Hub>,
    pub healthy: Arc<AtomicBool>,
    pub retention: Retention,
}

pub(super) fn interval_name(interval: CandleInterval) -> &'static str {
    match interval {
        CandleInterval::OneSecond => "1s",
        CandleInterval::OneMinute => "1m",
    }
}

impl Writer {
    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        let mut next_prune = Instant::now() + self.retention.prune_every;
        loop {
            let wait = next_prune.saturating_duration_since(Instant::now());
            let first = match requests.recv_timeout(wait) {
                Ok(request) => request,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.prune_round();
                    next_prune = Instant::now() + self.retention.prune_every;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match requests.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            let mut writes = Vec::with_capacity(group.len());
            let mut shutdown = None;
            for request in group {
                match request {
                    Request::Write(batch, ack) => writes.push((batch, ack)),
                    Request::Shutdown(ack) => shutdown = Some(ack),
                }
            }
            self.commit_group(writes);
            if let Some(ack) = shutdown {
                let result = self
                    .conn
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(StorageError::from);
                let _ = ack.send(result);
                return;
            }
            if Instant::now() >= next_prune {
                self.prune_round();
                next_prune = Instant::now() + self.retention.prune_every;
            }
        }
    }

    fn commit_group(
        &mut self,
        writes: Vec<(
            WriteBatch,
            tokio::sync::oneshot::Sender<Result<(), StorageError>>,
        )>,
    ) {
        if writes.is_empty() {
            return;
        }
        if !self.healthy.load(Ordering::Relaxed) {
            for (_, ack) in writes {
                let _ = ack.send(Err(StorageError::Unavailable(
                    "an earlier write failed".into(),
                )));
            }
            return;
        }
        let result = self.conn.transaction().and_then(|tx| {
            write_batches(&tx, writes.iter().map(|(b, _)| b)).and_then(|()| tx.commit())
        });
        match result {
            Ok(()) => {
                for (batch, ack) in writes {
                    self.hub.release(batch.events);
                    let _ = ack.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "storage write failed; refusing further writes");
                self.healthy.store(false, Ordering::Relaxed);
                let message = error.to_string();
                for (_, ack) in writes {
                    let _ = ack.send(Err(StorageError::Unavailable(message.clone())));
                }
            }
        }
    }

    /// Deletes expired rows in bounded chunks.
    fn prune_round(&mut self) {
        if let Err(error) = prune(
            &self.conn,
            &self.retention,
            now_ms(),
            self.hub.config().history_len,
        ) {
            tracing::warn!(%error, "pruning failed; will retry");
        }
    }
}

pub(super) fn write_batches<'a>(
    tx: &Transaction<'_>,
    batches: impl Iterator<Item = &'a WriteBatch>,
) -> Result<(), rusqlite::Error> {
    let batches: Vec<&WriteBatch> = batches.collect();
    let mut insert_tick =
        tx.prepare_cached("INSERT INTO ticks (symbol, price, volume, ts) VALUES (?1, ?2, ?3, ?4)")?;
    let mut upsert_candle = tx.prepare_cached(
        "INSERT INTO candles (symbol, interval, start, open, high, low, close, volume)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (symbol, interval, start) DO UPDATE SET
           open = excluded.open, high = excluded.high, low = excluded.low,
           close = excluded.close, volume = excluded.volume",
    )?;
    let mut insert_post = tx.prepare_cached(
        "INSERT INTO posts (id, author, text, ts, compound, pos, neu, neg, label, symbols)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut insert_engagement = tx.prepare_cached(
        "INSERT INTO engagement (post_id, kind, delta, ts) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut update_totals =
        tx.prepare_cached("UPDATE posts SET likes = ?2, shares = ?3, comments = ?4 WHERE id = ?1")?;
    let mut insert_event = tx.prepare_cached(
        "INSERT OR REPLACE INTO events (topic, \"offset\", body, conflation_key, source_ts)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    // A candle changes with every tick and a post's totals with every
    // reaction: only their last state in this commit is written.
    let mut candles: HashMap<(&str, CandleInterval, i64), &Candle> = HashMap::new();
    let mut totals: HashMap<u64, &Counts> = HashMap::new();
    for batch in &batches {
        for c in &batch.candles {
            candles.insert((c.symbol.as_str(), c.interval, c.start), c);
        }
        for (event, counts) in &batch.engagement {
            totals.insert(event.post_id, counts);
        }
    }
    let mut topics: HashMap<&str, (&str, u64)> = HashMap::new();
    for batch in &batches {
        for tick in &batch.ticks {
            insert_tick.execute(params![tick.symbol, tick.price, tick.volume, tick.ts])?;
        }
        for post in &batch.posts {
            let s = post.sentiment;
            let symbols = serde_json::to_string(&post.symbols).unwrap_or_else(|_| "[]".into());
            insert_post.execute(params![
                post.id as i64,
                post.author,
                post.text,
                post.ts,
                s.compound,
                s.pos,
                s.neu,
                s.neg,
                s.label.as_str(),
                symbols
            ])?;
        }
        for (event, _) in &batch.engagement {
            insert_engagement.execute(params![
                event.post_id as i64,
                event.kind.as_str(),
                event.delta,
                event.ts
            ])?;
        }
        for prepared in &batch.events {
            let event = prepared.event();
            insert_event.execute(params![
                prepared.topic(),
                event.offset as i64,
                &*event.body,
                event.conflation_key.as_deref(),
                event.source_ts
            ])?;
            let entry = topics
                .entry(prepared.topic())
                .or_insert((prepared.epoch(), 0));
            entry.1 = entry.1.max(event.offset);
        }
    }
    // Posts are inserted above, so totals of a post created in this commit land too.
    for (post_id, counts) in totals {
        update_totals.execute(params![
            post_id as i64,
            counts.likes,
            counts.shares,
            counts.comments
        ])?;
    }
    for c in candles.into_values() {
        upsert_candle.execute(params![
            c.symbol,
            interval_name(c.interval),
            c.start,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume
        ])?;
    }
    let mut upsert_topic = tx.prepare_cached(
        "INSERT INTO topics (topic, epoch, last_offset) VALUES (?1, ?2, ?3)
         ON CONFLICT (topic) DO UPDATE SET epoch = excluded.epoch,
           last_offset = max(last_offset, excluded.last_offset)",
    )?;
    for (topic, (epoch, offset)) in topics {
        upsert_topic.execute(params![topic, epoch, offset as i64])?;
    }
    Ok(())
}

/// Deletes rows older than their retention and events beyond each topic's
/// history; at most a few chunks per call so writes are never held up long.
pub(super) fn prune(
    conn: &Connection,
    retention: &Retention,
    now: i64,
    history_len: usize,
) -> Result<usize, rusqlite::Error> {
    let cutoff = |keep: Duration| now.saturating_sub(keep.as_millis().min(i64::MAX as u128) as i64);
    let chunked = |sql: &str, bound: i64| -> Result<usize, rusqlite::Error> {
        let mut total = 0;
        for _ in 0..10 {
            let deleted = conn.execute(sql, params![bound, PRUNE_CHUNK as i64])?;
            total += deleted;
            if deleted < PRUNE_CHUNK {
                break;
            }
        }
        Ok(total)
    };
    let mut deleted = chunked(
        "DELETE FROM ticks WHERE id IN (SELECT id FROM ticks WHERE ts < ?1 LIMIT ?2)",
        cutoff(retention.ticks),
    )?;
    deleted += chunked(
        "DELETE FROM candles WHERE (symbol, interval, start) IN
           (SELECT symbol, interval, start FROM candles WHERE interval = '1s' AND start < ?1 LIMIT ?2)",
        cutoff(retention.candles_1s),
    )?;
    deleted += chunked(
        "DELETE FROM candles WHERE (symbol, interval, start) IN
           (SELECT symbol, interval, start FROM candles WHERE interval = '1m' AND start < ?1 LIMIT ?2)",
        cutoff(retention.candles_1m),
    )?;
    deleted += chunked(
        "DELETE FROM engagement WHERE id IN (SELECT id FROM engagement WHERE ts < ?1 LIMIT ?2)",
        cutoff(retention.engagement),
    )?;
    let mut topics = conn.prepare("SELECT topic, last_offset FROM topics")?;
    let topics: Vec<(String, i64)> = topics
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (topic, last) in topics {
        let keep_from = last - history_len as i64;
        if keep_from > 0 {
            deleted += conn.execute(
                "DELETE FROM events WHERE topic = ?1 AND \"offset\" <= ?2",
                params![topic, keep_from],
            )?;
        }
    }
    Ok(deleted)
}
