//! The server's edge against hostile clients, over raw sockets: header,
//! idle, body and write timeouts, connection caps, the Host allowlist and
//! the security headers.

mod common;

use std::time::Duration;

use common::*;
use pulse_server::RunningServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes; panics if it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response: the head, then `Content-Length` bytes of body (or
/// until the peer closes). Returns (status, lower-cased head, body).
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(split) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..split]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let body = &seen[split + 4..];
            let done = match length {
                Some(length) => body.len() >= length,
                // 101 and friends: the head is the answer.
                None => !head.contains("transfer-encoding"),
            };
            if done {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status line");
                return (status, head, String::from_utf8_lossy(body).into_owned());
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!(
                "no complete response ({other:?}); got {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// One raw request on a fresh connection.
async fn exchange(server: &RunningServer, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    read_response(&mut stream).await
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn upgrade(host: &str, origin: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Polls a metric until `pred` holds; panics with the last value after 15 s.
async fn wait_for_metric(server: &RunningServer, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let value = metric(server, name).await;
        if pred(value) {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            let (_, page) = http(server, "GET", "/metrics", &[], b"").await;
            let page = page.as_str().unwrap_or_default().to_owned();
            let ours: Vec<&str> = page
                .lines()
                .filter(|l| l.starts_with("pulse_") && !l.contains("_bucket"))
                .collect();
            panic!("{name} is still {value}:\n{}", ours.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` posts of ~1 KB in one request.
async fn publish_posts(server: &RunningServer, n: usize) {
    let text = "Markets were busy today and ".repeat(35);
    let posts: Vec<Value> = (0..n)
        .map(|_| json!({"author": "load", "text": text}))
        .collect();
    let (status, body) = http(
        server,
        "POST",
        "/api/posts",
        &[JSON],
        Value::Array(posts).to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn connections_with_unfinished_headers_are_closed_after_the_header_timeout() {
    let server = start(|c| c.header_timeout_secs = 1).await;
    let mut streams = Vec::new();
    for i in 0..20 {
        let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
        // Half send part of a head (slowloris), half send nothing at all.
        if i % 2 == 0 {
            let partial = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: a", server.addr());
            stream.write_all(partial.as_bytes()).await.expect("written");
        }
        streams.push(stream);
    }
    for stream in &mut streams {
        read_until_closed(stream, Duration::from_secs(6)).await;
    }
    let closed = metric(&server, "pulse_connection_timeouts_total{kind=\"header\"}").await;
    assert!(closed >= 20.0, "{closed}");
    assert_eq!(http(&server, "GET", "/healthz", &[], b"").await.0, 200);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // The header timeout is longer, so only the idle timeout can close it.
    let server = start(|c| {
        c.idle_timeout_secs = 1;
        c.header_timeout_secs = 60;
    })
    .await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr());
    stream.write_all(request.as_bytes()).await.expect("written");
    let (status, head, _) = read_response(&mut stream).await;
    assert_eq!(status, 200);
    assert!(!head.contains("connection: close"), "{head}");
    read_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert_eq!(
        metric(&server, "pulse_connection_timeouts_total{kind=\"idle\"}").await,
        1.0
    );
    assert_eq!(
        metric(&server, "pulse_connection_timeouts_total{kind=\"header\"}").await,
        0.0
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_trickled_body_is_cut_with_408() {
    let server = start(|c| {
        c.body_timeout_secs = 1;
        c.ingest_rate = 0.0;
    })
    .await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
    let head = format!(
        "POST /api/ticks HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n[",
        server.addr()
    );
    stream.write_all(head.as_bytes()).await.expect("written");
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while !seen.windows(2).any(|w| w == b"}}") {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!(
                "no 408 ({other:?}); got {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    trickle.abort();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body: Value =
        serde_json::from_str(text.split_once("\r\n\r\n").expect("head").1).expect("JSON body");
    assert_eq!(body["error"]["code"], "body_timeout");
    assert_eq!(
        metric(&server, "pulse_connection_timeouts_total{kind=\"body\"}").await,
        1.0
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_per_address_cap_answers_503_with_retry_after_and_frees_up() {
    let server = start(|c| c.max_connections_per_ip = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(server.addr()).await.expect("connects"));
    }
    let (status, head, body) =
        exchange(&server, &get("/healthz", &server.addr().to_string())).await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after: 5"), "{head}");
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["error"]["code"], "too_many_connections");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("--max-connections-per-ip")));
    // A WebSocket upgrade is refused before it is upgraded.
    let addr = server.addr().to_string();
    let (status, _, _) = exchange(&server, &upgrade(&addr, &format!("http://{addr}"))).await;
    assert_eq!(status, 503);

    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = exchange(&server, &get("/healthz", &addr)).await;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = metric(
        &server,
        "pulse_connections_refused_total{reason=\"max_connections_per_ip\"}",
    )
    .await;
    assert!(refused >= 2.0, "{refused}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_global_cap_answers_503_too() {
    let server = start(|c| c.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr()).await.expect("connects"));
    }
    let addr = server.addr().to_string();
    let (status, head, body) = exchange(&server, &get("/api/snapshot", &addr)).await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after:"), "{head}");
    assert!(body.contains("--max-connections"), "{body}");
    drop(held);
    wait_for_metric(&server, "pulse_connections_open", |open| open == 1.0).await;
    assert_eq!(
        metric(
            &server,
            "pulse_connections_refused_total{reason=\"max_connections\"}"
        )
        .await,
        1.0
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_websocket_client_that_never_reads_is_closed_by_the_write_timeout() {
    // Budgets large enough that only the write timeout can close it.
    let server = start(|c| {
        c.write_timeout_secs = 1;
        c.max_queued_bytes = 512 * 1024 * 1024;
        c.max_queued_frames = 1_000_000;
        c.ingest_rate = 0.0;
    })
    .await;
    let mut stalled = connect_with_small_buffer(&server).await;
    send(&mut stalled, r#"{"op":"subscribe","topics":["posts"]}"#).await;
    assert_eq!(recv(&mut stalled).await["op"], "subscribed");
    let timeouts = "pulse_connection_timeouts_total{kind=\"write\"}";
    for _ in 0..40 {
        publish_posts(&server, 500).await;
        if metric(&server, timeouts).await >= 1.0 {
            break;
        }
    }
    wait_for_metric(&server, timeouts, |n| n == 1.0).await;
    wait_for_metric(&server, "pulse_ws_connections", |n| n == 0.0).await;
    // Only the /metrics request itself is left open: the socket is gone.
    wait_for_metric(&server, "pulse_connections_open", |n| n == 1.0).await;
    assert_eq!(http(&server, "GET", "/healthz", &[], b"").await.0, 200);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_writer_of_a_closed_slow_consumer_is_aborted_after_the_grace() {
    // A small budget closes it with 4008 while its writer is stuck on a full
    // socket; the write timeout is too long to be what frees it.
    let server = start(|c| {
        c.max_queued_bytes = 128 * 1024;
        c.write_timeout_secs = 3_600;
        c.ingest_rate = 0.0;
    })
    .await;
    let mut stalled = connect_with_small_buffer(&server).await;
    send(&mut stalled, r#"{"op":"subscribe","topics":["posts"]}"#).await;
    assert_eq!(recv(&mut stalled).await["op"], "subscribed");
    // Frames smaller than the budget, so the socket fills (and the writer
    // blocks) before the queue goes over it.
    let slow = "pulse_ws_slow_consumer_disconnects_total";
    for round in 0..1_000 {
        publish_posts(&server, 40).await;
        if round % 10 == 9 && metric(&server, slow).await >= 1.0 {
            break;
        }
    }
    wait_for_metric(&server, slow, |n| n == 1.0).await;
    let written = metric(&server, "pulse_ws_frames_out_total").await;
    assert!(written > 1.0, "the writer wrote frames before it blocked");
    wait_for_metric(&server, "pulse_ws_writers_aborted_total", |n| n == 1.0).await;
    wait_for_metric(&server, "pulse_ws_connections", |n| n == 0.0).await;
    wait_for_metric(&server, "pulse_connections_open", |n| n == 1.0).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_foreign_host_gets_421_for_http_and_websockets() {
    let server = start(|c| c.public_host = vec!["pulse.example.com".into()]).await;
    let port = server.addr().port();
    let evil = format!("evil.example:{port}");

    for path in ["/healthz", "/api/snapshot", "/"] {
        let (status, head, body) = exchange(&server, &get(path, &evil)).await;
        assert_eq!(status, 421, "{path}: {head}");
        let body: Value = serde_json::from_str(&body).expect("JSON body");
        assert_eq!(body["error"]["code"], "misdirected_request");
    }
    // A DNS-rebound page is "same origin" with itself, which the Origin check alone lets through.
    let (status, head, _) = exchange(&server, &upgrade(&evil, &format!("http://{evil}"))).await;
    assert_eq!(status, 421, "{head}");

    // The names that are ours still work, WebSockets included.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "pulse.example.com".to_owned(),
        "pulse.example.com:443".to_owned(),
    ] {
        let (status, _, _) = exchange(&server, &get("/healthz", &host)).await;
        assert_eq!(status, 200, "{host}");
    }
    let local = format!("localhost:{port}");
    let (status, head, _) = exchange(&server, &upgrade(&local, &format!("http://{local}"))).await;
    assert_eq!(status, 101, "{head}");
    assert_eq!(metric(&server, "pulse_http_misdirected_total").await, 4.0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let server = start(|_| {}).await;
    let (head, _) = get_raw(&server, "/", "").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy:"))
        .unwrap_or_else(|| panic!("no CSP in {head}"));
    for directive in [
        "frame-ancestors 'self'",
        "'wasm-unsafe-eval'",
        "connect-src 'self' ws: wss:",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(head.contains("x-frame-options: sameorigin"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("referrer-policy: same-origin"), "{head}");
    let (head, _) = get_raw(&server, "/api/snapshot", "").await;
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    server.shutdown().await.expect("shutdown");
}
