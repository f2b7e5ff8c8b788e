use std::time::Duration;

use rusqlite::params;

use super::*;
use crate::broker::memory::MemoryBroker;
use crate::broker::{Broker, BrokerConfig};
use crate::clock::now_ms;
use crate::ingest::{Ingest, IngestError};
use pulse_core::model::{CandleInterval, EngagementKind, NewPost};
use pulse_core::protocol::{StreamPosition, Topic};

pub(super) fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pulse-storage-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("pulse.db")
}

fn config(path: PathBuf) -> StorageConfig {
    StorageConfig {
        path,
        sync_full: false,
        retention: Retention {
            ticks: Duration::from_secs(3600),
            candles_1s: Duration::from_secs(3600),
            candles_1m: Duration::from_secs(86_400),
            engagement: Duration::from_secs(86_400),
            prune_every: Duration::from_secs(3600),
        },
        max_mib: None,
        max_write_queue: 10_000,
    }
}

/// A node as `server::start` builds it, minus the network.
pub(super) fn node(path: &Path) -> (Arc<dyn Broker>, Arc<Storage>, Ingest) {
    node_with(&config(path.to_owned()))
}

fn node_with(config: &StorageConfig) -> (Arc<dyn Broker>, Arc<Storage>, Ingest) {
    let hub: Arc<dyn Broker> =
        MemoryBroker::new(BrokerConfig::default(), format!("seed{}", now_ms()));
    let (storage, restored) = Storage::open(config, Arc::clone(&hub), None).expect("opens");
    let ingest = Ingest::new(Arc::clone(&hub), Some(Arc::clone(&storage)));
    ingest.restore(restored);
    (hub, storage, ingest)
}

pub(super) fn tick(price: f64, ts: i64) -> Tick {
    Tick {
        symbol: "AAPL".into(),
        price,
        volume: 2.0,
        ts,
    }
}

#[tokio::test]
async fn everything_acknowledged_comes_back_after_a_restart() {
    let path = temp_db("restart");
    let now = now_ms();
    let (hub, storage, ingest) = node(&path);
    ingest
        .ticks(vec![tick(10.0, now - 2_000), tick(11.0, now - 1_000)], now)
        .await
        .unwrap();
    let post = ingest
        .posts(
            vec![NewPost {
                author: "ann".into(),
                text: "Great $AAPL quarter!".into(),
                ts: None,
            }],
            now,
        )
        .await
        .unwrap()
        .remove(0);
    let like = Engagement {
        post_id: post.id,
        kind: EngagementKind::Like,
        delta: 3,
        ts: now,
    };
    ingest.engagements(vec![like], now).await.unwrap();
    let ticks_position = hub.position(&Topic::Ticks);
    let posts_position = hub.position(&Topic::Posts);
    // Not a clean shutdown: the writer is simply dropped with the node, as in a crash
    // after the acknowledgements.
    drop((hub, ingest));
    drop(storage);

    let (hub, storage, ingest) = node(&path);
    assert_eq!(
        hub.position(&Topic::Ticks),
        ticks_position,
        "epoch and offset continue"
    );
    assert_eq!(hub.position(&Topic::Posts), posts_position);
    let feed = ingest.recent_posts(10, None);
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].post, post);
    assert_eq!(feed[0].engagement.likes, 3);
    let (ticks, _) = ingest.recent_ticks("AAPL");
    assert_eq!(
        ticks.iter().map(|t| t.price).collect::<Vec<_>>(),
        [10.0, 11.0]
    );
    assert!(!ingest
        .candles("AAPL", pulse_core::model::CandleInterval::OneSecond)
        .is_empty());
    let from_disk = storage.posts(10, None).await.unwrap();
    assert_eq!(from_disk[0].1.likes, 3);

    // A client that saw offset 1 of `ticks` resumes with the rest, recovered.
    let since = StreamPosition {
        epoch: ticks_position.epoch.clone(),
        offset: 1,
    };
    let subscription = hub.subscribe(&Topic::Ticks, Some(&since));
    assert!(subscription.recovered);
    assert_eq!(
        subscription
            .backlog
            .iter()
            .map(|e| e.offset)
            .collect::<Vec<_>>(),
        [2]
    );
    // New data continues the offsets and new post ids.
    ingest.ticks(vec![tick(12.0, now)], now).await.unwrap();
    assert_eq!(
        hub.position(&Topic::Ticks).offset,
        ticks_position.offset + 1
    );
    let next = ingest
        .posts(
            vec![NewPost {
                author: "bo".into(),
                text: "hi".into(),
                ts: None,
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(next[0].id, post.id + 1);
    storage.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Retention of the test config: ticks and 1 s candles an hour, the rest a day.
fn test_retention() -> Retention {
    config(PathBuf::new()).retention
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get::<_, i64>(0))
        .expect("counted")
}

#[tokio::test]
async fn retention_counts_from_arrival_not_from_the_data_timestamp() {
    let path = temp_db("retention");
    let now = now_ms();
    let hour = 3_600_000;
    let day = 24 * hour;
    // 2019-01-02 and the next day: a historical backfill, arriving now.
    let old = 1_546_387_200_000;
    let (_hub, storage, ingest) = node(&path);
    ingest
        .ticks(vec![tick(1.0, old), tick(2.0, old + day)], now)
        .await
        .unwrap();
    storage.shutdown().await.unwrap();

    let conn = Connection::open(&path).unwrap();
    let received: i64 = count(&conn, "SELECT MIN(received_at) FROM ticks");
    assert!(received >= now, "the commit's wall time, not the data's");
    let retention = test_retention();
    let report = writer::prune(&conn, &retention, now_ms(), 10_000).unwrap();
    assert_eq!(report.deleted, 0, "nothing just acknowledged is deleted");
    assert!(report.dropped_topics.is_empty());
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 2);

    // An hour after arrival: ticks and 1 s candles go, 1 m candles stay.
    let later = received + hour + 1_000;
    writer::prune(&conn, &retention, later, 10_000).unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 0);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM candles WHERE interval = '1s'"),
        0
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM candles WHERE interval = '1m'"),
        2,
        "1 m candles are kept a day here"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM topics WHERE topic = 'ticks:AAPL'"
        ),
        1,
        "the symbol still has candles"
    );

    // A day after arrival nothing of AAPL is left: its topics go with their
    // events; the all-symbol `ticks` topic stays.
    let report = writer::prune(&conn, &retention, received + day + 1_000, 10_000).unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM candles"), 0);
    let mut dropped = report.dropped_topics;
    dropped.sort();
    assert_eq!(dropped, ["candles:AAPL", "ticks:AAPL"]);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE topic IN ('ticks:AAPL', 'candles:AAPL')"
        ),
        0
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM topics WHERE topic = 'ticks'"),
        1
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM events WHERE topic = 'ticks'"),
        2
    );
    // Events beyond the history length go; the newest stay.
    let report = writer::prune(&conn, &retention, received + day + 1_000, 1).unwrap();
    assert!(report.deleted > 0);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM events WHERE topic = 'ticks'"),
        1
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_candle_is_kept_from_its_last_update() {
    let path = temp_db("candle-update");
    let hour = 3_600_000;
    let old = 1_546_387_200_000;
    let (_hub, storage, ingest) = node(&path);
    ingest.ticks(vec![tick(1.0, old)], now_ms()).await.unwrap();
    let first: i64 = {
        let conn = Connection::open(&path).unwrap();
        count(
            &conn,
            "SELECT updated_at FROM candles WHERE interval = '1m'",
        )
    };
    std::thread::sleep(Duration::from_millis(20));
    // A second tick in the same minute changes the candle.
    ingest
        .ticks(vec![tick(2.0, old + 1)], now_ms())
        .await
        .unwrap();
    storage.shutdown().await.unwrap();
    let conn = Connection::open(&path).unwrap();
    let updated = count(
        &conn,
        "SELECT updated_at FROM candles WHERE interval = '1m'",
    );
    assert!(updated > first, "{updated} > {first}");
    // Just under a day after the first write but not after the update: kept.
    writer::prune(&conn, &test_retention(), first + 24 * hour + 10, 10_000).unwrap();
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM candles WHERE interval = '1m'"),
        1
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn rows_from_before_the_migration_age_by_their_data_timestamp() {
    let path = temp_db("legacy");
    let now = now_ms();
    let hour = 3_600_000;
    {
        // A database as version 1 left it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for ts in [now - 3 * hour, now - 10_000] {
            conn.execute(
                "INSERT INTO ticks (symbol, price, volume, ts) VALUES ('AAPL', 1, 1, ?1)",
                params![ts],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO candles VALUES ('AAPL', '1s', ?1, 1, 1, 1, 1, 1)",
                params![ts],
            )
            .unwrap();
        }
    }
    let mut conn = open_connection(&path, false).expect("opens");
    migrate(&mut conn, &path).expect("migrates");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM ticks WHERE received_at IS NULL"
        ),
        2
    );
    writer::prune(&conn, &test_retention(), now, 10_000).unwrap();
    assert_eq!(count(&conn, "SELECT MIN(ts) FROM ticks"), now - 10_000);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM candles"), 1);
    drop(conn);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn index_exists(conn: &Connection, name: &str) -> bool {
    count(
        conn,
        &format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{name}'"),
    ) == 1
}

#[test]
fn a_version_2_database_upgrades_and_keeps_pruning_from_arrival() {
    let path = temp_db("v2-upgrade");
    let now = now_ms();
    let hour = 3_600_000;
    let old = 1_546_387_200_000; // 2019: a backfill
    {
        // A database as version 2 left it: one tick that arrived two hours
        // ago, then a backfill of old data that arrived just now.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        for (ts, received_at) in [(now - 2 * hour, now - 2 * hour), (old, now), (old + 1, now)] {
            conn.execute(
                "INSERT INTO ticks (symbol, price, volume, ts, received_at)
                 VALUES ('AAPL', 1, 1, ?1, ?2)",
                params![ts, received_at],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO engagement (post_id, kind, delta, ts, received_at)
             VALUES (1, 'like', 1, ?1, ?2)",
            params![old, now],
        )
        .unwrap();
        assert!(index_exists(&conn, "ticks_received_at"));
    }
    let mut conn = open_connection(&path, false).expect("opens");
    migrate(&mut conn, &path).expect("migrates");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    assert!(
        !index_exists(&conn, "ticks_received_at"),
        "written per tick, dropped"
    );
    assert!(!index_exists(&conn, "engagement_received_at"));
    assert!(
        index_exists(&conn, "candles_interval_updated_at"),
        "candles still prune by index"
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 3, "no row lost");
    let report = writer::prune(&conn, &test_retention(), now, 10_000).unwrap();
    assert_eq!(
        report.deleted, 1,
        "only the tick that arrived two hours ago"
    );
    assert_eq!(
        count(&conn, "SELECT MIN(ts) FROM ticks"),
        old,
        "the backfill stays"
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM engagement"), 1);
    // Once their own retention has passed since arrival, they go too.
    writer::prune(&conn, &test_retention(), now + 25 * hour, 10_000).unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 0);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM engagement"), 0);
    drop(conn);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn pruning_walks_ids_in_chunks_and_stops_at_the_first_row_within_retention() {
    let path = temp_db("prune-prefix");
    let mut conn = open_connection(&path, false).expect("opens");
    migrate(&mut conn, &path).expect("migrates");
    let now = now_ms();
    let hour = 3_600_000;
    let expired = 2 * writer::PRUNE_CHUNK + 7;
    let tx = conn.transaction().unwrap();
    for i in 0..expired {
        tx.execute(
            "INSERT INTO ticks (symbol, price, volume, ts, received_at) VALUES ('A', 1, 1, ?1, ?2)",
            params![now, now - 2 * hour + i as i64],
        )
        .unwrap();
    }
    // Arrived within retention, then one more expired row behind it (the
    // clock stepped back): it waits, it is never deleted early.
    for received_at in [now - 10, now - 3 * hour] {
        tx.execute(
            "INSERT INTO ticks (symbol, price, volume, ts, received_at) VALUES ('A', 1, 1, ?1, ?2)",
            params![now, received_at],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let report = writer::prune(&conn, &test_retention(), now, 10_000).unwrap();
    assert_eq!(
        report.deleted, expired,
        "every expired row before the first kept one"
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 2);
    assert_eq!(
        count(&conn, "SELECT MIN(received_at) FROM ticks"),
        now - 3 * hour,
        "the row behind a newer one waits"
    );
    writer::prune(&conn, &test_retention(), now + hour, 10_000).unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 0);
    drop(conn);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Another connection takes the write lock and gives it back after `hold`.
fn hold_write_lock(path: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        conn.execute_batch("COMMIT").unwrap();
    })
}

async fn wait_healthy(storage: &Storage) {
    for _ in 0..300 {
        if storage.is_healthy() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("storage did not recover");
}

#[tokio::test]
async fn a_busy_database_is_retried_until_the_lock_is_released() {
    let path = temp_db("busy");
    let (_hub, storage, ingest) = node(&path);
    let holder = hold_write_lock(&path, Duration::from_millis(300));
    ingest
        .ticks(vec![tick(1.0, now_ms())], now_ms())
        .await
        .expect("committed once the lock is free");
    assert!(storage.is_healthy());
    holder.join().unwrap();
    storage.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn after_a_failed_commit_the_node_recovers_when_the_database_does() {
    let path = temp_db("busy-long");
    let (hub, storage, ingest) = node(&path);
    let before = hub.position(&Topic::Ticks);
    // Held longer than every retry together.
    let holder = hold_write_lock(&path, Duration::from_millis(2_500));
    let failed = ingest.ticks(vec![tick(1.0, now_ms())], now_ms()).await;
    assert!(
        matches!(failed, Err(crate::ingest::IngestError::Storage(_))),
        "the caller learns of the failure"
    );
    assert!(!storage.is_healthy());
    let subscription = hub.subscribe(&Topic::Ticks, None);
    assert!(
        subscription.backlog.is_empty(),
        "the failed batch's events are not released"
    );
    holder.join().unwrap();
    wait_healthy(&storage).await;
    ingest
        .ticks(vec![tick(2.0, now_ms())], now_ms())
        .await
        .expect("writes are taken again");
    assert!(hub.position(&Topic::Ticks).offset > before.offset);
    storage.shutdown().await.unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ticks"), 1);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM meta WHERE key = 'write_probe'"),
        0,
        "the probe leaves nothing behind"
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn the_write_queue_is_bounded_and_a_full_queue_fails_at_once() {
    let path = temp_db("queue");
    let mut bounded = config(path.clone());
    bounded.max_write_queue = 3;
    let (_hub, storage, _ingest) = node_with(&bounded);
    // The writer is stuck on the lock, so nothing leaves the queue.
    let holder = hold_write_lock(&path, Duration::from_millis(400));
    let queued: Vec<Commit> = (0..3)
        .map(|_| storage.submit(WriteBatch::default()))
        .collect();
    assert_eq!(storage.queue_len(), 3);
    let mut refused = storage.submit(WriteBatch::default());
    match refused.try_recv() {
        Ok(Err(StorageError::Unavailable(message))) => assert_eq!(message, "write queue full"),
        other => panic!("expected an immediate refusal, got {other:?}"),
    }
    holder.join().unwrap();
    for commit in queued {
        commit.await.expect("answered").expect("committed");
    }
    assert_eq!(storage.queue_len(), 0);
    assert!(
        storage.is_healthy(),
        "a full queue is not a storage failure"
    );
    storage
        .submit(WriteBatch::default())
        .await
        .expect("answered")
        .expect("room again");
    storage.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn unusable_files_are_refused_with_a_clear_error() {
    let hub: Arc<dyn Broker> = MemoryBroker::new(BrokerConfig::default(), "t");
    let missing_dir = PathBuf::from("/nonexistent-pulse-dir/pulse.db");
    let error = Storage::open(&config(missing_dir), Arc::clone(&hub), None)
        .err()
        .expect("refused");
    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    assert!(error
        .to_string()
        .contains("/nonexistent-pulse-dir/pulse.db"));

    let garbage = temp_db("garbage");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let error = Storage::open(&config(garbage.clone()), hub, None)
        .err()
        .expect("refused");
    assert!(matches!(error, StorageError::Unusable { .. }), "{error}");
    let _ = std::fs::remove_dir_all(garbage.parent().unwrap());
}

#[tokio::test]
async fn a_full_database_refuses_writes_until_room_is_made() {
    let path = temp_db("full");
    let mut full = config(path.clone());
    full.max_mib = Some(1);
    let (_hub, storage, ingest) = node_with(&full);
    let post = |text: &str| {
        vec![NewPost {
            author: "load".into(),
            text: text.into(),
            ts: None,
        }]
    };
    let text = "Markets are busy today. ".repeat(40);
    let mut failure = None;
    // One post per commit, so the failing one leaves less room than the
    // writer's probe needs.
    for _ in 0..5_000 {
        if let Err(error) = ingest.posts(post(&text), now_ms()).await {
            failure = Some(error);
            break;
        }
    }
    let failure = failure.expect("a 1 MiB database fills up");
    assert!(
        matches!(failure, crate::ingest::IngestError::Storage(_)),
        "{failure}"
    );
    assert!(!storage.is_healthy());
    // Nothing more is accepted, not even small writes, while it is full.
    let small = ingest.posts(post("hi"), now_ms()).await;
    assert!(matches!(small, Err(crate::ingest::IngestError::Storage(_))));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!storage.is_healthy(), "the probes find no room");

    // Room is made (as by an operator, or pruning): the node takes writes again.
    let other = Connection::open(&path).unwrap();
    other.execute("DELETE FROM posts", []).unwrap();
    drop(other);
    wait_healthy(&storage).await;
    ingest
        .posts(post("back"), now_ms())
        .await
        .expect("accepted after recovery");
    storage.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn one_commit_stores_each_candle_and_each_posts_totals_at_their_last_state() {
    use pulse_core::model::Counts;
    use pulse_core::model::{Candle, Post, Sentiment};
    let path = temp_db("coalesce");
    let mut conn = open_connection(&path, false).expect("opens");
    migrate(&mut conn, &path).expect("migrates");
    let candle = |interval, start, close: f64, volume| Candle {
        symbol: "AAPL".into(),
        interval,
        start,
        open: 10.0,
        high: close.max(10.0),
        low: close.min(10.0),
        close,
        volume,
    };
    let post = Post {
        id: 7,
        author: "ann".into(),
        text: "hello".into(),
        ts: 1_000,
        sentiment: Sentiment::NEUTRAL,
        symbols: vec![],
    };
    let like = |likes| {
        (
            Engagement {
                post_id: 7,
                kind: EngagementKind::Like,
                delta: 1,
                ts: 1_000,
            },
            Counts {
                likes,
                shares: 0,
                comments: 0,
            },
        )
    };
    let (s, m) = (CandleInterval::OneSecond, CandleInterval::OneMinute);
    // One commit: a post created and liked twice, two states of the same 1 s
    // candle and of the 1 min candle it belongs to, spread over three batches.
    let batches = [
        WriteBatch {
            candles: vec![candle(s, 60_000, 11.0, 1.0), candle(m, 60_000, 11.0, 1.0)],
            posts: vec![post],
            engagement: vec![like(1)],
            ..WriteBatch::default()
        },
        WriteBatch {
            candles: vec![candle(s, 60_000, 12.0, 2.0), candle(m, 60_000, 12.0, 2.0)],
            engagement: vec![like(2)],
            ..WriteBatch::default()
        },
        WriteBatch {
            candles: vec![candle(s, 61_000, 9.0, 1.0), candle(m, 60_000, 9.0, 3.0)],
            ..WriteBatch::default()
        },
    ];
    let tx = conn.transaction().expect("a transaction");
    writer::write_batches(&tx, batches.iter(), 1_000).expect("written");
    tx.commit().expect("committed");

    let seconds = read::candles(&conn, "AAPL", s, None, None, 10).expect("read");
    assert_eq!(
        seconds,
        vec![candle(s, 60_000, 12.0, 2.0), candle(s, 61_000, 9.0, 1.0)]
    );
    let minutes = read::candles(&conn, "AAPL", m, None, None, 10).expect("read");
    assert_eq!(minutes, vec![candle(m, 60_000, 9.0, 3.0)]);
    let (_, totals) = read::posts(&conn, 10, None).expect("read").remove(0);
    assert_eq!(totals.likes, 2);
    let engagement_rows: i64 = conn
        .query_row("SELECT count(*) FROM engagement", [], |row| row.get(0))
        .expect("counted");
    assert_eq!(engagement_rows, 2, "every engagement event is kept");
    drop(conn);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn ingest_refuses_a_write_while_the_queue_is_full_before_applying_it() {
    let path = temp_db("queue-ingest");
    let mut bounded = config(path.clone());
    bounded.max_write_queue = 2;
    let (broker, storage, ingest) = node_with(&bounded);
    let holder = hold_write_lock(&path, Duration::from_millis(400));
    let queued: Vec<Commit> = (0..2)
        .map(|_| storage.submit(WriteBatch::default()))
        .collect();
    let before = broker.position(&Topic::Ticks);
    let refused = ingest.ticks(vec![tick(101.0, now_ms())], now_ms()).await;
    assert!(
        matches!(refused, Err(IngestError::Storage(StorageError::Unavailable(ref m))) if m == "write queue full"),
        "{refused:?}"
    );
    assert_eq!(
        broker.position(&Topic::Ticks),
        before,
        "no offset was taken"
    );
    assert!(ingest.summaries().is_empty(), "nothing was applied");
    assert_eq!(storage.dropped_writes(), 0, "nothing to roll back");
    holder.join().unwrap();
    for commit in queued {
        commit.await.expect("answered").expect("committed");
    }
    ingest
        .ticks(vec![tick(102.0, now_ms())], now_ms())
        .await
        .expect("accepted once the queue drains");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// How SQLite plans `sql` (the `detail` column of `EXPLAIN QUERY PLAN`).
fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut statement = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("plans");
    // The plan does not depend on the values: every parameter is NULL.
    let nulls = vec![rusqlite::types::Null; statement.parameter_count()];
    let details: Vec<String> = statement
        .query_map(rusqlite::params_from_iter(nulls), |row| {
            row.get::<_, String>(3)
        })
        .expect("plan rows")
        .collect::<Result<_, _>>()
        .expect("plan details");
    details.join("; ")
}

/// Statements that run on every prune round, or at start and after a
/// failed write under the ingest lock, must not read whole tables: the
/// candles table holds up to a month of minutes of every symbol.
#[tokio::test]
async fn the_prune_round_and_the_restore_lists_seek_instead_of_scanning() {
    let path = temp_db("plans");
    // Opened (and migrated) by a node; read beside it.
    let _node = node(&path);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    for interval in [CandleInterval::OneSecond, CandleInterval::OneMinute] {
        for sql in writer::prune_candles_sql(interval) {
            let plan = plan(&conn, &sql);
            assert!(
                plan.contains("candles_interval_updated_at"),
                "{sql}: {plan}"
            );
            assert!(!plan.contains("candles_interval_start"), "{sql}: {plan}");
        }
    }
    let listings = [
        read::symbols_sql("candles"),
        read::symbols_sql("ticks"),
        read::INTERVALS_OF_SYMBOL.to_owned(),
    ];
    for sql in listings {
        let plan = plan(&conn, &sql);
        assert!(
            !plan.contains("SCAN candles") && !plan.contains("SCAN ticks"),
            "{sql}: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
    }
    // And they answer what DISTINCT would.
    conn.execute_batch(
        "INSERT INTO candles (symbol, interval, start, open, high, low, close, volume)
         VALUES ('B', '1m', 1, 1, 1, 1, 1, 1), ('A', '1s', 1, 1, 1, 1, 1, 1),
                ('A', '1m', 1, 1, 1, 1, 1, 1), ('A', '1m', 2, 1, 1, 1, 1, 1);",
    )
    .expect("rows");
    assert_eq!(
        read::symbols_of(&conn, read::BySymbol::Candles).unwrap(),
        ["A", "B"]
    );
    assert_eq!(read::intervals_of(&conn, "A").unwrap(), ["1m", "1s"]);
    assert!(read::symbols_of(&conn, read::BySymbol::Ticks)
        .unwrap()
        .is_empty());
}
