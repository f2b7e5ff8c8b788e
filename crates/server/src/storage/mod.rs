//! Durable storage on an embedded SQLite file (WAL mode), created and
//! migrated on first start.
//!
//! Writes go through one writer thread that commits whatever has queued up
//! in a single transaction (group commit) and only then releases the
//! batch's hub events to subscribers and acknowledges the producers. So an
//! acknowledged ingest is on disk, and no subscriber ever sees an event that
//! a crash could take back: after a restart, epochs and offsets continue and
//! clients resume with `recovered: true`.
//!
//! Under failure: a busy database is retried with backoff before a group
//! fails; a failed group marks the node unhealthy (ingest answers 503,
//! `/readyz` too) until the writer's probe finds the disk writable again.
//! The queue in front of the writer is bounded and never blocks a producer:
//! past `max_write_queue` batches, `submit` fails at once.
//!
//! rusqlite (with SQLite bundled) rather than sqlx: SQLite allows one writer
//! at a time anyway, so a dedicated thread with a synchronous connection is
//! the natural shape for group commit, with no async driver or pool to tune
//! and no system library to install.

mod export;
mod past;
mod read;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use pulse_core::model::Counts;
use pulse_core::model::{Candle, Engagement, Post, Tick};

use super::broker::{Broker, PendingEvent};
use super::sync::lock;

pub use export::{ExportQuery, ExportReader, ExportRows};
pub use past::{Keep, PastQuote};
pub use read::{Restored, RestoredTopic};

/// Schema versions, applied in order; `PRAGMA user_version` records progress.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_arrival_times.sql"),
    include_str!("../../migrations/0003_prune_by_id.sql"),
    include_str!("../../migrations/0004_candle_tick_times.sql"),
];

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// `synchronous=FULL` (survives power loss) rather than `NORMAL`
    /// (survives a process crash).
    pub sync_full: bool,
    pub retention: Retention,
    /// Largest size the file may grow to, in MiB (`None`: no limit). A
    /// write beyond it fails like a full disk does.
    pub max_mib: Option<u64>,
    /// Batches queued for the writer at most (waiting or being written);
    /// beyond, `submit` fails at once with [`StorageError::Unavailable`].
    pub max_write_queue: usize,
}

/// How long each kind of data is kept, counted from when the node stored it
/// (a candle: last changed it), not from the data's own timestamp, so a
/// backfill of old data is kept as long as live data. Expired rows are
/// pruned in small chunks between write groups, so pruning never stalls
/// ingest for long.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub ticks: Duration,
    pub candles_1s: Duration,
    pub candles_1m: Duration,
    pub engagement: Duration,
    pub prune_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the database {path} is not usable: {source}")]
    Unusable {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write failed (disk full, I/O error, busy beyond the retries), the
    /// write queue is full, or the writer has stopped. Ingest answers 503;
    /// after a failed write the node refuses writes until the writer's
    /// probe finds the database writable again.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// Everything one ingest call changes, written in one go.
#[derive(Default)]
pub struct WriteBatch {
    pub events: Vec<PendingEvent>,
    pub ticks: Vec<Tick>,
    pub candles: Vec<Candle>,
    /// Backfilled ticks that go into stored candles the engine no longer holds.
    pub candle_merges: Vec<CandleMerge>,
    pub posts: Vec<Post>,
    /// Accepted engagement events with the post's totals after each.
    pub engagement: Vec<(Engagement, Counts)>,
    /// What else followers replay on their engines (see [`Replay`]).
    pub replay: Replay,
    /// Set on a follower: the leader's commit group this batch copies, so
    /// the archive records how far it has followed the log.
    pub replicated: Option<LogPosition>,
}

/// A backfilled tick for the stored candle of `interval` that holds its
/// time: the market engine's ring for that interval no longer reaches so
/// far back, so the writer merges the tick into the row (or creates it).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CandleMerge {
    pub interval: pulse_core::model::CandleInterval,
    pub tick: Tick,
}

/// The parts of an ingest call that are not data rows but change the
/// engines all the same; a follower replays them in order to stay able to
/// take over. Also the answer to a request forwarded by another node.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Replay {
    /// The leader closed candles due at this wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_due: Option<i64>,
    /// Symbols the leader stopped tracking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forgotten: Vec<String>,
    /// Epochs of topics the leader removed: a topic created again gets a
    /// new epoch, so the log forgets these topics' last offsets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_epochs: Vec<String>,
    /// A dashboard reaction the batch's engagement event records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<crate::reactions::ReactionChange>,
    /// A request from another node's inbox that this batch answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Box<Answer>>,
}

/// The outcome of a forwarded request, carried in the commit group that
/// holds its data (or alone, for a refusal), so the requester acknowledges
/// exactly what is committed.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// Inbox entry id; the log records the newest one answered.
    pub inbox_id: String,
    pub node: String,
    pub request: u64,
    /// The result's JSON (`Ok`) or the refusal.
    pub outcome: Result<serde_json::Value, RemoteRefusal>,
}

/// An ingest refusal as it travels between nodes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RemoteRefusal {
    /// `invalid`, `unknown_post` or `unavailable`.
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<u64>,
}

/// A commit group's place in the cluster's log: the dataset epoch and the
/// group's sequence number `g`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPosition {
    pub epoch: Arc<str>,
    pub g: u64,
}

/// Where a leader's commit groups are sequenced before they are written
/// here: the cluster's log in Redis. A single node has none.
pub trait CommitLog: Send {
    /// Appends the batches this node made (not replicated ones) as one
    /// commit group; on error nothing was appended and nothing is written.
    fn append(&mut self, batches: &[&WriteBatch]) -> Result<LogPosition, CommitLogError>;

    /// The group appended at `position` could not be written here (disk
    /// failure): this node must take it from the log again, as a follower.
    fn not_stored(&mut self, position: &LogPosition);
}

#[derive(Debug, thiserror::Error)]
pub enum CommitLogError {
    /// The log refused the group (another leader, another epoch, a gap) or
    /// could not be reached; the node stops writing until it knows more.
    #[error("the cluster log did not take the write: {0}")]
    Refused(String),
}

/// Resolves when the batch is on disk (and its events are released).
pub type Commit = oneshot::Receiver<Result<(), StorageError>>;

// Nearly every request is a write (shutdown comes once): boxing the batch
// would only add an allocation per write.
#[allow(clippy::large_enum_variant)]
enum Request {
    Write(WriteBatch, oneshot::Sender<Result<(), StorageError>>),
    /// Write everything queued before it, checkpoint, and stop.
    Shutdown(oneshot::Sender<Result<(), StorageError>>),
}

pub struct Storage {
    path: PathBuf,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    reader: Mutex<Connection>,
    healthy: Arc<AtomicBool>,
    /// Write requests submitted and not yet answered by the writer.
    queued: Arc<AtomicUsize>,
    /// Write requests answered with an error so far: their data was applied
    /// in memory but never committed, so ingest rolls its views back.
    dropped: Arc<AtomicU64>,
    history_len: usize,
    max_queue: usize,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn open_connection(path: &Path, sync_full: bool) -> Result<Connection, StorageError> {
    let conn = Connection::open(path).map_err(|source| StorageError::Open {
        path: path.to_owned(),
        source,
    })?;
    let unusable = |source| StorageError::Unusable {
        path: path.to_owned(),
        source,
    };
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(unusable)?;
    // The first statement that reads the file: fails here for a corrupt or
    // foreign file, or one another process holds locked.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(unusable)?;
    conn.pragma_update(
        None,
        "synchronous",
        if sync_full { "FULL" } else { "NORMAL" },
    )
    .map_err(unusable)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StorageError> {
    let unusable = |source| StorageError::Unusable {
        path: path.to_owned(),
        source,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(unusable)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction().map_err(unusable)?;
        tx.execute_batch(sql).map_err(unusable)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(unusable)?;
        tx.commit().map_err(unusable)?;
    }
    Ok(())
}

impl Storage {
    /// Opens (creating and migrating if needed) the database and reads back
    /// what the hub and the in-memory views need to continue.
    pub fn open(
        config: &StorageConfig,
        broker: Arc<dyn Broker>,
        log: Option<Box<dyn CommitLog>>,
    ) -> Result<(Arc<Storage>, Restored), StorageError> {
        let path = config.path.clone();
        let mut write_conn = open_connection(&path, config.sync_full)?;
        migrate(&mut write_conn, &path)?;
        if let Some(max_mib) = config.max_mib {
            let page_size: i64 =
                write_conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
            let bytes = i64::try_from(max_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
            let pages = (bytes / page_size.max(512)).max(1);
            write_conn.pragma_update(None, "max_page_count", pages)?;
        }
        // The writer retries a busy database itself, with backoff and a
        // bound, rather than waiting inside SQLite for seconds per statement.
        write_conn.busy_timeout(writer::ATTEMPT_BUSY_WAIT)?;
        let reader = open_connection(&path, config.sync_full)?;
        let restored = read::restore(&reader, broker.config().history_len)?;

        let (sender, receiver) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let queued = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let history_len = broker.config().history_len;
        let writer = writer::Writer::new(
            write_conn,
            broker,
            Arc::clone(&healthy),
            Arc::clone(&queued),
            Arc::clone(&dropped),
            config.retention,
            log,
        );
        let thread = std::thread::Builder::new()
            .name("pulse-storage".into())
            .spawn(move || writer.run(receiver))
            .map_err(|error| {
                StorageError::Unavailable(format!("cannot start the writer: {error}"))
            })?;
        let storage = Arc::new(Storage {
            path,
            requests: Mutex::new(Some(sender)),
            reader: Mutex::new(reader),
            healthy,
            queued,
            dropped,
            history_len,
            max_queue: config.max_write_queue.max(1),
            writer: Mutex::new(Some(thread)),
        });
        Ok((storage, restored))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `false` from a failed write until the writer's probe succeeds again;
    /// `/readyz` reports it and ingest answers 503 meanwhile.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Write batches queued and not yet committed (or failed).
    pub fn queue_len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Write requests refused or failed so far (see [`Storage::reload`]).
    pub fn dropped_writes(&self) -> u64 {
        self.dropped.load(Ordering::Acquire)
    }

    /// Reads back what is committed, as at start: after a write failed,
    /// ingest rebuilds its in-memory views from it so they show only what
    /// is on disk. Blocking; call only when the write queue is empty.
    pub fn reload(&self) -> Result<Restored, StorageError> {
        let conn = lock(&self.reader);
        read::restore(&conn, self.history_len).map_err(StorageError::from)
    }

    /// How far the archive has followed the cluster's log (committed).
    pub fn log_position(&self) -> Result<Option<LogPosition>, StorageError> {
        let conn = lock(&self.reader);
        read::log_position(&conn).map_err(StorageError::from)
    }

    /// The bound on [`Storage::queue_len`].
    pub fn max_queue(&self) -> usize {
        self.max_queue
    }

    /// Counts one more queued request, unless the queue is full.
    fn reserve_slot(&self) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < self.max_queue).then_some(queued + 1)
            })
            .is_ok()
    }

    /// Queues a batch; batches are committed and released in submission
    /// order. Never blocks (ingest calls it under its state lock): with the
    /// queue full, the returned commit has already failed.
    pub fn submit(&self, batch: WriteBatch) -> Commit {
        let (ack, commit) = oneshot::channel();
        let requests = lock(&self.requests);
        match requests.as_ref() {
            Some(_) if !self.reserve_slot() => {
                self.dropped.fetch_add(1, Ordering::AcqRel);
                let _ = ack.send(Err(StorageError::Unavailable("write queue full".into())));
            }
            Some(sender) => {
                if let Err(mpsc::SendError(Request::Write(_, ack))) =
                    sender.send(Request::Write(batch, ack))
                {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    self.dropped.fetch_add(1, Ordering::AcqRel);
                    let _ = ack.send(Err(StorageError::Unavailable(
                        "the writer has stopped".into(),
                    )));
                }
            }
            None => {
                self.dropped.fetch_add(1, Ordering::AcqRel);
                let _ = ack.send(Err(StorageError::Unavailable(
                    "storage is shut down".into(),
                )));
            }
        }
        commit
    }

    /// Writes what is queued, checkpoints the WAL and stops the writer.
    pub async fn shutdown(&self) -> Result<(), StorageError> {
        let sender = lock(&self.requests).take();
        if let Some(sender) = sender {
            let (ack, done) = oneshot::channel();
            if sender.send(Request::Shutdown(ack)).is_ok() {
                done.await
                    .map_err(|_| StorageError::Unavailable("the writer stopped".into()))??;
            }
        }
        let thread = lock(&self.writer).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        Ok(())
    }

    /// Runs a read on the reader connection off the async threads.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        query: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StorageError> {
        let storage = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = lock(&storage.reader);
            query(&conn).map_err(StorageError::from)
        })
        .await
        .map_err(|error| StorageError::Unavailable(format!("read task failed: {error}")))?
    }

    /// Posts newest first, with their engagement totals.
    pub async fn posts(
        self: &Arc<Self>,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<(Post, Counts)>, StorageError> {
        self.read(move |conn| read::posts(conn, limit, before))
            .await
    }

    /// Candles of `symbol` whose start lies in `[from, to]`, oldest first.
    pub async fn candles(
        self: &Arc<Self>,
        symbol: String,
        interval: pulse_core::model::CandleInterval,
        from: Option<i64>,
        to: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Candle>, StorageError> {
        self.read(move |conn| read::candles(conn, &symbol, interval, from, to, limit))
            .await
    }

    /// Every symbol as its stored candles show it at `at`.
    pub async fn quotes_at(
        self: &Arc<Self>,
        at: i64,
        spark_points: usize,
    ) -> Result<Vec<PastQuote>, StorageError> {
        self.read(move |conn| past::quotes_at(conn, at, spark_points))
            .await
    }

    /// Candles of a stored interval that ended in `(from, to]`, oldest end first.
    pub async fn candles_ended_between(
        self: &Arc<Self>,
        symbol: Option<String>,
        interval: pulse_core::model::CandleInterval,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Candle>, StorageError> {
        self.read(move |conn| {
            past::candles_ended_between(conn, symbol.as_deref(), interval, from, to, limit)
        })
        .await
    }

    /// Posts with `ts` in `(from, to]`, oldest first, with their counts at `counts_at`.
    pub async fn posts_between(
        self: &Arc<Self>,
        from: i64,
        to: i64,
        limit: usize,
        counts_at: i64,
    ) -> Result<Vec<(Post, Counts)>, StorageError> {
        self.read(move |conn| past::posts_between(conn, from, to, limit, counts_at))
            .await
    }

    /// The newest posts at or before `at`, newest first, with their counts then.
    pub async fn posts_until(
        self: &Arc<Self>,
        at: i64,
        limit: usize,
    ) -> Result<Vec<(Post, Counts)>, StorageError> {
        self.read(move |conn| past::posts_until(conn, at, limit))
            .await
    }

    /// Engagement events with `ts` in `(from, to]`, in time order, at most
    /// `limit` from the end `keep` says.
    pub async fn engagement_between(
        self: &Arc<Self>,
        from: i64,
        to: i64,
        limit: usize,
        keep: Keep,
    ) -> Result<Vec<Engagement>, StorageError> {
        self.read(move |conn| past::engagement_between(conn, from, to, limit, keep))
            .await
    }

    /// Stored posts among `ids`, with their counts at `at`.
    pub async fn posts_by_id(
        self: &Arc<Self>,
        ids: Vec<u64>,
        at: i64,
    ) -> Result<std::collections::HashMap<u64, (Post, Counts)>, StorageError> {
        self.read(move |conn| past::posts_by_id(conn, &ids, at))
            .await
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_history;
