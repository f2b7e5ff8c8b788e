use std::time::Duration;

use super::*;
use crate::model::{CandleInterval, EngagementKind, NewPost};
use crate::protocol::{StreamPosition, Topic};
use crate::server::hub::{Hub, HubConfig};
use crate::server::ingest::{now_ms, Ingest};

fn temp_db(name: &str) -> PathBuf {
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
    }
}

/// A node as `server::start` builds it, minus the network.
fn node(path: &Path) -> (Arc<Hub>, Arc<Storage>, Ingest) {
    let hub = Hub::new(HubConfig::default(), format!("seed{}", now_ms()));
    let (storage, restored) =
        Storage::open(&config(path.to_owned()), Arc::clone(&hub)).expect("opens");
    let ingest = Ingest::new(Arc::clone(&hub), Some(Arc::clone(&storage)));
    ingest.restore(restored);
    (hub, storage, ingest)
}

fn tick(price: f64, ts: i64) -> Tick {
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
        .candles("AAPL", crate::model::CandleInterval::OneSecond)
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

#[tokio::test]
async fn retention_prunes_old_rows_and_nothing_else() {
    let path = temp_db("retention");
    let now = now_ms();
    let hour = 3_600_000;
    let (_hub, storage, ingest) = node(&path);
    ingest
        .ticks(
            vec![tick(1.0, now - 3 * hour), tick(2.0, now - 10_000)],
            now,
        )
        .await
        .unwrap();
    storage.shutdown().await.unwrap();

    let conn = Connection::open(&path).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM ticks"), 2);
    let retention = Retention {
        ticks: Duration::from_secs(3600),
        candles_1s: Duration::from_secs(3600),
        candles_1m: Duration::from_secs(86_400),
        engagement: Duration::from_secs(86_400),
        prune_every: Duration::from_secs(1),
    };
    let deleted = writer::prune(&conn, &retention, now, 10_000).unwrap();
    assert!(deleted >= 2, "the old tick and its 1 s candle");
    assert_eq!(count("SELECT COUNT(*) FROM ticks"), 1);
    assert_eq!(count("SELECT MIN(ts) FROM ticks"), now - 10_000);
    assert_eq!(
        count("SELECT COUNT(*) FROM candles WHERE interval = '1s'"),
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM candles WHERE interval = '1m'"),
        2,
        "1 m candles kept for days"
    );
    // Events beyond the history length go; the newest stay.
    let deleted = writer::prune(&conn, &retention, now, 1).unwrap();
    assert!(deleted > 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM events WHERE topic = 'ticks'"),
        1
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn unusable_files_are_refused_with_a_clear_error() {
    let hub = Hub::new(HubConfig::default(), "t");
    let missing_dir = PathBuf::from("/nonexistent-pulse-dir/pulse.db");
    let error = Storage::open(&config(missing_dir), Arc::clone(&hub))
        .err()
        .expect("refused");
    assert!(matches!(error, StorageError::Open { .. }), "{error}");
    assert!(error
        .to_string()
        .contains("/nonexistent-pulse-dir/pulse.db"));

    let garbage = temp_db("garbage");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let error = Storage::open(&config(garbage.clone()), hub)
        .err()
        .expect("refused");
    assert!(matches!(error, StorageError::Unusable { .. }), "{error}");
    let _ = std::fs::remove_dir_all(garbage.parent().unwrap());
}

#[tokio::test]
async fn a_full_database_refuses_writes_and_reports_unhealthy() {
    let path = temp_db("full");
    let hub = Hub::new(HubConfig::default(), "t");
    let mut full = config(path.clone());
    full.max_mib = Some(1);
    let (storage, restored) = Storage::open(&full, Arc::clone(&hub)).expect("opens");
    let ingest = Ingest::new(Arc::clone(&hub), Some(Arc::clone(&storage)));
    ingest.restore(restored);
    let text = "Markets are busy today. ".repeat(40);
    let mut failure = None;
    for _ in 0..50 {
        let batch = (0..100)
            .map(|_| NewPost {
                author: "load".into(),
                text: text.clone(),
                ts: None,
            })
            .collect();
        if let Err(error) = ingest.posts(batch, now_ms()).await {
            failure = Some(error);
            break;
        }
    }
    let failure = failure.expect("a 1 MiB database fills up");
    assert!(
        matches!(failure, crate::server::ingest::IngestError::Storage(_)),
        "{failure}"
    );
    assert!(!storage.is_healthy());
    // Nothing more is accepted, not even small writes, until a restart.
    let small = ingest
        .posts(
            vec![NewPost {
                author: "a".into(),
                text: "hi".into(),
                ts: None,
            }],
            now_ms(),
        )
        .await;
    assert!(matches!(
        small,
        Err(crate::server::ingest::IngestError::Storage(_))
    ));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn one_commit_stores_each_candle_and_each_posts_totals_at_their_last_state() {
    use crate::analytics::engagement::Counts;
    use crate::model::{Candle, Post, Sentiment};
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
    writer::write_batches(&tx, batches.iter()).expect("written");
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
