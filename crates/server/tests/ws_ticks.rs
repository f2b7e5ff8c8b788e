//! The thin live path: simulator → hub → `/ws` → a real WebSocket client.

mod common;

use common::*;
use serde_json::Value;

fn is_events(frame: &Value) -> bool {
    matches!(frame["op"].as_str(), Some("event" | "batch"))
}

#[tokio::test]
async fn subscriber_receives_simulated_ticks() {
    let server = start(|c| {
        c.simulator.disabled = false;
        c.simulator.tick_rate = 200.0;
    })
    .await;
    let mut client = connect(&server).await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks"]}"#).await;
    let subscribed = recv(&mut client).await;
    assert_eq!(subscribed["op"], "subscribed");
    assert_eq!(subscribed["topic"], "ticks");
    assert!(subscribed["epoch"].as_str().is_some_and(|e| !e.is_empty()));

    let mut offsets = Vec::new();
    while offsets.len() < 20 {
        let frame = recv_until(&mut client, is_events).await;
        for event in events(&frame) {
            assert_eq!(event["topic"], "ticks");
            let tick = &event["data"];
            assert!(tick["symbol"].as_str().is_some());
            assert!(tick["price"].as_f64().is_some_and(|p| p > 0.0));
            assert!(tick["ts"].as_i64().is_some());
            offsets.push(event["offset"].as_u64().expect("offset"));
        }
    }
    // Offsets increase by one: nothing skipped, nothing repeated.
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
    // The operating endpoints see it too.
    assert_eq!(http(&server, "GET", "/healthz", &[], b"").await.0, 200);
    assert_eq!(http(&server, "GET", "/readyz", &[], b"").await.0, 200);
    assert!(metric(&server, r#"pulse_events_in_total{topic="ticks"}"#).await >= 20.0);
    assert!(metric(&server, r#"pulse_events_out_total{topic="ticks"}"#).await >= 20.0);
    assert_eq!(
        metric(&server, r#"pulse_topic_subscribers{topic="ticks"}"#).await,
        1.0
    );
    assert!(metric(&server, "pulse_delivery_latency_ms_count").await >= 1.0);
    assert_eq!(metric(&server, "pulse_ws_connections").await, 1.0);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_stream_goes_on() {
    let server = start(|_| {}).await;
    let mut client = connect(&server).await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks:AAPL"]}"#).await;
    assert_eq!(recv(&mut client).await["op"], "subscribed");

    let cases = [
        ("this is not json", "invalid_json"),
        (r#"{"op":"ping""#, "invalid_json"),
        (r#"{"op":"ping"} and more"#, "invalid_json"),
        (r#"{"op":"ping","id":1e400}"#, "invalid_json"),
        // Not JSON, though the parse of a message stops earlier (at the op).
        (r#"{"op":"dance""#, "invalid_json"),
        (r#"{"op":"dance"} junk"#, "invalid_json"),
        ("[99", "invalid_json"),
        (&format!(r#"{{"op":{}"#, "[".repeat(200)), "invalid_json"),
        ("[1,2]", "invalid_message"),
        (r#"{"op":"ping","op":"ping"}"#, "invalid_message"),
        (r#"{"op":"ping","id":1,"extra":true}"#, "invalid_message"),
        (r#"{"op":"dance"}"#, "invalid_message"),
        (r#"{"topics":["ticks"]}"#, "invalid_message"),
        (
            r#"{"op":"subscribe","topics":["weather"]}"#,
            "unknown_topic",
        ),
        (
            r#"{"op":"subscribe","topics":["ticks:lowercase"]}"#,
            "unknown_topic",
        ),
        (
            r#"{"op":"publish","topic":"ticks","data":{"symbol":"AAPL","price":-1,"volume":1,"ts":1}}"#,
            "invalid_data",
        ),
        (
            r#"{"op":"publish","topic":"ticks","data":{"price":"cheap"}}"#,
            "invalid_data",
        ),
        (
            r#"{"op":"publish","topic":"presence","data":{}}"#,
            "read_only_topic",
        ),
        // The same answer as HTTP's 404 and the server functions' not_found.
        (
            r#"{"op":"publish","topic":"engagement","data":{"post_id":987654321,"kind":"like","delta":1,"ts":1700000000000}}"#,
            "not_found",
        ),
    ];
    for (frame, code) in cases {
        send(&mut client, frame).await;
        let reply = recv(&mut client).await;
        assert_eq!(reply["op"], "error", "{frame} → {reply}");
        assert_eq!(reply["code"], code, "{frame} → {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let oversized = format!(r#"{{"op":"ping","id":"{}"}}"#, "x".repeat(70_000));
    send(&mut client, &oversized).await;
    assert_eq!(recv(&mut client).await["code"], "frame_too_large");

    send(
        &mut client,
        r#"{"op":"analyze","id":1,"text":"I love this, great job!"}"#,
    )
    .await;
    let analysis = recv(&mut client).await;
    assert_eq!(analysis["op"], "analysis");
    assert_eq!(analysis["id"], 1);
    assert_eq!(analysis["sentiment"]["label"], "positive");

    // Still alive: ping answers, and a valid publish reaches the subscription.
    send(&mut client, r#"{"op":"ping","id":7}"#).await;
    let pong = recv(&mut client).await;
    assert_eq!(pong, serde_json::json!({"op":"pong","id":7}));
    let now = pulse_server::clock::now_ms();
    let publish = format!(
        r#"{{"op":"publish","topic":"ticks","data":{{"symbol":"AAPL","price":187.5,"volume":3,"ts":{now}}}}}"#
    );
    send(&mut client, &publish).await;
    let frame = recv_until(&mut client, is_events).await;
    let tick = &events(&frame)[0]["data"];
    assert_eq!(tick["price"], 187.5);
    assert_eq!(tick["ts"], now);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn publishing_requires_the_ingest_token_when_configured() {
    let server = start(|c| c.ingest_token = Some("s3cret".into())).await;
    let mut client = connect(&server).await;
    let now = pulse_server::clock::now_ms();
    let publish = format!(
        r#"{{"op":"publish","topic":"ticks","data":{{"symbol":"AAPL","price":1,"volume":1,"ts":{now}}}}}"#
    );
    send(&mut client, &publish).await;
    assert_eq!(recv(&mut client).await["code"], "unauthorized");

    let url = format!("ws://{}/ws?token=s3cret", server.addr());
    let (mut producer, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    send(&mut producer, r#"{"op":"subscribe","topics":["ticks"]}"#).await;
    assert_eq!(recv(&mut producer).await["op"], "subscribed");
    send(&mut producer, &publish).await;
    let frame = recv_until(&mut producer, is_events).await;
    assert_eq!(events(&frame)[0]["data"]["symbol"], "AAPL");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn foreign_origin_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = start(|_| {}).await;
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().expect("header"));
    let error = tokio_tungstenite::connect_async(request)
        .await
        .expect_err("upgrade refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("expected an HTTP refusal, got {error:?}");
    };
    assert_eq!(response.status(), 403);
    server.shutdown().await.expect("clean shutdown");
}
