//! Helpers for integration tests: a real server on a random loopback port and
//! a real WebSocket client.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pulse::server::config::ServerConfig;
use pulse::server::RunningServer;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn start(configure: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut config = ServerConfig::for_tests();
    configure(&mut config);
    pulse::server::start(config).await.expect("server starts")
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
