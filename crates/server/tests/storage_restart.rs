//! Durability across a hard kill: the real `pulse` binary, SIGKILLed right
//! after its acknowledgements, restarted on the same database file.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use pulse_server::clock::now_ms;
use serde_json::{json, Value};

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn spawn(db: &Path, addr: SocketAddr) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args([
            "--addr",
            &addr.to_string(),
            "--no-simulator",
            "--sync",
            "full",
        ])
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .env("PULSE_INGEST_RATE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("pulse starts")
}

async fn wait_ready(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && http_to(addr, "GET", "/readyz", &[], b"").await.0 == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {addr} did not become ready");
}

fn temp_db() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("pulse-restart-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("pulse.db")
}

async fn post_json(addr: SocketAddr, path: &str, body: Value) -> Value {
    let (status, answer) = http_to(addr, "POST", path, &[JSON], body.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

#[tokio::test]
async fn acknowledged_data_survives_sigkill_and_clients_resume_without_gaps() {
    let db = temp_db();
    let addr = free_addr();
    let mut server = spawn(&db, addr);
    wait_ready(addr).await;

    // A subscriber sees the first posts, then goes away.
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("ws");
    send(&mut client, r#"{"op":"subscribe","topics":["posts"]}"#).await;
    let epoch = recv(&mut client).await["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();

    let now = now_ms();
    let ticks: Vec<Value> = (0..50)
        .map(|i| json!({"symbol": "AAPL", "price": 100.0 + i as f64, "volume": 1, "ts": now - 50 + i}))
        .collect();
    post_json(addr, "/api/ticks", Value::Array(ticks)).await;
    let first = post_json(
        addr,
        "/api/posts",
        json!([
            {"author": "ann", "text": "Loving $AAPL today"},
            {"author": "bo", "text": "Terrible day for $AAPL"}
        ]),
    )
    .await;
    let id = first[0]["id"].as_u64().expect("id");
    post_json(
        addr,
        "/api/engagement",
        json!([
            {"post_id": id, "kind": "like", "delta": 4, "ts": now},
            {"post_id": id, "kind": "share", "delta": 1, "ts": now}
        ]),
    )
    .await;
    let mut seen = 0;
    while seen < 2 {
        let frame = recv(&mut client).await;
        seen += events(&frame).len();
    }
    drop(client);

    // Three more posts while the subscriber is away, then a hard kill.
    for text in ["one", "two", "three"] {
        post_json(addr, "/api/posts", json!({"author": "cy", "text": text})).await;
    }
    let (_, before_kill) = http_to(addr, "GET", "/api/snapshot", &[], b"").await;
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");

    let mut server = spawn(&db, addr);
    wait_ready(addr).await;

    let (_, posts) = http_to(addr, "GET", "/api/posts?limit=50", &[], b"").await;
    let posts = posts.as_array().expect("posts").clone();
    assert_eq!(posts.len(), 5, "every acknowledged post is back");
    let liked = posts.iter().find(|p| p["id"] == id).expect("first post");
    assert_eq!(
        liked["engagement"],
        json!({"likes": 4, "shares": 1, "comments": 0})
    );
    assert_eq!(liked["sentiment"]["label"], "positive");
    let (_, candles) = http_to(addr, "GET", "/api/candles/AAPL?interval=1m", &[], b"").await;
    let volume: f64 = candles
        .as_array()
        .expect("candles")
        .iter()
        .map(|c| c["volume"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(volume, 50.0, "all 50 ticks are in the candles");
    let high = candles
        .as_array()
        .expect("candles")
        .iter()
        .map(|c| c["high"].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max);
    assert_eq!(high, 149.0);
    let (_, after) = http_to(addr, "GET", "/api/snapshot", &[], b"").await;
    for topic in ["ticks", "posts", "engagement", "ticks:AAPL"] {
        assert_eq!(
            after["positions"][topic], before_kill["positions"][topic],
            "{topic} continues"
        );
    }
    assert_eq!(after["sentiment"]["posts"], 5);

    // The subscriber resumes after the restart: recovered, the three missed posts in order.
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("ws");
    let resume = json!({"op": "subscribe", "topics": ["posts"], "since": {"posts": {"epoch": epoch, "offset": 2}}});
    send(&mut client, &resume.to_string()).await;
    let subscribed = recv(&mut client).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let mut missed = Vec::new();
    while missed.len() < 3 {
        for event in events(&recv(&mut client).await) {
            missed.push((
                event["offset"].as_u64().expect("offset"),
                event["data"]["text"].clone(),
            ));
        }
    }
    assert_eq!(
        missed,
        [(3, json!("one")), (4, json!("two")), (5, json!("three"))]
    );

    // New data continues the offsets.
    let next = post_json(addr, "/api/posts", json!({"author": "di", "text": "four"})).await;
    assert_eq!(next["id"], id + 5);
    let frame = recv(&mut client).await;
    assert_eq!(events(&frame)[0]["offset"], 6);

    server.kill().expect("stop");
    server.wait().expect("reaped");
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

#[tokio::test]
async fn an_unwritable_database_path_fails_at_start_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--no-simulator",
            "--db",
            "/nonexistent-pulse-dir/pulse.db",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot open the database /nonexistent-pulse-dir/pulse.db"),
        "{stderr}"
    );
}
