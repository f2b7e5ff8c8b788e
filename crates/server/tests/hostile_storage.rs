//! Storage under hostile conditions, against the real server: a historical
//! backfill survives pruning and a restart, and a node whose disk filled up
//! becomes ready again once there is room.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use pulse_server::RunningServer;
use serde_json::{json, Value};

const DAY_MS: i64 = 24 * 3_600_000;
/// 2019-01-02T00:00:00Z.
const JAN_2_2019: i64 = 1_546_387_200_000;

fn temp_db(name: &str) -> PathBuf {
    temp_dir(&format!("hostile-storage-{name}")).join("pulse.db")
}

async fn candles(server: &RunningServer, symbol: &str, from: i64, to: i64) -> Vec<Value> {
    let path = format!("/api/candles/{symbol}?interval=1m&from={from}&to={to}");
    let (status, body) = http(server, "GET", &path, &[], b"").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("an array of candles").clone()
}

#[tokio::test]
async fn a_historical_backfill_survives_pruning_and_a_restart() {
    let db = temp_db("backfill");
    let server = start_on(&db, |config| config.prune_every_secs = 1).await;

    // 300 daily closes from 2019, as `pulse replay` of a real file sends them.
    let ticks: Vec<Value> = (0..300)
        .map(|i| {
            json!({"symbol": "SPX", "price": 2_500.0 + i as f64, "volume": 1, "ts": JAN_2_2019 + i * DAY_MS})
        })
        .collect();
    let (status, body) = post_json(&server, "/api/ticks", &Value::Array(ticks)).await;
    assert_eq!(status, 200, "{body}");
    let (from, to) = (JAN_2_2019, JAN_2_2019 + 299 * DAY_MS);
    assert_eq!(candles(&server, "SPX", from, to).await.len(), 300);

    // Past two prune rounds: everything just acknowledged is still there.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let kept = candles(&server, "SPX", from, to).await;
    assert_eq!(kept.len(), 300, "the pruner kept every acknowledged candle");

    server.shutdown().await.expect("clean shutdown");
    let server = start_on(&db, |config| config.prune_every_secs = 1).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = candles(&server, "SPX", from, to).await;
    assert_eq!(after.len(), 300, "every candle is back after the restart");
    let closes: Vec<f64> = after
        .iter()
        .map(|c| c["close"].as_f64().expect("close"))
        .collect();
    let expected: Vec<f64> = (0..300).map(|i| 2_500.0 + i as f64).collect();
    assert_eq!(closes, expected);
    let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
    let symbols: Vec<&str> = snapshot["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["symbol"].as_str())
        .collect();
    assert!(symbols.contains(&"SPX"), "the symbol is back: {symbols:?}");
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

async fn post(server: &RunningServer, text: &str) -> (u16, Value) {
    post_json(
        server,
        "/api/posts",
        &json!({"author": "load", "text": text}),
    )
    .await
}

#[tokio::test]
async fn readyz_recovers_when_a_full_disk_has_room_again() {
    let db = temp_db("full");
    let server = start_on(&db, |config| config.db_max_mib = 1).await;
    assert_eq!(http(&server, "GET", "/readyz", &[], b"").await.0, 200);

    // Fill the 1 MiB database, one post per commit.
    let text = "Markets are busy today. ".repeat(40);
    let mut refusal = None;
    for i in 0..5_000 {
        let (status, body) = post(&server, &format!("{text} #{i}")).await;
        if status != 200 {
            refusal = Some((i, status, body));
            break;
        }
    }
    let (refused, status, body) = refusal.expect("a 1 MiB database fills up");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    // What was refused is not shown either: the views hold only what is stored.
    let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
    let newest = snapshot["posts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        newest.ends_with(&format!(" #{}", refused - 1)),
        "newest post shown is the last stored one, got {newest:?}"
    );
    let (status, ready) = http(&server, "GET", "/readyz", &[], b"").await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (503, Some("storage_failed"))
    );
    assert_eq!(post(&server, "small").await.0, 503, "still full");

    // An operator makes room; the node notices by itself, no restart.
    let other = rusqlite::Connection::open(&db).expect("opens");
    other.execute("DELETE FROM posts", []).expect("deleted");
    drop(other);
    let mut ready = false;
    for _ in 0..300 {
        if http(&server, "GET", "/readyz", &[], b"").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz recovers once the database is writable");
    let (status, body) = post(&server, "back in business").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(http(&server, "GET", "/healthz", &[], b"").await.0, 200);
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}
