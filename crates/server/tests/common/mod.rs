//! Helpers for integration tests: a real server on a random loopback port and
//! a real WebSocket client.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pulse_server::config::ServerConfig;
use pulse_server::RunningServer;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn start(configure: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig::for_tests();
    configure(&mut config);
    pulse_server::start(config).await.expect("server starts")
}

/// A server on the database file `db` (synchronous=NORMAL, no ingest rate
/// limit), then `configure`d.
pub async fn start_on(
    db: &std::path::Path,
    configure: impl FnOnce(&mut ServerConfig),
) -> RunningServer {
    let db = db.to_owned();
    start(move |config| {
        config.in_memory = false;
        config.db = db;
        config.sync = "normal".into();
        config.ingest_rate = 0.0;
        configure(config);
    })
    .await
}

pub async fn connect(server: &RunningServer) -> Client {
    let url = format!("ws://{}/ws", server.addr());
    let (client, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    client
}

pub async fn send(client: &mut Client, frame: &str) {
    client
        .send(Message::Text(frame.into()))
        .await
        .expect("frame sent");
}

/// Next JSON text frame; panics after `timeout`.
pub async fn recv(client: &mut Client) -> Value {
    recv_within(client, Duration::from_secs(5)).await
}

pub async fn recv_within(client: &mut Client, timeout: Duration) -> Value {
    loop {
        let message = tokio::time::timeout(timeout, client.next())
            .await
            .expect("a frame arrives in time")
            .expect("connection open")
            .expect("valid websocket message");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("server sends JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Frames until one satisfies `pred`, returning it.
pub async fn recv_until(client: &mut Client, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = recv(client).await;
        if pred(&frame) {
            return frame;
        }
    }
}

/// The events carried by an `event` or `batch` frame.
pub fn events(frame: &Value) -> Vec<Value> {
    match frame["op"].as_str() {
        Some("event") => vec![frame.clone()],
        Some("batch") => frame["events"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A minimal HTTP/1.1 request over a fresh connection; returns the status
/// and the body parsed as JSON (or as a JSON string if it is not JSON).
pub async fn http(
    server: &RunningServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    http_to(server.addr(), method, path, headers, body).await
}

/// [`http`] against any address (e.g. a server running as a child process).
pub async fn http_to(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let (status, _, json) = http_with_head(addr, method, path, headers, body).await;
    (status, json)
}

/// [`http`] that also returns the response head, lower-cased (for
/// `set-cookie`, `retry-after` and the like).
pub async fn http_with_head(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Value) {
    let lines: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let (head, body) = exchange(addr, method, path, &lines, body).await;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = String::from_utf8_lossy(&body);
    let json = serde_json::from_str(&body).unwrap_or_else(|_| Value::String(body.into_owned()));
    (status, head, json)
}

/// The one raw HTTP/1.1 client of the tests: sends `method path` with
/// `header_lines` (each `Name: value\r\n`) and `body` over a fresh
/// connection, then reads until the server closes it (at most 10 s). Returns
/// the response head, lower-cased, and the body bytes as sent (chunked or
/// compressed bodies stay so).
pub async fn exchange(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    header_lines: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{header_lines}\r\n",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    // The server may answer (413) before reading a large body; ignore write errors then.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    (head, body)
}

/// Calls the server function `name` with a form-encoded body, as a plain
/// HTTP client would.
pub async fn rpc(server: &RunningServer, name: &str, form: impl AsRef<[u8]>) -> (u16, Value) {
    http(
        server,
        "POST",
        &format!("/rpc/{name}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_ref(),
    )
    .await
}

/// POSTs `body` as JSON.
pub async fn post_json(server: &RunningServer, path: &str, body: &Value) -> (u16, Value) {
    http(server, "POST", path, &[JSON], body.to_string().as_bytes()).await
}

pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A client whose socket receive buffer is tiny, so the server sees it as
/// slow as soon as it stops reading.
pub async fn connect_with_small_buffer(server: &RunningServer) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4 * 1024).expect("buffer size");
    let stream = socket.connect(server.addr()).await.expect("connects");
    let url = format!("ws://{}/ws", server.addr());
    let (client, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("websocket handshake");
    client
}

/// The value of an unlabelled metric on the server's `/metrics` page.
pub async fn metric(server: &RunningServer, name: &str) -> f64 {
    let (_, page) = http(server, "GET", "/metrics", &[], b"").await;
    let page = page.as_str().unwrap_or_default().to_owned();
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{page}"))
}

/// Raw GET with `extra` header lines: the response head (lower-cased) and
/// the body bytes.
pub async fn get_raw(server: &RunningServer, path: &str, extra: &str) -> (String, Vec<u8>) {
    let (head, body) = exchange(server.addr(), "GET", path, extra, b"").await;
    assert!(head.starts_with("http/1.1 "), "a response head: {head}");
    (head, body)
}

/// Undoes HTTP/1.1 chunked transfer encoding.
pub fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = usize::from_str_radix(
            std::str::from_utf8(&body[..line_end])
                .expect("ascii")
                .trim(),
            16,
        )
        .expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 2 + size + 2..];
    }
}

/// `symbol`'s summary in `/api/snapshot` (the test fails if it is not tracked).
pub async fn snapshot_symbol(server: &RunningServer, symbol: &str) -> Value {
    let (status, snapshot) = http(server, "GET", "/api/snapshot", &[], b"").await;
    assert_eq!(status, 200, "{snapshot}");
    snapshot["symbols"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["symbol"] == symbol))
        .unwrap_or_else(|| panic!("{symbol} is not in the snapshot: {snapshot}"))
        .clone()
}

/// A fresh, empty directory for one test: `pulse-<name>-<pid>-<ms>` in the
/// system's temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pulse-{name}-{}-{}",
        std::process::id(),
        pulse_server::clock::now_ms()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
