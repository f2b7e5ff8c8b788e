//! Hub behaviour over real sockets: recovery, slow consumers, presence,
//! unsubscribe.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use pulse_server::clock::now_ms;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn ticks_body(symbol: &str, from: usize, n: usize) -> String {
    let ticks: Vec<Value> = (from..from + n)
        .map(|i| json!({"symbol": symbol, "price": 100.0 + i as f64 / 100.0, "volume": i, "ts": now_ms()}))
        .collect();
    Value::Array(ticks).to_string()
}

async fn publish_ticks(server: &pulse_server::RunningServer, symbol: &str, from: usize, n: usize) {
    let (status, body) = http(
        server,
        "POST",
        "/api/ticks",
        &[JSON],
        ticks_body(symbol, from, n).as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Collects `n` events (offset, volume) from event/batch frames.
async fn collect_events(client: &mut Client, n: usize) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let frame = recv(client).await;
        for event in events(&frame) {
            seen.push((
                event["offset"].as_u64().expect("offset"),
                event["data"]["volume"].as_f64().expect("volume") as u64,
            ));
        }
    }
    seen
}

#[tokio::test]
async fn reconnect_with_since_recovers_every_missed_event_exactly_once() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    let mut client = connect(&server).await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks:AAPL"]}"#).await;
    let subscribed = recv(&mut client).await;
    let epoch = subscribed["epoch"].as_str().expect("epoch").to_owned();
    publish_ticks(&server, "AAPL", 0, 200).await;
    let before = collect_events(&mut client, 200).await;
    let last_offset = before.last().expect("events").0;
    drop(client);

    // 1,200 events while the client is away.
    for chunk in 0..6 {
        publish_ticks(&server, "AAPL", 200 + chunk * 200, 200).await;
    }
    let mut client = connect(&server).await;
    let resume = json!({"op": "subscribe", "topics": ["ticks:AAPL"],
        "since": {"ticks:AAPL": {"epoch": epoch, "offset": last_offset}}});
    send(&mut client, &resume.to_string()).await;
    let subscribed = recv(&mut client).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    assert_eq!(subscribed["offset"], last_offset + 1_200);
    publish_ticks(&server, "AAPL", 1_400, 1).await;
    let after = collect_events(&mut client, 1_201).await;
    let offsets: Vec<u64> = after.iter().map(|e| e.0).collect();
    let expected: Vec<u64> = (last_offset + 1..=last_offset + 1_201).collect();
    assert_eq!(
        offsets, expected,
        "every missed event once, in order, then the live one"
    );
    assert_eq!(after.last().map(|e| e.1), Some(1_400));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn stale_epoch_or_expired_history_is_not_recovered() {
    let server = start(|c| {
        c.history = 100;
        c.ingest_rate = 0.0;
    })
    .await;
    publish_ticks(&server, "AAPL", 0, 300).await;
    let mut client = connect(&server).await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks:AAPL"]}"#).await;
    let epoch = recv(&mut client).await["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();

    let cases = [
        (json!({"epoch": "some-old-epoch", "offset": 290}), false),
        (json!({"epoch": epoch, "offset": 10}), false),
        (json!({"epoch": epoch, "offset": 250}), true),
    ];
    for (since, recovered) in cases {
        let mut client = connect(&server).await;
        let frame =
            json!({"op": "subscribe", "topics": ["ticks:AAPL"], "since": {"ticks:AAPL": since}});
        send(&mut client, &frame.to_string()).await;
        let subscribed = recv(&mut client).await;
        assert_eq!(subscribed["recovered"], recovered, "{since} → {subscribed}");
        assert_eq!(subscribed["offset"], 300);
        if recovered {
            let replay = collect_events(&mut client, 50).await;
            assert_eq!(replay.first().map(|e| e.0), Some(251));
        }
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_stalled_client_is_conflated_then_closed_while_others_keep_up() {
    let server = start(|c| {
        c.max_queued_bytes = 256 * 1024;
        c.max_queued_frames = 256;
        c.ingest_rate = 0.0;
    })
    .await;
    // The stalled client subscribes and then never reads.
    let mut stalled = connect(&server).await;
    send(
        &mut stalled,
        r#"{"op":"subscribe","topics":["ticks","posts"]}"#,
    )
    .await;
    let mut others = Vec::new();
    for _ in 0..50 {
        let mut client = connect(&server).await;
        send(&mut client, r#"{"op":"subscribe","topics":["ticks"]}"#).await;
        assert_eq!(recv(&mut client).await["op"], "subscribed");
        others.push(client);
    }

    // ~8 MB of posts (more than the kernel buffers hold) plus ticks.
    let text = "Markets were busy today and ".repeat(35);
    for round in 0..16 {
        let posts: Vec<Value> = (0..500)
            .map(|_| json!({"author": "load", "text": text}))
            .collect();
        let (status, _) = http(
            &server,
            "POST",
            "/api/posts",
            &[JSON],
            Value::Array(posts).to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200);
        publish_ticks(&server, "AAPL", round * 10, 10).await;
    }

    // Everyone who reads gets every tick, in order, promptly.
    for client in &mut others {
        let seen = collect_events(client, 160).await;
        let offsets: Vec<u64> = seen.iter().map(|e| e.0).collect();
        assert_eq!(offsets, (1..=160).collect::<Vec<u64>>());
    }

    // The stalled client, once it reads, finds a conflation notice or its
    // close: 4008 with a reason.
    let mut close = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stalled.next()).await {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    let close = close.expect("the stalled client was closed with a reason");
    assert_eq!(u16::from(close.code), 4008);
    assert!(close.reason.contains("slow consumer"), "{}", close.reason);
    assert_eq!(
        metric(&server, "pulse_ws_slow_consumer_disconnects_total").await,
        1.0
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn presence_counts_dashboard_sessions_up_and_down() {
    let server = start(|_| {}).await;
    let mut watcher = connect(&server).await;
    send(&mut watcher, r#"{"op":"subscribe","topics":["presence"]}"#).await;
    assert_eq!(recv(&mut watcher).await["op"], "subscribed");
    let session = |id: &str| format!("ws://{}/ws?session={id}", server.addr());
    let (a1, _) = tokio_tungstenite::connect_async(session("a"))
        .await
        .expect("connects");
    let (a2, _) = tokio_tungstenite::connect_async(session("a"))
        .await
        .expect("connects");
    let (b, _) = tokio_tungstenite::connect_async(session("b"))
        .await
        .expect("connects");

    let sessions = |frame: &Value| events(frame).last().map(|e| e["data"]["sessions"].clone());
    let up = recv_until(&mut watcher, |f| sessions(f) == Some(json!(2))).await;
    assert_eq!(events(&up).last().expect("event")["data"]["connections"], 4);

    // A late subscriber is handed the current count at once.
    let mut late = connect(&server).await;
    send(&mut late, r#"{"op":"subscribe","topics":["presence"]}"#).await;
    let subscribed = recv(&mut late).await;
    assert_eq!(subscribed["op"], "subscribed");
    let current = recv(&mut late).await;
    assert_eq!(sessions(&current), Some(json!(2)), "{current}");
    // Announced as the position just before it, so a client that drops
    // events at or below its position keeps this one.
    let offset = events(&current)[0]["offset"].as_u64().expect("an offset");
    assert_eq!(subscribed["offset"].as_u64(), Some(offset - 1));
    drop(late);

    drop(b);
    drop(a2);
    recv_until(&mut watcher, |f| sessions(f) == Some(json!(1))).await;
    drop(a1);
    recv_until(&mut watcher, |f| sessions(f) == Some(json!(0))).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unsubscribe_stops_the_stream() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    let mut client = connect(&server).await;
    send(
        &mut client,
        r#"{"op":"subscribe","topics":["ticks:AAPL","ticks:MSFT"]}"#,
    )
    .await;
    recv(&mut client).await;
    recv(&mut client).await;
    send(
        &mut client,
        r#"{"op":"unsubscribe","topics":["ticks:AAPL"]}"#,
    )
    .await;
    assert_eq!(
        recv(&mut client).await,
        json!({"op": "unsubscribed", "topic": "ticks:AAPL"})
    );
    publish_ticks(&server, "AAPL", 0, 5).await;
    publish_ticks(&server, "MSFT", 0, 1).await;
    let frame = recv_until(&mut client, |f| !events(f).is_empty()).await;
    assert_eq!(
        events(&frame)[0]["topic"],
        "ticks:MSFT",
        "nothing from AAPL arrives"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_slow_market_data_client_gets_the_latest_tick_per_symbol() {
    let server = start(|c| {
        c.max_queued_bytes = 128 * 1024;
        c.ingest_rate = 0.0;
    })
    .await;
    let mut slow = connect_with_small_buffer(&server).await;
    send(&mut slow, r#"{"op":"subscribe","topics":["ticks"]}"#).await;
    assert_eq!(recv(&mut slow).await["op"], "subscribed");
    let symbols = ["AAA", "BBB", "CCC"];
    let mut last_volume = std::collections::HashMap::new();
    // ~7 MB of ticks: more than the kernel's socket buffers hold.
    for round in 0..240 {
        let ticks: Vec<Value> = (0..300)
            .map(|i| {
                let n = round * 300 + i;
                let symbol = symbols[n % 3];
                last_volume.insert(symbol, n as u64);
                json!({"symbol": symbol, "price": 10.0, "volume": n, "ts": now_ms()})
            })
            .collect();
        let (status, _) = http(
            &server,
            "POST",
            "/api/ticks",
            &[JSON],
            Value::Array(ticks).to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200);
    }

    // Now read everything: a `conflated` notice, and the newest tick of each
    // symbol still arrives; the connection stays open.
    let mut conflated = false;
    let mut newest = std::collections::HashMap::new();
    while newest.len() < 3
        || symbols
            .iter()
            .any(|s| newest.get(*s) != last_volume.get(*s))
    {
        let frame = recv_within(&mut slow, Duration::from_secs(10)).await;
        conflated |= frame["op"] == "conflated";
        for event in events(&frame) {
            let data = &event["data"];
            let symbol = data["symbol"].as_str().expect("symbol").to_owned();
            newest.insert(symbol, data["volume"].as_f64().expect("volume") as u64);
        }
    }
    assert!(conflated, "the client was told that data was skipped");
    send(&mut slow, r#"{"op":"ping","id":1}"#).await;
    recv_until(&mut slow, |f| f["op"] == "pong").await;
    assert!(metric(&server, "pulse_ws_conflations_total").await >= 1.0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let server = start(|c| c.heartbeat_secs = 1).await;
    let mut silent = connect(&server).await;
    let mut lively = connect(&server).await;
    send(&mut lively, r#"{"op":"subscribe","topics":["posts"]}"#).await;
    // `silent` reads nothing (so answers no ping) for three heartbeats; `lively` keeps reading.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3_500);
    while tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout_at(deadline, lively.next()).await;
    }
    let mut close = None;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(5), silent.next()).await
    {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    let close = close.expect("the silent peer was closed");
    assert_eq!(u16::from(close.code), 1001);
    assert!(close.reason.contains("heartbeat"));
    send(&mut lively, r#"{"op":"ping","id":2}"#).await;
    recv_until(&mut lively, |f| f["op"] == "pong").await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_test_hook_drops_connections_only_when_enabled() {
    let server = start(|_| {}).await;
    let (status, _) = http(&server, "POST", "/api/debug/drop-connections", &[], b"").await;
    assert_eq!(
        status, 404,
        "hook is off by default: the route does not exist"
    );
    server.shutdown().await.expect("shutdown");

    let server = start(|c| c.test_hooks = true).await;
    let mut client = connect(&server).await;
    let (status, _) = http(&server, "POST", "/api/debug/drop-connections", &[], b"").await;
    assert_eq!(status, 200);
    let mut close = None;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(5), client.next()).await
    {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1012));
    // New connections work as before.
    let mut again = connect(&server).await;
    send(&mut again, r#"{"op":"ping","id":1}"#).await;
    assert_eq!(recv(&mut again).await["op"], "pong");
    server.shutdown().await.expect("shutdown");
}
