//! The HTTP ingest and read API over real sockets.

mod common;

use common::*;
use pulse_server::clock::now_ms;
use serde_json::json;

fn tick(symbol: &str, price: f64) -> serde_json::Value {
    json!({"symbol": symbol, "price": price, "volume": 10, "ts": now_ms()})
}

#[tokio::test]
async fn ticks_in_every_body_form_reach_subscribers_with_their_ts() {
    let server = start(|_| {}).await;
    let mut client = connect(&server).await;
    send(&mut client, r#"{"op":"subscribe","topics":["ticks:MSFT"]}"#).await;
    assert_eq!(recv(&mut client).await["op"], "subscribed");

    let one = tick("MSFT", 410.0);
    let (status, body) = http(
        &server,
        "POST",
        "/api/ticks",
        &[JSON],
        one.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["offset"], 1);
    let batch = json!([tick("MSFT", 411.0), tick("MSFT", 412.0)]);
    let (status, body) = http(
        &server,
        "POST",
        "/api/ticks",
        &[JSON],
        batch.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2));
    let ndjson = format!("{}\n{}\n", tick("MSFT", 413.0), tick("MSFT", 414.0));
    let (status, _) = http(
        &server,
        "POST",
        "/api/ticks",
        &[("Content-Type", "application/x-ndjson")],
        ndjson.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);

    let mut prices = Vec::new();
    while prices.len() < 5 {
        let frame = recv_until(&mut client, |f| {
            matches!(f["op"].as_str(), Some("event" | "batch"))
        })
        .await;
        for event in events(&frame) {
            prices.push(event["data"]["price"].as_f64().expect("price"));
        }
    }
    assert_eq!(prices, [410.0, 411.0, 412.0, 413.0, 414.0]);
    assert_eq!(
        http(&server, "GET", "/api/candles/MSFT?interval=1s", &[], b"")
            .await
            .1[0]["high"],
        414.0
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn bad_bodies_get_json_errors_and_nothing_is_half_applied() {
    let server = start(|c| c.max_body_bytes = 2_000).await;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/api/ticks", vec![JSON], "{not json".into(), 400, "invalid_json"),
        ("/api/ticks", vec![("Content-Type", "text/plain")], tick("A", 1.0).to_string(), 415, "unsupported_media_type"),
        ("/api/ticks", vec![JSON], json!([tick("AAPL", 1.0), {"symbol": "AAPL", "price": -3, "volume": 1, "ts": now_ms()}]).to_string(), 400, "invalid_item"),
        ("/api/ticks", vec![JSON], json!([tick("AAPL", 1.0), {"symbol": "AAPL"}]).to_string(), 400, "invalid_item"),
        ("/api/ticks", vec![JSON], "[]".into(), 400, "empty_batch"),
        ("/api/ticks", vec![JSON], format!("[{}]", vec![tick("AAPL", 1.0).to_string(); 60].join(",")), 413, "body_too_large"),
        ("/api/posts", vec![JSON], json!({"author": "", "text": "hi"}).to_string(), 400, "invalid_item"),
        ("/api/posts", vec![JSON], json!({"author": "ann", "text": "x".repeat(1_500)}).to_string(), 400, "invalid_item"),
        ("/api/engagement", vec![JSON], json!({"post_id": 42, "kind": "like", "delta": 1, "ts": now_ms()}).to_string(), 404, "unknown_post"),
        ("/api/engagement", vec![JSON], json!({"post_id": 1, "kind": "hug", "delta": 1, "ts": now_ms()}).to_string(), 400, "invalid_item"),
    ];
    for (path, headers, body, status, code) in cases {
        let (got, answer) = http(&server, "POST", path, &headers, body.as_bytes()).await;
        assert_eq!(got, status, "{path} {body:.80} → {answer}");
        assert_eq!(
            answer["error"]["code"], code,
            "{path} {body:.80} → {answer}"
        );
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // The mixed batch named the bad item and field, and applied nothing.
    let body =
        json!([tick("AAPL", 1.0), {"symbol": "AAPL", "price": -3, "volume": 1, "ts": now_ms()}])
            .to_string();
    let (_, answer) = http(&server, "POST", "/api/ticks", &[JSON], body.as_bytes()).await;
    assert_eq!(answer["error"]["item"], 1);
    assert_eq!(answer["error"]["field"], "price");
    let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
    assert_eq!(snapshot["symbols"], json!([]));
    assert_eq!(snapshot["positions"]["ticks"]["offset"], 0);

    for (path, code) in [
        ("/api/posts?limit=0", "invalid_parameter"),
        ("/api/posts?before=abc", "invalid_parameter"),
        ("/api/candles/AAPL?interval=5h", "invalid_parameter"),
        ("/api/candles/aapl", "invalid_parameter"),
        ("/api/candles/AAPL?from=10&to=5", "invalid_parameter"),
    ] {
        let (status, answer) = http(&server, "GET", path, &[], b"").await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}"
        );
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn posts_come_back_scored_and_engagement_adds_up() {
    let server = start(|_| {}).await;
    // Cashtags count for symbols the server tracks.
    let (status, _) = http(
        &server,
        "POST",
        "/api/ticks",
        &[JSON],
        tick("NVDA", 900.0).to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let body = json!({"author": "ann", "text": "Loving these $NVDA earnings, great quarter!"});
    let (status, post) = http(
        &server,
        "POST",
        "/api/posts",
        &[JSON],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{post}");
    assert_eq!(post["sentiment"]["label"], "positive");
    assert_eq!(post["symbols"], json!(["NVDA"]));
    let id = post["id"].as_u64().expect("id");

    let batch = json!([
        {"author": "bob", "text": "This is a disaster, I hate it"},
        {"author": "cy", "text": "Market opens at nine."}
    ]);
    let (_, created) = http(
        &server,
        "POST",
        "/api/posts",
        &[JSON],
        batch.to_string().as_bytes(),
    )
    .await;
    let labels: Vec<_> = created
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["sentiment"]["label"].clone())
        .collect();
    assert_eq!(labels, [json!("negative"), json!("neutral")]);

    let likes = json!([
        {"post_id": id, "kind": "like", "delta": 3, "ts": now_ms()},
        {"post_id": id, "kind": "share", "delta": 1, "ts": now_ms()},
        {"post_id": id, "kind": "like", "delta": -5, "ts": now_ms()}
    ]);
    let (status, _) = http(
        &server,
        "POST",
        "/api/engagement",
        &[JSON],
        likes.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, posts) = http(&server, "GET", "/api/posts?limit=10", &[], b"").await;
    let ours = posts
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["id"] == id)
        .expect("post listed")
        .clone();
    assert_eq!(
        ours["engagement"],
        json!({"likes": 0, "shares": 1, "comments": 0})
    );
    let (_, snapshot) = http(&server, "GET", "/api/snapshot", &[], b"").await;
    assert_eq!(snapshot["sentiment"]["posts"], 3);
    assert!(snapshot["positions"]["posts"]["epoch"].as_str().is_some());

    let (status, scores) = http(
        &server,
        "POST",
        "/api/sentiment",
        &[JSON],
        br#"[{"text":"great"},"awful"]"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(scores[0]["label"], "positive");
    assert_eq!(scores[1]["label"], "negative");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn ingest_token_and_rate_limit_are_enforced() {
    let server = start(|c| {
        c.ingest_token = Some("tok".into());
        c.ingest_rate = 1.0;
    })
    .await;
    let body = tick("AAPL", 1.0).to_string();
    let (status, answer) = http(&server, "POST", "/api/ticks", &[JSON], body.as_bytes()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let auth = ("Authorization", "Bearer tok");
    let wrong = ("Authorization", "Bearer nope");
    assert_eq!(
        http(
            &server,
            "POST",
            "/api/ticks",
            &[JSON, wrong],
            body.as_bytes()
        )
        .await
        .0,
        401
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            http(
                &server,
                "POST",
                "/api/ticks",
                &[JSON, auth],
                body.as_bytes(),
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses[0], 200);
    assert!(statuses.contains(&429), "{statuses:?}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn replay_sends_csv_and_ndjson_files_and_reports_rejections() {
    use pulse_server::replay::{run, ReplayArgs};
    let server = start(|_| {}).await;
    let dir = std::env::temp_dir().join(format!("pulse-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let now = now_ms();
    let csv = dir.join("ticks.csv");
    std::fs::write(
        &csv,
        format!("symbol,price,volume,ts\nAAPL,187.5,10,{now}\nAAPL,188,5,{now}\nAAPL,-1,5,{now}\n"),
    )
    .expect("csv written");
    let args = |file| ReplayArgs {
        file,
        url: format!("http://{}", server.addr()),
        rate: Some(500.0),
        token: None,
    };
    let summary = run(&args(csv)).await.expect("replay runs");
    assert_eq!((summary.sent, summary.accepted), (3, 2));
    assert!(
        summary.rejected[&4].contains("price"),
        "{:?}",
        summary.rejected
    );

    let ndjson = dir.join("posts.ndjson");
    std::fs::write(&ndjson, "{\"author\":\"ann\",\"text\":\"What a great day\"}\n{\"post_id\":1,\"kind\":\"like\",\"delta\":2}\n")
        .expect("ndjson written");
    let summary = run(&args(ndjson)).await.expect("replay runs");
    assert_eq!(summary.accepted, 2, "{:?}", summary.rejected);
    let (_, posts) = http(&server, "GET", "/api/posts", &[], b"").await;
    assert_eq!(posts[0]["engagement"]["likes"], 2);
    let (_, candles) = http(&server, "GET", "/api/candles/AAPL?interval=1s", &[], b"").await;
    assert_eq!(candles[0]["close"], 188.0);
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_full_database_makes_ingest_answer_503_and_readyz_fail() {
    let dir = std::env::temp_dir().join(format!("pulse-full-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("pulse.db");
    let server = start(|c| {
        c.in_memory = false;
        c.db = db.clone();
        c.db_max_mib = 1;
        c.ingest_rate = 0.0;
    })
    .await;
    assert_eq!(http(&server, "GET", "/readyz", &[], b"").await.0, 200);
    let text = "Markets are busy today. ".repeat(40);
    let batch = serde_json::Value::Array(
        (0..100)
            .map(|_| json!({"author": "load", "text": text}))
            .collect(),
    )
    .to_string();
    let mut last = (200, serde_json::Value::Null);
    for _ in 0..50 {
        last = http(&server, "POST", "/api/posts", &[JSON], batch.as_bytes()).await;
        if last.0 != 200 {
            break;
        }
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert_eq!(last.1["error"]["code"], "storage_unavailable");
    let (status, body) = http(&server, "GET", "/readyz", &[], b"").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("storage_failed"))
    );
    let (status, _) = http(
        &server,
        "POST",
        "/api/ticks",
        &[JSON],
        tick("AAPL", 1.0).to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 503, "nothing is accepted after a failed write");
    // The dashboard's compose box says the same through its server function.
    let (status, body) = http(
        &server,
        "POST",
        "/rpc/submit_post",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"author=ann&text=still+there%3F",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    server.shutdown().await.ok();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn responses_are_gzipped_for_clients_that_accept_it() {
    use std::io::Read;
    let server = start(|_| {}).await;
    let (plain_head, plain_body) = get_raw(&server, "/api/snapshot", "").await;
    assert!(plain_head.starts_with("http/1.1 200"), "{plain_head}");
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");

    let (head, body) = get_raw(&server, "/api/snapshot", "Accept-Encoding: gzip\r\n").await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    let mut json = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut json)
        .expect("valid gzip");
    let snapshot: serde_json::Value = serde_json::from_str(&json).expect("JSON inside");
    assert!(snapshot["positions"].is_object(), "{snapshot}");
    assert!(body.len() < plain_body.len(), "gzip made it smaller");

    // The page itself, too.
    let (head, _) = get_raw(&server, "/", "Accept-Encoding: gzip\r\n").await;
    assert!(
        head.starts_with("http/1.1 200") && head.contains("content-encoding: gzip"),
        "{head}"
    );

    // A WebSocket upgrade from a client that accepts gzip still upgrades, uncompressed.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .expect("a request");
    request
        .headers_mut()
        .insert("Accept-Encoding", "gzip".parse().expect("a header value"));
    let (mut client, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrades");
    assert_eq!(response.status(), 101);
    assert!(response.headers().get("content-encoding").is_none());
    send(&mut client, r#"{"op":"ping","id":1}"#).await;
    assert_eq!(recv(&mut client).await["op"], "pong");
    server.shutdown().await.ok();
}

#[tokio::test]
async fn an_unknown_page_is_a_404_with_a_way_back() {
    let server = start(|_| {}).await;
    let (head, body) = get_raw(&server, "/no/such/page", "").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("Page not found"), "{body}");
    assert!(body.contains(r#"href="/""#), "{body}");
    server.shutdown().await.ok();
}
