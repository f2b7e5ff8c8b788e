//! Hostile clients against a real server: each test is one way a client
//! tried to make the server hold too much, lie to it, or knock it over, and
//! checks the documented answer at the bound (README, "Limits"). The edge
//! (connections, timeouts, Host), the dashboard's writes and storage have
//! their own suites: `hostile_edge.rs`, `hostile_rpc.rs`, `hostile_storage.rs`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::{SinkExt, StreamExt};
use pulse_server::clock::now_ms;
use pulse_server::RunningServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn tick(symbol: &str, price: f64, volume: f64, ts: i64) -> Value {
    json!({"symbol": symbol, "price": price, "volume": volume, "ts": ts})
}

async fn healthy(server: &RunningServer) {
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(10),
        http(server, "GET", "/healthz", &[], b""),
    )
    .await
    .expect("/healthz answers");
    assert_eq!(status, 200);
}

/// The next close frame (code, reason), skipping data; `None` if the
/// connection ended without one.
async fn close_of(client: &mut Client) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .expect("the server closes in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                return Some((frame.code.into(), frame.reason.to_string()))
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_huge_volume_is_refused_and_the_page_still_renders() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    let now = now_ms();
    // Finite, so accepted by the old rules; summed, it overflowed to infinity.
    let (status, body) = post_json(
        &server,
        "/api/ticks",
        &json!([
            tick("HUGE", 10.0, 1.6e308, now),
            tick("HUGE", 11.0, 1.6e308, now + 1)
        ]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "volume");
    assert_eq!(body["error"]["item"], 0);
    // The largest accepted values, summed, stay finite and drawable.
    let ticks: Vec<Value> = (0..50).map(|i| tick("BIG", 1e9, 1e12, now + i)).collect();
    let (status, body) = post_json(&server, "/api/ticks", &Value::Array(ticks)).await;
    assert_eq!(status, 200, "{body}");
    let (status, page) = tokio::time::timeout(
        Duration::from_secs(20),
        http(&server, "GET", "/?symbol=BIG", &[], b""),
    )
    .await
    .expect("the page renders in time");
    assert_eq!(status, 200);
    let page = page.as_str().unwrap_or_default();
    assert!(
        !page.contains("NaN") && !page.contains("inf<"),
        "no non-finite numbers drawn"
    );
    let big = snapshot_symbol(&server, "BIG").await;
    assert!(big["volume"].as_f64().is_some_and(f64::is_finite), "{big}");
    healthy(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_symbol_must_start_with_a_letter_or_digit() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    for symbol in ["-", ".", "-AAPL"] {
        let (status, body) =
            post_json(&server, "/api/ticks", &tick(symbol, 1.0, 1.0, now_ms())).await;
        assert_eq!(status, 400, "{symbol}: {body}");
        assert_eq!(body["error"]["field"], "symbol");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribing_to_made_up_symbols_allocates_a_bounded_few_while_subscribed() {
    let server = start(|c| c.max_pending_topics = 10).await;
    let mut watcher = connect(&server).await;
    // The connections' presence update creates the presence topic; count after it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let topics_before = metric(&server, "pulse_topics").await;
    let mut client = connect(&server).await;
    // 10,000 made-up names in three frames under the 64 KiB frame limit.
    for part in 0..3 {
        let names: Vec<String> = (0..3_334)
            .map(|i| format!("ticks:S{}", part * 3_334 + i))
            .collect();
        send(
            &mut client,
            &json!({"op": "subscribe", "topics": names}).to_string(),
        )
        .await;
    }
    // Ten wait for data; the rest get one error per frame, naming the count.
    let mut subscribed = 0;
    let mut errors = Vec::new();
    while errors.len() < 3 {
        let frame = recv(&mut client).await;
        match frame["op"].as_str() {
            Some("subscribed") => subscribed += 1,
            Some("error") => {
                assert_eq!(frame["code"], "unknown_topic");
                errors.push(frame["message"].as_str().unwrap_or_default().to_owned());
            }
            _ => panic!("{frame}"),
        }
    }
    assert_eq!(subscribed, 10);
    assert!(
        errors[0].starts_with("3324 unknown topics"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2].starts_with("3334 unknown topics"),
        "{}",
        errors[2]
    );
    assert_eq!(metric(&server, "pulse_pending_topics").await, 10.0);
    // Not a malformed frame: the connection stays usable.
    send(&mut client, r#"{"op":"ping","id":1}"#).await;
    assert_eq!(recv(&mut client).await["op"], "pong");
    // The client leaves: its pending topics go with it.
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "pulse_pending_topics").await > 0.0 {
        assert!(Instant::now() < deadline, "pending topics left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&server, "pulse_topics").await, topics_before);
    let (_, page) = http(&server, "GET", "/metrics", &[], b"").await;
    assert!(!page.as_str().unwrap_or_default().contains("ticks:S1\""));
    drop(watcher.close(None).await);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_topic_listed_many_times_is_subscribed_and_replayed_once() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    let now = now_ms();
    let ticks: Vec<Value> = (0..20)
        .map(|i| tick("AAPL", 100.0, i as f64, now + i))
        .collect();
    let (status, _) = post_json(&server, "/api/ticks", &Value::Array(ticks)).await;
    assert_eq!(status, 200);
    let position = {
        let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
        snapshot["positions"]["ticks"].clone()
    };
    let epoch = position["epoch"].as_str().expect("epoch").to_owned();
    let mut client = connect(&server).await;
    let topics = vec!["ticks"; 25];
    send(
        &mut client,
        &json!({"op": "subscribe", "topics": topics, "since": {"ticks": {"epoch": epoch, "offset": 0}}})
            .to_string(),
    )
    .await;
    assert_eq!(recv(&mut client).await["op"], "subscribed");
    let mut offsets = Vec::new();
    while offsets.len() < 20 {
        let frame = recv(&mut client).await;
        assert_ne!(frame["op"], "subscribed", "one subscription");
        offsets.extend(events(&frame).iter().map(|e| e["offset"].as_u64().unwrap()));
    }
    assert_eq!(offsets, (1..=20).collect::<Vec<u64>>());
    send(&mut client, r#"{"op":"ping","id":"end"}"#).await;
    let next = recv(&mut client).await;
    assert_eq!(next["op"], "pong", "nothing replayed twice: {next}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscriptions_per_connection_are_capped() {
    let server = start(|c| {
        c.ingest_rate = 0.0;
        c.max_subscriptions = 3;
    })
    .await;
    let now = now_ms();
    let ticks: Vec<Value> = ["A", "B", "C"]
        .iter()
        .map(|s| tick(s, 1.0, 1.0, now))
        .collect();
    assert_eq!(
        post_json(&server, "/api/ticks", &Value::Array(ticks))
            .await
            .0,
        200
    );
    let mut client = connect(&server).await;
    send(
        &mut client,
        r#"{"op":"subscribe","topics":["ticks:A","ticks:B","posts","ticks:C","candles:A"]}"#,
    )
    .await;
    let mut subscribed = 0;
    let mut refused = Vec::new();
    while subscribed + refused.len() < 4 {
        let frame = recv(&mut client).await;
        match frame["op"].as_str() {
            Some("subscribed") => subscribed += 1,
            Some("error") => refused.push(frame["code"].as_str().unwrap_or_default().to_owned()),
            _ => {}
        }
    }
    assert_eq!(subscribed, 3);
    assert_eq!(
        refused,
        ["too_many_subscriptions"],
        "one error names both refused topics"
    );
    // Re-subscribing a held topic is not a new subscription; dropping one frees a slot.
    send(&mut client, r#"{"op":"unsubscribe","topics":["posts"]}"#).await;
    recv_until(&mut client, |f| f["op"] == "unsubscribed").await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks:C"]}"#).await;
    let frame = recv_until(&mut client, |f| f["op"] != "event" && f["op"] != "batch").await;
    assert_eq!(frame["op"], "subscribed", "{frame}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn replies_to_a_client_that_never_reads_are_budgeted() {
    let server = start(|c| c.max_queued_bytes = 64 * 1024).await;
    let mut client = connect_with_small_buffer(&server).await;
    // A ping echoes its id: each 30 KB frame asks for a 30 KB reply, 1,000
    // of them for 30 MB, far beyond what the socket buffers hold.
    let frame = json!({"op": "ping", "id": "x".repeat(30_000)}).to_string();
    let sending = async {
        for _ in 0..1_000 {
            if client
                .send(Message::Text(frame.clone().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), sending).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "pulse_ws_slow_consumer_disconnects_total").await < 1.0 {
        assert!(Instant::now() < deadline, "the client was never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(close_of(&mut client).await.map(|c| c.0), Some(4008));
    healthy(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_backlog_larger_than_the_budget_arrives_whole_as_the_client_reads() {
    let server = start(|c| {
        c.ingest_rate = 0.0;
        c.max_queued_bytes = 64 * 1024;
    })
    .await;
    let now = now_ms();
    // ~3,000 events of ~110 bytes: five times the connection's budget.
    for batch in 0..6 {
        let ticks: Vec<Value> = (0..500)
            .map(|i| {
                tick(
                    "AAPL",
                    100.0,
                    (batch * 500 + i) as f64,
                    now + batch * 500 + i,
                )
            })
            .collect();
        assert_eq!(
            post_json(&server, "/api/ticks", &Value::Array(ticks))
                .await
                .0,
            200
        );
    }
    let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
    let epoch = snapshot["positions"]["ticks"]["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut client = connect(&server).await;
    send(
        &mut client,
        &json!({"op": "subscribe", "topics": ["ticks"], "since": {"ticks": {"epoch": epoch, "offset": 0}}})
            .to_string(),
    )
    .await;
    let subscribed = recv(&mut client).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let mut offsets = Vec::new();
    while offsets.len() < 3_000 {
        let frame = recv(&mut client).await;
        assert!(frame["op"] == "event" || frame["op"] == "batch", "{frame}");
        offsets.extend(events(&frame).iter().map(|e| e["offset"].as_u64().unwrap()));
    }
    assert_eq!(
        offsets,
        (1..=3_000).collect::<Vec<u64>>(),
        "no gap, no repeat"
    );
    assert_eq!(
        metric(&server, "pulse_ws_slow_consumer_disconnects_total").await,
        0.0
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_tick_from_the_future_is_refused_and_real_ticks_move_the_price() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    let now = now_ms();
    let (status, body) = post_json(
        &server,
        "/api/ticks",
        &tick("FUT", 999.0, 1.0, now + 290_000),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "ts");
    for (i, price) in [10.0, 11.0, 12.0].into_iter().enumerate() {
        let (status, body) = post_json(
            &server,
            "/api/ticks",
            &tick("FUT", price, 1.0, now_ms() + i as i64),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let fut = snapshot_symbol(&server, "FUT").await;
    assert_eq!(fut["last"], 12.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_tick_the_market_cannot_use_is_refused_naming_the_item_and_an_old_one_is_a_backfill() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    let now = now_ms();
    assert_eq!(
        post_json(&server, "/api/ticks", &tick("LATE", 10.0, 1.0, now))
            .await
            .0,
        200
    );
    // An exact repeat of the batch's previous tick: the engine would drop it.
    let (status, body) = post_json(
        &server,
        "/api/ticks",
        &json!([
            tick("LATE", 11.0, 1.0, now + 1),
            tick("LATE", 11.0, 1.0, now + 1)
        ]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["item"], 1);
    assert_eq!(body["error"]["field"], "ts");
    // All or nothing: the good first item was not applied either.
    let (_, candles) = http(&server, "GET", "/api/candles/LATE?interval=1s", &[], b"").await;
    assert_eq!(
        candles.as_array().map(Vec::len),
        Some(1),
        "only the first tick's candle: {candles}"
    );
    assert_eq!(candles[0]["high"], 10.0, "{candles}");
    // The same tick sent twice is refused the second time, not counted twice.
    let (status, body) = post_json(&server, "/api/ticks", &tick("LATE", 10.0, 1.0, now)).await;
    assert_eq!(status, 400, "{body}");
    // 60 s older than the newest tick: a backfill, kept in the candles of
    // its time without moving the last price.
    let (status, body) =
        post_json(&server, "/api/ticks", &tick("LATE", 9.0, 1.0, now - 60_000)).await;
    assert_eq!(status, 200, "{body}");
    let late = snapshot_symbol(&server, "LATE").await;
    assert_eq!(
        (late["last"].as_f64(), late["backfilled"].as_u64()),
        (Some(10.0), Some(1))
    );
    let (_, candles) = http(
        &server,
        "GET",
        &format!("/api/candles/LATE?interval=1s&to={}", now - 59_000),
        &[],
        b"",
    )
    .await;
    assert_eq!(candles[0]["close"], 9.0, "{candles}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_tracked_symbols_are_bounded_and_a_batch_past_the_bound_is_refused_whole() {
    let server = start(|c| {
        c.ingest_rate = 0.0;
        c.max_symbols = 5;
    })
    .await;
    let now = now_ms();
    let ticks: Vec<Value> = (0..10)
        .map(|i| tick(&format!("N{i}"), 1.0, 1.0, now))
        .collect();
    let (status, body) = post_json(&server, "/api/ticks", &Value::Array(ticks)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["item"], 5);
    assert_eq!(body["error"]["field"], "symbol");
    assert_eq!(
        metric(&server, "pulse_symbols_tracked").await,
        0.0,
        "nothing half-applied"
    );
    let ticks: Vec<Value> = (0..5)
        .map(|i| tick(&format!("N{i}"), 1.0, 1.0, now))
        .collect();
    assert_eq!(
        post_json(&server, "/api/ticks", &Value::Array(ticks))
            .await
            .0,
        200
    );
    assert_eq!(metric(&server, "pulse_symbols_tracked").await, 5.0);
    let (status, _) = post_json(&server, "/api/ticks", &tick("N9", 1.0, 1.0, now)).await;
    assert_eq!(status, 400);
    // Known symbols go on.
    assert_eq!(
        post_json(&server, "/api/ticks", &tick("N0", 2.0, 1.0, now + 1))
            .await
            .0,
        200
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_allowlist_admits_only_its_symbols() {
    let server = start(|c| {
        c.ingest_rate = 0.0;
        c.allowed_symbols = vec!["AAPL".into(), "MSFT".into()];
    })
    .await;
    let (status, body) = post_json(&server, "/api/ticks", &tick("EVIL", 1.0, 1.0, now_ms())).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("symbol"))
    );
    // An allowlisted symbol is tracked before its first tick: its topic exists.
    let mut client = connect(&server).await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks:MSFT"]}"#).await;
    assert_eq!(recv(&mut client).await["op"], "subscribed");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn made_up_cashtags_create_no_sentiment_windows() {
    let server = start(|c| c.ingest_rate = 0.0).await;
    assert_eq!(
        post_json(&server, "/api/ticks", &tick("AAPL", 1.0, 1.0, now_ms()))
            .await
            .0,
        200
    );
    let tags: Vec<String> = (0..120).map(|i| format!("$FAKE{i}")).collect();
    for _ in 0..12 {
        let text = format!("love it {} $AAPL", tags.join(" "));
        let (status, body) = post_json(
            &server,
            "/api/posts",
            &json!({"author": "spam", "text": text}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["symbols"], json!(["AAPL"]));
    }
    let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
    let windows = snapshot["sentiment_by_symbol"].as_object().expect("map");
    assert_eq!(windows.keys().collect::<Vec<_>>(), ["AAPL"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_address_with_made_up_sessions_counts_as_a_few_users() {
    let server = start(|c| c.max_sessions_per_ip = 8).await;
    let mut clients = Vec::new();
    for i in 0..40 {
        let url = format!("ws://{}/ws?session=fake{i}", server.addr());
        let (client, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects");
        clients.push(client);
    }
    let mut watcher = connect(&server).await;
    send(&mut watcher, r#"{"op":"subscribe","topics":["presence"]}"#).await;
    let counted = recv_until(&mut watcher, |f| {
        events(f)
            .iter()
            .any(|e| e["data"]["connections"].as_u64() == Some(41))
    })
    .await;
    let counted = events(&counted)
        .into_iter()
        .find(|e| e["data"]["connections"].as_u64() == Some(41))
        .expect("presence event");
    assert_eq!(counted["data"]["sessions"], 8, "{counted}");
    drop(clients);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rejected_records_never_disconnect_a_producer() {
    let server = start(|_| {}).await;
    let mut client = connect(&server).await;
    for id in 0..150 {
        let frame = json!({"op": "publish", "topic": "ticks", "id": id,
            "data": {"symbol": "AAPL", "price": -1.0, "volume": 1.0, "ts": now_ms()}});
        send(&mut client, &frame.to_string()).await;
    }
    for _ in 0..150 {
        let frame = recv(&mut client).await;
        assert_eq!(
            (frame["op"].as_str(), frame["code"].as_str()),
            (Some("error"), Some("invalid_data"))
        );
    }
    let good = json!({"op": "publish", "topic": "ticks", "id": "good",
        "data": {"symbol": "AAPL", "price": 1.0, "volume": 1.0, "ts": now_ms()}});
    send(&mut client, &good.to_string()).await;
    let ack = recv(&mut client).await;
    assert_eq!(
        (ack["op"].clone(), ack["id"].clone()),
        (json!("published"), json!("good")),
        "{ack}"
    );
    // Malformed frames still do count.
    for _ in 0..100 {
        let _ = client.send(Message::Text("not json".into())).await;
    }
    assert_eq!(close_of(&mut client).await.map(|c| c.0), Some(1008));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn protocol_violations_close_with_the_rfc_6455_codes() {
    let server = start(|_| {}).await;
    // Text that is not UTF-8: 1007.
    let mut client = connect(&server).await;
    let frame = Frame::message(vec![0xff, 0xfe, 0x80], OpCode::Data(Data::Text), true);
    client.send(Message::Frame(frame)).await.expect("sent");
    assert_eq!(close_of(&mut client).await.map(|c| c.0), Some(1007));
    // A reserved bit set without an extension: 1002.
    let mut client = connect(&server).await;
    let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
    frame.header_mut().rsv1 = true;
    client.send(Message::Frame(frame)).await.expect("sent");
    assert_eq!(close_of(&mut client).await.map(|c| c.0), Some(1002));
    // A frame over the hard limit: 1009.
    let mut client = connect(&server).await;
    let _ = client
        .send(Message::Text("x".repeat(2 * 1024 * 1024).into()))
        .await;
    assert_eq!(close_of(&mut client).await.map(|c| c.0), Some(1009));
    healthy(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_fast_producer_is_slowed_down_not_refused() {
    let server = start(|c| c.publish_rate = 100.0).await;
    let mut client = connect(&server).await;
    let started = Instant::now();
    let now = now_ms();
    for id in 0..400 {
        let frame = json!({"op": "publish", "topic": "ticks", "id": id,
            "data": {"symbol": "AAPL", "price": 1.0 + id as f64, "volume": 1.0, "ts": now + id}});
        send(&mut client, &frame.to_string()).await;
    }
    let mut acked = 0;
    while acked < 400 {
        let frame = recv(&mut client).await;
        assert_eq!(frame["op"], "published", "{frame}");
        acked += 1;
    }
    // A burst of 200 passes at once; the other 200 at 100/s take ~2 s. A
    // lower bound only: a slow machine makes this longer, never shorter.
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    server.shutdown().await.unwrap();
}

#[test]
fn out_of_range_flags_exit_with_code_2_and_name_the_flag() {
    for (flag, value) in [
        ("--heartbeat-secs", "18446744073709551615"),
        ("--prune-every-secs", "0"),
        ("--ingest-token", " "),
        ("--max-symbols", "0"),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args([
                "--in-memory",
                "--no-simulator",
                "--addr",
                "127.0.0.1:0",
                flag,
                value,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pulse starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{flag} {value}: the server started instead of refusing the flag");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr read");
        assert_eq!(status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} named: {stderr}");
    }
}
