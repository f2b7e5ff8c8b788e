//! Random and mutated input against a running server, for a bounded number
//! of cases: WebSocket frames (valid ones with hostile values, mutations of
//! them, random text) and ingest bodies. After every case the server must
//! still answer, every reply must be a well-formed JSON frame with an `op`,
//! and memory must stay bounded.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pulse_server::clock::now_ms;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Numbers a hostile client sends: huge, tiny, negative, out of every range.
fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(1.6e308)),
        Just(json!(-1.6e308)),
        Just(json!(5e-324)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!("NaN")),
        Just(json!(null)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN/inf", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        (0i64..10_000).prop_map(|d| json!(now_ms() + d)),
    ]
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9.$-]{0,14}",
        ".{0,64}",
        Just("<script>alert(1)</script>".to_owned()),
        Just("\u{0}\u{7f}\u{ffff}".to_owned()),
        (1usize..20).prop_map(|n| "$FAKE ".repeat(n * 10)),
    ]
}

fn topic_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ticks".to_owned()),
        Just("posts".to_owned()),
        Just("presence".to_owned()),
        Just("engagement".to_owned()),
        "ticks:[A-Z0-9.-]{0,13}",
        "candles:[A-Z]{1,4}",
        ".{0,20}",
    ]
}

/// A frame shaped like a real request, with hostile values inside.
fn shaped_frame() -> impl Strategy<Value = Value> {
    prop_oneof![
        (prop::collection::vec(topic_name(), 0..40), hostile_number()).prop_map(
            |(topics, offset)| {
                json!({"op": "subscribe", "topics": topics,
                   "since": {"ticks": {"epoch": "x", "offset": offset}}})
            }
        ),
        prop::collection::vec(topic_name(), 0..10)
            .prop_map(|topics| json!({"op": "unsubscribe", "topics": topics})),
        (
            hostile_text(),
            hostile_number(),
            hostile_number(),
            hostile_number()
        )
            .prop_map(|(symbol, price, volume, ts)| {
                json!({"op": "publish", "topic": "ticks", "id": 1,
                       "data": {"symbol": symbol, "price": price, "volume": volume, "ts": ts}})
            }),
        (hostile_text(), hostile_text()).prop_map(|(author, text)| {
            json!({"op": "publish", "topic": "posts", "id": 2,
                   "data": {"author": author, "text": text}})
        }),
        (hostile_number(), hostile_number()).prop_map(|(post_id, delta)| {
            json!({"op": "publish", "topic": "engagement", "id": 3,
                   "data": {"post_id": post_id, "kind": "like", "delta": delta, "ts": now_ms()}})
        }),
        hostile_text().prop_map(|text| json!({"op": "analyze", "id": 4, "text": text})),
        hostile_number().prop_map(|id| json!({"op": "ping", "id": id})),
    ]
}

/// A shaped frame, a mutation of one (bytes cut, flipped or repeated), or noise.
fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => shaped_frame().prop_map(|v| v.to_string()),
        2 => (shaped_frame(), any::<prop::sample::Index>(), any::<u8>(), 0usize..3).prop_map(
            |(v, at, byte, how)| {
                let mut bytes = v.to_string().into_bytes();
                let i = at.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
                match how {
                    0 => bytes.truncate(i),
                    1 => {
                        if let Some(b) = bytes.get_mut(i) {
                            *b = byte;
                        }
                    }
                    _ => {
                        let tail = bytes[i..].to_vec();
                        bytes.extend_from_slice(&tail);
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        ),
        1 => ".{0,200}",
    ]
}

/// An ingest body: shaped items, a mutation, or noise.
fn body() -> impl Strategy<Value = (String, String)> {
    let path = prop_oneof![
        Just("/api/ticks".to_owned()),
        Just("/api/posts".to_owned()),
        Just("/api/engagement".to_owned()),
        Just("/api/sentiment".to_owned()),
    ];
    (
        path,
        prop::collection::vec(shaped_frame(), 0..20),
        any::<bool>(),
    )
        .prop_map(|(path, frames, cut)| {
            let items: Vec<Value> = frames.into_iter().map(|f| f["data"].clone()).collect();
            let mut text = Value::Array(items).to_string();
            if cut {
                let mut at = text.len() / 2;
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            (path, text)
        })
}

fn well_formed(text: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text}"))?;
    if value["op"].as_str().is_none() {
        return Err(format!("no op: {text}"));
    }
    // serde_json writes a non-finite f64 as null: scores must be numbers.
    if value["op"] == "analysis" && !value["sentiment"]["compound"].is_f64() {
        return Err(format!("analysis without a numeric score: {text}"));
    }
    for event in value["events"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&value])
    {
        let data = &event["data"];
        for field in ["price", "volume", "open", "close", "high", "low"] {
            if data.get(field).is_some_and(Value::is_null) {
                return Err(format!("{field} is not a number: {text}"));
            }
        }
    }
    Ok(())
}

#[test]
fn random_and_mutated_input_never_hurts_the_server() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime.block_on(start(|c| c.ingest_rate = 0.0));
    // Some real data for the frames to act on.
    runtime.block_on(async {
        let ticks: Vec<Value> = ["AAPL", "MSFT"]
            .iter()
            .map(|s| json!({"symbol": s, "price": 10.0, "volume": 1.0, "ts": now_ms()}))
            .collect();
        let seeded = post_json(&server, "/api/ticks", &Value::Array(ticks)).await;
        assert_eq!(seeded.0, 200, "{}", seeded.1);
        let seeded = post_json(
            &server,
            "/api/posts",
            &json!({"author": "a", "text": "hi $AAPL"}),
        )
        .await;
        assert_eq!(seeded.0, 200, "{}", seeded.1);
    });
    let rss_before = runtime.block_on(metric(&server, "pulse_process_resident_memory_bytes"));
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (prop::collection::vec(frame(), 1..30), body());
    let result = runner.run(&strategy, |(frames, (path, body))| {
        runtime.block_on(async {
            let mut client = connect(&server).await;
            for frame in &frames {
                if client
                    .send(Message::Text(frame.clone().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let _ = client
                .send(Message::Text(r#"{"op":"ping","id":"end"}"#.into()))
                .await;
            // Read until our pong (or the server closed the connection with a reason).
            loop {
                match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
                    Err(_) => return Err(TestCaseError::fail("the server stopped answering")),
                    Ok(None) | Ok(Some(Err(_))) => break,
                    Ok(Some(Ok(Message::Text(text)))) => {
                        well_formed(&text).map_err(TestCaseError::fail)?;
                        if text.contains(r#""id":"end""#) {
                            break;
                        }
                    }
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        let code = frame.map(|f| u16::from(f.code));
                        prop_assert!(
                            matches!(code, Some(1002 | 1007 | 1008 | 1009 | 4008)),
                            "unexpected close {code:?}"
                        );
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                }
            }
            let (status, answer) = http(&server, "POST", &path, &[JSON], body.as_bytes()).await;
            prop_assert!(
                matches!(status, 200 | 400 | 413 | 429),
                "{path}: {status} {answer}"
            );
            if status != 200 {
                prop_assert!(answer["error"]["code"].is_string(), "{path}: {answer}");
            }
            let (status, _) = http(&server, "GET", "/healthz", &[], b"").await;
            prop_assert_eq!(status, 200);
            Ok(())
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    runtime.block_on(async {
        // The page still renders whatever was ingested.
        let (status, _) =
            tokio::time::timeout(Duration::from_secs(20), http(&server, "GET", "/", &[], b""))
                .await
                .expect("the page renders");
        assert_eq!(status, 200);
        let rss_after = metric(&server, "pulse_process_resident_memory_bytes").await;
        assert!(
            rss_after - rss_before < 256.0 * 1024.0 * 1024.0,
            "memory grew by {} MiB",
            (rss_after - rss_before) / 1048576.0
        );
        server.shutdown().await.expect("shutdown");
    });
}
