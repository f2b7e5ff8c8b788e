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

#[tokio::test]
async fn many_updates_in_one_commit_store_each_candle_and_total_at_its_last_state() {
    let path = temp_db("coalesce");
    let now = now_ms();
    let second = now - now.rem_euclid(1_000) - 5_000;
    let (_hub, storage, ingest) = node(&path);
    let post = ingest
        .posts(
            vec![NewPost {
                author: "ann".into(),
                text: "hello".into(),
                ts: None,
            }],
            now,
        )
        .await
        .unwrap()
        .remove(0);
    // Submitted without waiting, so the writer commits many of them together.
    let prices: Vec<f64> = (0..300).map(|i| 100.0 + f64::from(i % 17) - 8.0).collect();
    let mut pending = Vec::new();
    for (i, price) in prices.iter().enumerate() {
        let t = tick(*price, second + i as i64 % 1_000);
        pending.push(ingest.submit_ticks(vec![t], now).unwrap());
    }
    let mut likes = Vec::new();
    for _ in 0..120 {
        let like = Engagement {
            post_id: post.id,
            kind: EngagementKind::Like,
            delta: 1,
            ts: now,
        };
        likes.push(ingest.submit_engagements(vec![like], now).unwrap());
    }
    for p in pending {
        p.durable().await.unwrap();
    }
    for l in likes {
        l.durable().await.unwrap();
    }
    let candles = storage
        .candles(
            "AAPL".into(),
            CandleInterval::OneSecond,
            Some(second),
            Some(second),
            10,
        )
        .await
        .unwrap();
    assert_eq!(candles.len(), 1);
    let c = &candles[0];
    let max = prices.iter().cloned().fold(f64::MIN, f64::max);
    let min = prices.iter().cloned().fold(f64::MAX, f64::min);
    assert_eq!(
        (c.open, c.high, c.low, c.close),
        (prices[0], max, min, prices[299])
    );
    assert_eq!(c.volume, 2.0 * 300.0);
    let (_, totals) = storage.posts(1, Some(post.id + 1)).await.unwrap().remove(0);
    assert_eq!(totals.likes, 120);
}
