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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    // The server may answer (413) before reading a large body; ignore write errors then.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let json = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (status, head.to_lowercase(), json)
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

/// Raw GET: the response head (lower-cased) and the body bytes.
pub async fn get_raw(server: &RunningServer, path: &str, extra: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connects");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\r\n",
        server.addr()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("response read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    (head, response[split + 4..].to_vec())
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
