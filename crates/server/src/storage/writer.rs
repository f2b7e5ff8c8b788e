//! The writer thread: group commit, then publish through the broker, then acknowledge.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, Transaction, TransactionBehavior};

use pulse_core::model::{Candle, CandleInterval, Counts};
use pulse_core::time::bucket_start;

use super::{CommitLog, LogPosition, Request, Retention, StorageError, WriteBatch};
use crate::broker::Broker;
use crate::clock::now_ms;

/// Requests committed together at most.
const MAX_GROUP: usize = 512;
/// Rows deleted per pruning statement; small chunks keep commits flowing.
pub(super) const PRUNE_CHUNK: usize = 2_000;
/// How long SQLite itself waits for a lock held by another connection
/// before one attempt fails with `SQLITE_BUSY`.
pub(super) const ATTEMPT_BUSY_WAIT: Duration = Duration::from_millis(100);
/// Attempts at a group commit that meets a busy or locked database; with
/// the pauses below a group waits about 1.25 s at most before it fails.
const COMMIT_ATTEMPTS: u32 = 5;
/// Pause before the second attempt; doubled for each further one.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Pause before the first probe after a failure; doubled per further
/// failure up to [`MAX_PROBE_PAUSE`].
const FIRST_PROBE_PAUSE: Duration = Duration::from_millis(100);
const MAX_PROBE_PAUSE: Duration = Duration::from_secs(5);
/// Room the probe needs: a write of this size must fit before the node
/// takes writes again, so one freed page does not make it flap.
const PROBE_BYTES: i64 = 64 * 1024;

type Ack = tokio::sync::oneshot::Sender<Result<(), StorageError>>;

pub(super) struct Writer {
    conn: Connection,
    broker: Arc<dyn Broker>,
    healthy: Arc<AtomicBool>,
    /// Shared with `Storage::submit`: decremented once a request is answered.
    queued: Arc<AtomicUsize>,
    /// Shared with `Storage`: requests answered with an error.
    dropped: Arc<std::sync::atomic::AtomicU64>,
    retention: Retention,
    /// Failed commits and probes since the last successful commit; sets the
    /// probe backoff.
    failures: u32,
    /// When to probe the database again, while unhealthy.
    next_probe: Option<Instant>,
    /// The cluster's log, appended to before each local commit group.
    log: Option<Box<dyn CommitLog>>,
}

/// Busy and locked clear up by themselves (another connection holds the
/// lock); anything else (disk full, I/O error) is not retried.
fn is_transient(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// `FIRST_PROBE_PAUSE` doubled per failure after the first, at most `MAX_PROBE_PAUSE`.
fn probe_pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_PROBE_PAUSE
        .saturating_mul(1 << doublings)
        .min(MAX_PROBE_PAUSE)
}

impl Writer {
    pub fn new(
        conn: Connection,
        broker: Arc<dyn Broker>,
        healthy: Arc<AtomicBool>,
        queued: Arc<AtomicUsize>,
        dropped: Arc<std::sync::atomic::AtomicU64>,
        retention: Retention,
        log: Option<Box<dyn CommitLog>>,
    ) -> Self {
        Writer {
            log,
            conn,
            broker,
            healthy,
            queued,
            dropped,
            retention,
            failures: 0,
            next_probe: None,
        }
    }

    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        let mut next_prune = Instant::now() + self.retention.prune_every;
        loop {
            let deadline = self.next_probe.map_or(next_prune, |p| p.min(next_prune));
            let wait = deadline.saturating_duration_since(Instant::now());
            let first = match requests.recv_timeout(wait) {
                Ok(request) => Some(request),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if let Some(first) = first {
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
            }
            if self.next_probe.is_some_and(|p| Instant::now() >= p) {
                self.probe_round();
            }
            if Instant::now() >= next_prune {
                self.prune_round();
                next_prune = Instant::now() + self.retention.prune_every;
            }
        }
    }

    /// Answers one request and takes it off the queue count.
    fn answer(&self, ack: Ack, result: Result<(), StorageError>) {
        // Counted before the queue shrinks, so whoever sees an empty queue
        // also sees the failure.
        if result.is_err() {
            self.dropped.fetch_add(1, Ordering::AcqRel);
        }
        let _ = ack.send(result);
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    fn commit_group(&mut self, writes: Vec<(WriteBatch, Ack)>) {
        if writes.is_empty() {
            return;
        }
        if !self.healthy.load(Ordering::Relaxed) {
            for (_, ack) in writes {
                self.answer(
                    ack,
                    Err(StorageError::Unavailable(
                        "an earlier write failed; storage is not writable yet".into(),
                    )),
                );
            }
            return;
        }
        let position = match self.sequence(&writes) {
            Ok(position) => position,
            Err(error) => {
                // Not a disk fault: the node stays healthy, the group is
                // refused, and ingest rolls its views back to what is stored.
                tracing::warn!(%error, "commit group refused by the cluster log");
                let message = error.to_string();
                for (_, ack) in writes {
                    self.answer(ack, Err(StorageError::Unavailable(message.clone())));
                }
                return;
            }
        };
        match self.commit_with_retries(&writes, position.as_ref()) {
            Ok(()) => {
                self.failures = 0;
                // The whole group in one publish: each topic's events of the
                // group are taken under one lock and wake its flusher once.
                let mut events =
                    Vec::with_capacity(writes.iter().map(|(b, _)| b.events.len()).sum());
                let mut acks = Vec::with_capacity(writes.len());
                for (batch, ack) in writes {
                    events.extend(batch.events);
                    acks.push(ack);
                }
                self.broker.publish(events);
                for ack in acks {
                    self.answer(ack, Ok(()));
                }
            }
            Err(error) => {
                // The events are not released: no subscriber may see what
                // is not on disk. Writes stop until a probe succeeds.
                tracing::error!(%error, "storage write failed; refusing writes until storage recovers");
                if let (Some(log), Some(position)) = (&mut self.log, &position) {
                    log.not_stored(position);
                }
                self.healthy.store(false, Ordering::Relaxed);
                self.failures = self.failures.saturating_add(1);
                self.next_probe = Some(Instant::now() + probe_pause(self.failures));
                let message = error.to_string();
                for (_, ack) in writes {
                    self.answer(ack, Err(StorageError::Unavailable(message.clone())));
                }
            }
        }
    }

    /// The log position this group reaches: appended to the cluster's log
    /// first when it holds batches made here, else the newest replicated
    /// one. `None` on a single node.
    fn sequence(
        &mut self,
        writes: &[(WriteBatch, Ack)],
    ) -> Result<Option<LogPosition>, super::CommitLogError> {
        let replicated = writes
            .iter()
            .filter_map(|(batch, _)| batch.replicated.clone())
            .max_by_key(|position| position.g);
        let local: Vec<&WriteBatch> = writes
            .iter()
            .map(|(batch, _)| batch)
            .filter(|batch| batch.replicated.is_none())
            .collect();
        match &mut self.log {
            Some(log) if !local.is_empty() => log.append(&local).map(Some),
            _ => Ok(replicated),
        }
    }

    /// One transaction for the whole group; a busy or locked database is
    /// retried a few times with growing pauses before the group fails.
    fn commit_with_retries(
        &mut self,
        writes: &[(WriteBatch, Ack)],
        position: Option<&LogPosition>,
    ) -> Result<(), rusqlite::Error> {
        let received_at = now_ms();
        let mut pause = FIRST_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            let result = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .and_then(|tx| {
                    write_batches(&tx, writes.iter().map(|(b, _)| b), received_at)
                        .and_then(|()| record_log_position(&tx, position))
                        .and_then(|()| tx.commit())
                });
            match result {
                Err(error) if is_transient(&error) && attempt < COMMIT_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "database busy; retrying the commit");
                    std::thread::sleep(pause);
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// While unhealthy: a small write transaction that needs
    /// [`PROBE_BYTES`] of room; success makes the node ready again.
    fn probe_round(&mut self) {
        match probe(&mut self.conn) {
            Ok(()) => {
                tracing::info!("storage is writable again; accepting writes");
                self.next_probe = None;
                self.healthy.store(true, Ordering::Relaxed);
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                let pause = probe_pause(self.failures);
                tracing::warn!(%error, ?pause, "storage still not writable");
                self.next_probe = Some(Instant::now() + pause);
            }
        }
    }

    /// Deletes expired rows in bounded chunks.
    fn prune_round(&mut self) {
        match prune(
            &self.conn,
            &self.retention,
            now_ms(),
            self.broker.config().history_len,
        ) {
            Ok(report) => {
                tracing::debug!(deleted = report.deleted, "pruned expired rows");
                if !report.dropped_topics.is_empty() {
                    tracing::info!(topics = ?report.dropped_topics, "dropped topics of symbols without data");
                }
            }
            Err(error) => tracing::warn!(%error, "pruning failed; will retry"),
        }
    }
}

/// Writes and deletes a [`PROBE_BYTES`] row in one committed transaction:
/// fails like a real commit would on a full disk, a read-only file or a
/// lock held elsewhere, and leaves nothing behind.
/// Keys of the archive's place in the cluster's log (table `meta`).
pub(super) const LOG_EPOCH_KEY: &str = "cluster_epoch";
pub(super) const LOG_G_KEY: &str = "cluster_g";

/// Records, in the commit's own transaction, the log position it reaches,
/// so a restarted node follows on from exactly there.
fn record_log_position(
    tx: &Transaction<'_>,
    position: Option<&LogPosition>,
) -> Result<(), rusqlite::Error> {
    if let Some(position) = position {
        let mut upsert =
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
        upsert.execute(params![LOG_EPOCH_KEY, &*position.epoch])?;
        upsert.execute(params![LOG_G_KEY, position.g.to_string()])?;
    }
    Ok(())
}

pub(super) fn probe(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('write_probe', randomblob(?1))",
        params![PROBE_BYTES],
    )?;
    tx.execute("DELETE FROM meta WHERE key = 'write_probe'", [])?;
    tx.commit()
}

/// Writes `batches` in `tx`; `received_at` (wall time of the commit) is
/// what retention counts from.
pub(super) fn write_batches<'a>(
    tx: &Transaction<'_>,
    batches: impl Iterator<Item = &'a WriteBatch>,
    received_at: i64,
) -> Result<(), rusqlite::Error> {
    let batches: Vec<&WriteBatch> = batches.collect();
    let mut insert_tick = tx.prepare_cached(
        "INSERT INTO ticks (symbol, price, volume, ts, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut upsert_candle = tx.prepare_cached(
        "INSERT INTO candles (symbol, interval, start, open, high, low, close, volume, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (symbol, interval, start) DO UPDATE SET
           open = excluded.open, high = excluded.high, low = excluded.low,
           close = excluded.close, volume = excluded.volume,
           first_ts = NULL, last_ts = NULL, updated_at = excluded.updated_at",
    )?;
    // A backfilled tick into its stored candle: the extremes and the volume
    // always, the open or close only when the tick is known to be earlier
    // or later than the candle's own (unknown times keep them).
    let mut merge_candle = tx.prepare_cached(
        "INSERT INTO candles (symbol, interval, start, open, high, low, close, volume, updated_at, first_ts, last_ts)
         VALUES (?1, ?2, ?3, ?4, ?4, ?4, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (symbol, interval, start) DO UPDATE SET
           open = CASE WHEN first_ts IS NOT NULL AND excluded.first_ts < first_ts
                  THEN excluded.open ELSE open END,
           close = CASE WHEN last_ts IS NOT NULL AND excluded.last_ts >= last_ts
                   THEN excluded.close ELSE close END,
           first_ts = min(first_ts, excluded.first_ts),
           last_ts = max(last_ts, excluded.last_ts),
           high = max(high, excluded.high), low = min(low, excluded.low),
           volume = min(volume + excluded.volume, 1.7976931348623157e308),
           updated_at = excluded.updated_at",
    )?;
    let mut insert_post = tx.prepare_cached(
        "INSERT OR REPLACE INTO posts (id, author, text, ts, compound, pos, neu, neg, label, symbols)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut insert_engagement = tx.prepare_cached(
        "INSERT INTO engagement (post_id, kind, delta, ts, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
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
            insert_tick.execute(params![
                tick.symbol,
                tick.price,
                tick.volume,
                tick.ts,
                received_at
            ])?;
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
                event.ts,
                received_at
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
            c.interval.as_str(),
            c.start,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            received_at
        ])?;
    }
    for batch in &batches {
        for merge in &batch.candle_merges {
            let tick = &merge.tick;
            let Some(start) = bucket_start(tick.ts, merge.interval.millis()) else {
                continue; // the engine refuses such ticks before they get here
            };
            merge_candle.execute(params![
                tick.symbol,
                merge.interval.as_str(),
                start,
                tick.price,
                tick.volume,
                received_at,
                tick.ts
            ])?;
        }
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

/// Deletes the oldest rows of `table` (`ticks` or `engagement`) whose
/// arrival (`received_at`; for rows from before schema version 2, their
/// data timestamp `ts`) lies before `cutoff`, in chunks.
///
/// Both tables take their ids in commit order (`INTEGER PRIMARY KEY`, rows
/// only ever deleted from the oldest end), so the expired rows are a prefix
/// in id order: walking ids from the smallest and stopping at the first row
/// still within retention finds them without an index on `received_at`
/// (schema version 3 dropped it: it was written for every row, see
/// `migrations/0003_prune_by_id.sql`). An expired row behind a newer one (the
/// wall clock stepped back) waits until that one expires too: rows may be
/// kept a little longer, never deleted early.
fn prune_oldest(conn: &Connection, table: &str, cutoff: i64) -> Result<usize, rusqlite::Error> {
    let mut oldest = conn.prepare_cached(&format!(
        "SELECT id, coalesce(received_at, ts) < ?1 FROM {table} ORDER BY id LIMIT ?2"
    ))?;
    let mut delete = conn.prepare_cached(&format!("DELETE FROM {table} WHERE id <= ?1"))?;
    let mut total = 0;
    for _ in 0..10 {
        let mut last_expired = None;
        let mut expired = 0;
        let mut rows = oldest.query(params![cutoff, PRUNE_CHUNK as i64])?;
        while let Some(row) = rows.next()? {
            if !row.get::<_, bool>(1)? {
                break;
            }
            last_expired = Some(row.get::<_, i64>(0)?);
            expired += 1;
        }
        drop(rows);
        let Some(last) = last_expired else { break };
        total += delete.execute(params![last])?;
        if expired < PRUNE_CHUNK {
            break;
        }
    }
    Ok(total)
}

/// What one [`prune`] call did.
#[derive(Debug, Default)]
pub(super) struct PruneReport {
    /// Rows deleted (ticks, candles, engagement, events).
    pub deleted: usize,
    /// `ticks:<SYM>` and `candles:<SYM>` topics removed with their events
    /// because no tick and no candle of the symbol is left.
    pub dropped_topics: Vec<String>,
}

/// The symbol of a per-symbol topic (`ticks:<SYM>`, `candles:<SYM>`).
fn topic_symbol(topic: &str) -> Option<&str> {
    topic
        .strip_prefix("ticks:")
        .or_else(|| topic.strip_prefix("candles:"))
}

/// The deletes of one interval's aged candles (`?1` the cutoff, `?2` the
/// chunk): by `updated_at`, and, for rows from before schema v2 that have
/// none, by their start. Both go through `candles_interval_updated_at`
/// (`+start` keeps the planner off `candles_interval_start`, which would
/// walk every candle older than the cutoff, every backfilled one with it,
/// on the writer thread, every round).
pub(super) fn prune_candles_sql(interval: CandleInterval) -> [String; 2] {
    let interval = interval.as_str();
    ["updated_at < ?1", "updated_at IS NULL AND +start < ?1"].map(|aged| {
        format!(
            "DELETE FROM candles WHERE (symbol, interval, start) IN
               (SELECT symbol, interval, start FROM candles
                WHERE interval = '{interval}' AND {aged} LIMIT ?2)"
        )
    })
}

/// Deletes rows whose retention has passed since they were stored (rows
/// from before schema version 2 have no arrival time: their data timestamp
/// stands in), events beyond each topic's history, and the per-symbol
/// topics of symbols with no data left. At most a few chunks per table and
/// call, so writes are never held up long.
pub(super) fn prune(
    conn: &Connection,
    retention: &Retention,
    now: i64,
    history_len: usize,
) -> Result<PruneReport, rusqlite::Error> {
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
    let mut deleted = 0;
    deleted += prune_oldest(conn, "ticks", cutoff(retention.ticks))?;
    deleted += prune_oldest(conn, "engagement", cutoff(retention.engagement))?;
    // Candles are not in arrival order, so they are pruned by `updated_at`;
    // rows from before schema v2 have none and age out by their start.
    for (interval, keep) in [
        (CandleInterval::OneSecond, retention.candles_1s),
        (CandleInterval::OneMinute, retention.candles_1m),
    ] {
        for sql in prune_candles_sql(interval) {
            deleted += chunked(&sql, cutoff(keep))?;
        }
    }
    let mut topics = conn.prepare("SELECT topic, last_offset FROM topics")?;
    let topics: Vec<(String, i64)> = topics
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut has_data = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM ticks WHERE symbol = ?1)
             OR EXISTS (SELECT 1 FROM candles WHERE symbol = ?1)",
    )?;
    let mut dropped_topics = Vec::new();
    for (topic, last) in topics {
        if let Some(symbol) = topic_symbol(&topic) {
            if !has_data.query_row(params![symbol], |row| row.get::<_, bool>(0))? {
                deleted += conn.execute("DELETE FROM events WHERE topic = ?1", params![topic])?;
                conn.execute("DELETE FROM topics WHERE topic = ?1", params![topic])?;
                dropped_topics.push(topic);
                continue;
            }
        }
        let keep_from = last - history_len as i64;
        if keep_from > 0 {
            deleted += conn.execute(
                "DELETE FROM events WHERE topic = ?1 AND \"offset\" <= ?2",
                params![topic, keep_from],
            )?;
        }
    }
    Ok(PruneReport {
        deleted,
        dropped_topics,
    })
}
