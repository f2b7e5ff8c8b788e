//! `/ws`: the WebSocket endpoint speaking the protocol in `crate::protocol`.
//!
//! Each connection runs two tasks: this one reads client frames and moves hub
//! frames into the connection's [`Outbox`]; the writer drains the outbox into
//! the socket. Neither ever waits on another connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamMap;

use crate::analytics::sentiment::SentimentAnalyzer;
use crate::model::{Engagement, NewPost, Tick};
use crate::protocol::{
    ClientMessage, ErrorCode, ServerMessage, StreamPosition, Topic, MAX_ANALYZE_CHARS,
    MAX_CLIENT_FRAME_BYTES,
};

use super::hub::{Frame, Subscription};
use super::ingest::{now_ms, IngestError};
use super::outbox::{Outbox, OutboxLimits, Outgoing, PushOutcome};
use super::state::AppState;

/// Close code for a client that keeps sending bad frames.
const POLICY_VIOLATION: u16 = 1008;
/// Bad frames tolerated per connection before it is closed.
const MAX_PROTOCOL_ERRORS: u32 = 100;
/// Frames beyond this are refused by the WebSocket layer itself (close 1009);
/// between [`MAX_CLIENT_FRAME_BYTES`] and this the client gets an `error` reply.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    /// Ingest token for connections that publish (alternative to the Authorization header).
    token: Option<String>,
    /// Dashboard session id; connections with one count as active users.
    session: Option<String>,
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
) -> Response {
    if let Err(message) = check_origin(&headers, &state.config.allowed_origins) {
        let body = serde_json::json!({"error": {"code": "forbidden_origin", "message": message}});
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let can_publish = match state.config.ingest_token.as_deref() {
        None => true,
        Some(expected) => {
            let presented = bearer_token(&headers).or(params.token.as_deref());
            presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
        }
    };
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        // A small read buffer keeps idle connections cheap (clients send
        // little; a larger frame just takes more reads): 1 KiB instead of 4
        // took idle memory from 9.8 to 6.8 KiB per connection (BENCHMARKS.md).
        // Frames of one outbox batch gather in the write buffer and go out in
        // one syscall at the flush; the buffer only grows when data is queued.
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| {
            // Bounded so a client cannot make the presence map hold huge keys.
            let session = params.session.filter(|s| !s.is_empty() && s.len() <= 64);
            let presence = state.presence.join(session);
            async move {
                Connection::new(state, can_publish).run(socket).await;
                drop(presence);
            }
        })
}

/// Browsers always send `Origin`; it must name this server or an allowed
/// origin (cross-site WebSocket hijacking). Clients without `Origin` are
/// programs, not browsers, and are let through.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| "Origin header is not valid text".to_owned())?;
    if allowed.iter().any(|a| a == origin || a == "*") {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or_default();
    if !host.is_empty() && origin_host == host {
        Ok(())
    } else {
        Err(format!(
            "origin '{origin}' is not allowed to open a WebSocket here"
        ))
    }
}

pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct TopicCursor {
    topic: Topic,
    epoch: Arc<str>,
    offset: u64,
    /// Live events up to this offset are already with the client.
    skip_through: u64,
}

struct Connection {
    state: AppState,
    can_publish: bool,
    outbox: Arc<Outbox>,
    subscriptions: StreamMap<Arc<str>, BroadcastStream<Arc<Frame>>>,
    cursors: HashMap<Arc<str>, TopicCursor>,
    protocol_errors: u32,
    /// `id` of the request being handled, echoed in its error replies.
    request_id: Option<serde_json::Value>,
    /// Publishes waiting for disk, in the order they arrived.
    in_flight: futures::stream::FuturesOrdered<
        std::pin::Pin<Box<dyn std::future::Future<Output = PublishDone> + Send>>,
    >,
}

impl Connection {
    fn new(state: AppState, can_publish: bool) -> Self {
        let limits = OutboxLimits {
            max_frames: state.config.max_queued_frames,
            max_bytes: state.config.max_queued_bytes,
        };
        Self {
            state,
            can_publish,
            outbox: Arc::new(Outbox::new(limits)),
            subscriptions: StreamMap::new(),
            cursors: HashMap::new(),
            protocol_errors: 0,
            request_id: None,
            in_flight: futures::stream::FuturesOrdered::new(),
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let metrics = Arc::clone(&self.state.metrics);
        metrics
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics
            .connections_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sink, mut stream) = socket.split();
        let writer = tokio::spawn(write_loop(
            sink,
            Arc::clone(&self.outbox),
            Arc::clone(&metrics),
        ));
        let heartbeat_every = self.state.config.heartbeat();
        let mut heartbeat = tokio::time::interval(heartbeat_every);
        heartbeat.reset();
        let mut last_heard = Instant::now();
        let mut shutdown = self.state.shutdown.clone();
        let mut drop_hook = self.state.drop_connections.subscribe();

        loop {
            tokio::select! {
                incoming = stream.next(), if self.in_flight.len() < MAX_PUBLISHES_IN_FLIGHT => {
                    let Some(Ok(message)) = incoming else {
                        if let Some(Err(error)) = incoming {
                            tracing::debug!(%error, "websocket read failed");
                            self.outbox.close(1009, "frame too large or malformed");
                        }
                        break;
                    };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => self.handle_text(text.as_str()),
                        Message::Binary(_) => self.reply_error(
                            ErrorCode::BinaryNotSupported,
                            "binary frames are not supported; send JSON text frames".into(),
                        ),
                        Message::Close(_) => break,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.finish_publish(done);
                }
                Some((topic, item)) = self.subscriptions.next(), if !self.subscriptions.is_empty() => {
                    self.deliver(topic, item);
                }
                Ok(()) = drop_hook.changed() => {
                    self.outbox.close(1012, "connections dropped by the test hook");
                    break;
                }
                () = stopped(&mut shutdown) => {
                    self.outbox.close(1001, "server shutting down");
                    break;
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > heartbeat_every * 2 {
                        metrics.dead_peer_disconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.outbox.close(1001, "heartbeat timeout");
                        break;
                    }
                    self.outbox.push_own(Outgoing::Ping);
                }
            }
            if self.outbox.is_closing() {
                break;
            }
        }
        // Let the writer flush what is queued (and the close frame), but not
        // forever: one still blocked after the grace is aborted, not detached
        // (a detached writer would keep the socket open).
        self.outbox.close(1000, "bye");
        let mut writer = writer;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
            let _ = writer.await;
            metrics
                .edge
                .ws_writers_aborted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        metrics
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn reply(&self, message: &ServerMessage) {
        match serde_json::to_string(message) {
            Ok(text) => self.outbox.push_own(Outgoing::Own(Utf8Bytes::from(text))),
            Err(error) => tracing::error!(%error, "could not encode a reply"),
        }
    }

    fn reply_error(&mut self, code: ErrorCode, message: String) {
        self.state.metrics.protocol_error(code);
        let id = self.request_id.clone();
        self.reply(&ServerMessage::Error { code, message, id });
        self.protocol_errors += 1;
        if self.protocol_errors >= MAX_PROTOCOL_ERRORS {
            self.outbox
                .close(POLICY_VIOLATION, "too many invalid frames");
        }
    }

    fn handle_text(&mut self, text: &str) {
        if text.len() > MAX_CLIENT_FRAME_BYTES {
            return self.reply_error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frames may be at most {MAX_CLIENT_FRAME_BYTES} bytes, got {}",
                    text.len()
                ),
            );
        }
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                return self.reply_error(
                    ErrorCode::InvalidJson,
                    format!("frame is not valid JSON: {error}"),
                )
            }
        };
        let message: ClientMessage = match serde_json::from_value(value) {
            Ok(message) => message,
            Err(error) => {
                return self.reply_error(
                    ErrorCode::InvalidMessage,
                    format!(
                    "not a valid message ({error}); ops are subscribe, unsubscribe, publish, ping, analyze"
                ),
                )
            }
        };
        match message {
            ClientMessage::Subscribe { topics, since } => self.subscribe(topics, since),
            ClientMessage::Unsubscribe { topics } => self.unsubscribe(topics),
            ClientMessage::Publish { topic, data, id } => {
                self.request_id = id;
                self.publish(&topic, data);
                self.request_id = None;
            }
            ClientMessage::Ping { id } => self.reply(&ServerMessage::Pong { id }),
            ClientMessage::Analyze { id, text } => {
                if text.chars().count() > MAX_ANALYZE_CHARS {
                    return self.reply_error(
                        ErrorCode::InvalidData,
                        format!("text must be at most {MAX_ANALYZE_CHARS} characters"),
                    );
                }
                let sentiment = SentimentAnalyzer::global().analyze(&text);
                self.reply(&ServerMessage::Analysis { id, sentiment });
            }
        }
    }

    fn parse_topics(&mut self, names: Vec<String>) -> Vec<Topic> {
        let mut topics = Vec::with_capacity(names.len());
        for name in names {
            match name.parse::<Topic>() {
                Ok(topic) => topics.push(topic),
                Err(error) => self.reply_error(ErrorCode::UnknownTopic, error.to_string()),
            }
        }
        topics
    }

    fn subscribe(&mut self, names: Vec<String>, since: HashMap<String, StreamPosition>) {
        for topic in self.parse_topics(names) {
            let name = topic.to_string();
            let subscription = self.state.hub.subscribe(&topic, since.get(&name));
            self.attach(topic, subscription);
        }
    }

    /// Sends `subscribed` and the backlog, then starts the live feed.
    fn attach(&mut self, topic: Topic, subscription: Subscription) {
        self.reply(&ServerMessage::Subscribed {
            topic: subscription.topic.to_string(),
            epoch: subscription.epoch.to_string(),
            offset: subscription.offset,
            recovered: subscription.recovered,
        });
        let max_batch = self.state.hub.config().max_batch.max(1);
        for chunk in subscription.backlog.chunks(max_batch) {
            self.outbox
                .push_own(Outgoing::Own(Utf8Bytes::from(Frame::encode(chunk))));
        }
        let name = Arc::clone(&subscription.topic);
        self.cursors.insert(
            Arc::clone(&name),
            TopicCursor {
                topic,
                epoch: subscription.epoch,
                // What the client has once the backlog is out (a replayed
                // state lies after the announced offset).
                offset: subscription
                    .backlog
                    .last()
                    .map_or(subscription.offset, |e| e.offset),
                skip_through: subscription.skip_through,
            },
        );
        self.subscriptions
            .insert(name, BroadcastStream::new(subscription.receiver));
    }

    fn unsubscribe(&mut self, names: Vec<String>) {
        for topic in self.parse_topics(names) {
            let name = topic.to_string();
            self.subscriptions.remove(name.as_str());
            self.cursors.remove(name.as_str());
            self.reply(&ServerMessage::Unsubscribed { topic: name });
        }
    }

    fn deliver(&mut self, topic: Arc<str>, item: Result<Arc<Frame>, BroadcastStreamRecvError>) {
        match item {
            Ok(frame) => {
                if let Some(cursor) = self.cursors.get_mut(&topic) {
                    if cursor.skip_through > 0 {
                        let skip = std::mem::take(&mut cursor.skip_through);
                        if frame.last_offset() <= skip {
                            cursor.skip_through = skip;
                            return;
                        }
                        if frame.events.first().is_some_and(|e| e.offset <= skip) {
                            let rest: Vec<_> = frame
                                .events
                                .iter()
                                .filter(|e| e.offset > skip)
                                .cloned()
                                .collect();
                            cursor.offset = frame.last_offset();
                            self.outbox
                                .push_own(Outgoing::Own(Utf8Bytes::from(Frame::encode(&rest))));
                            return;
                        }
                    }
                    cursor.offset = frame.last_offset();
                }
                let (skipped, closing) = match self.outbox.push_frame(frame) {
                    PushOutcome::Queued | PushOutcome::Closed => (0, false),
                    PushOutcome::Conflated { skipped } => (skipped, false),
                    PushOutcome::Closing { skipped } => (skipped, true),
                };
                let metrics = &self.state.metrics;
                if skipped > 0 {
                    metrics
                        .conflations
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if closing {
                    metrics
                        .slow_consumer_disconnects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            // This task fell behind the broadcast channel (never fatal): pick
            // the topic up again from the hub's history where we left off.
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                tracing::debug!(%topic, missed, "subscriber lagged; resuming from history");
                let Some(cursor) = self.cursors.remove(&topic) else {
                    return;
                };
                self.subscriptions.remove(&topic);
                let position = StreamPosition {
                    epoch: cursor.epoch.to_string(),
                    offset: cursor.offset,
                };
                let subscription = self.state.hub.subscribe(&cursor.topic, Some(&position));
                self.attach(cursor.topic, subscription);
            }
        }
    }

    /// Applies the data at once and acknowledges it once durable. Publishes
    /// are pipelined: up to [`MAX_PUBLISHES_IN_FLIGHT`] wait for disk at a
    /// time (they share group commits), and acknowledgements go out in order.
    fn publish(&mut self, topic: &str, data: serde_json::Value) {
        if !self.can_publish {
            return self.reply_error(
                ErrorCode::Unauthorized,
                "publishing needs the ingest token (Authorization: Bearer or ?token=)".into(),
            );
        }
        let topic = match topic.parse::<Topic>() {
            Ok(topic) => topic,
            Err(error) => return self.reply_error(ErrorCode::UnknownTopic, error.to_string()),
        };
        let now = now_ms();
        let ingest = &self.state.ingest;
        fn parse<T: serde::de::DeserializeOwned>(
            data: serde_json::Value,
            what: &str,
        ) -> Result<T, String> {
            serde_json::from_value(data).map_err(|error| format!("not {what}: {error}"))
        }
        // Posts and engagement fan out to several topics; the ack names the
        // offset the item's own topic had reached once it was applied.
        let position = |topic: &Topic| ingest.hub().position(topic).offset;
        let submitted: Result<Result<PendingPublish, IngestError>, String> = match &topic {
            Topic::Ticks | Topic::SymbolTicks(_) => parse::<Tick>(data, "a tick").map(|tick| {
                ingest.submit_ticks(vec![tick], now).map(|pending| {
                    let durable = pending.durable();
                    Box::pin(async move {
                        durable.await.map(|p| p.first().map_or(0, |p| p.offset))
                    }) as PendingPublish
                })
            }),
            Topic::Posts => parse::<NewPost>(data, "a post").map(|post| {
                ingest.submit_posts(vec![post], now).map(|pending| {
                    let offset = position(&Topic::Posts);
                    let durable = pending.durable();
                    Box::pin(async move { durable.await.map(|_| offset) }) as PendingPublish
                })
            }),
            Topic::Engagement => parse::<Engagement>(data, "an engagement event").map(|event| {
                ingest.submit_engagements(vec![event], now).map(|pending| {
                    let offset = position(&Topic::Engagement);
                    let durable = pending.durable();
                    Box::pin(async move { durable.await.map(|_| offset) }) as PendingPublish
                })
            }),
            other => {
                return self.reply_error(
                    ErrorCode::ReadOnlyTopic,
                    format!("'{other}' is computed by the server and cannot be published to; publish to ticks, posts or engagement"),
                )
            }
        };
        match submitted {
            Ok(Ok(durable)) => {
                let id = self.request_id.clone();
                let ack_topic = match topic {
                    Topic::SymbolTicks(_) => Topic::Ticks.to_string(),
                    other => other.to_string(),
                };
                self.in_flight.push_back(Box::pin(async move {
                    PublishDone {
                        id,
                        topic: ack_topic,
                        result: durable.await,
                    }
                }));
            }
            Err(message) => self.reply_error(ErrorCode::InvalidData, message),
            Ok(Err(error)) => self.reply_ingest_error(error),
        }
    }

    /// Acknowledges a publish once durable (or reports why it is not).
    fn finish_publish(&mut self, done: PublishDone) {
        self.request_id = done.id;
        match done.result {
            Ok(offset) => {
                if let Some(id) = self.request_id.clone() {
                    self.reply(&ServerMessage::Published {
                        id,
                        topic: done.topic,
                        offset,
                    });
                }
            }
            Err(error) => self.reply_ingest_error(error),
        }
        self.request_id = None;
    }

    fn reply_ingest_error(&mut self, error: IngestError) {
        match error {
            IngestError::Invalid { error, .. } => self.reply_error(
                ErrorCode::InvalidData,
                format!("invalid {}: {}", error.field, error.message),
            ),
            error @ IngestError::UnknownPost { .. } => {
                self.reply_error(ErrorCode::InvalidData, error.to_string())
            }
            error @ IngestError::Storage(_) => {
                self.reply_error(ErrorCode::Unavailable, error.to_string())
            }
            error => self.reply_error(ErrorCode::Internal, error.to_string()),
        }
    }
}

/// Publishes of one connection waiting for disk at most; beyond that the
/// connection's frames are not read until some complete (backpressure).
const MAX_PUBLISHES_IN_FLIGHT: usize = 4_096;

type PendingPublish =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, IngestError>> + Send>>;

/// A publish that finished waiting for disk.
struct PublishDone {
    id: Option<serde_json::Value>,
    topic: String,
    result: Result<u64, IngestError>,
}

/// Resolves once the server is shutting down (the guard the watch hands
/// out is dropped here, so the connection future stays `Send`).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    metrics: Arc<super::metrics::Metrics>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        let (items, close) = outbox.next_batch().await;
        let count = items.len() as u64;
        let mut bytes = 0u64;
        // The oldest producer timestamp in this write, for the latency histogram.
        let mut oldest_source_ts: Option<i64> = None;
        for item in items {
            let message = match item {
                Outgoing::Shared(frame) => {
                    frame
                        .stats
                        .delivered
                        .fetch_add(frame.events.len() as u64, Relaxed);
                    if let Some(ts) = frame.events.first().and_then(|e| e.source_ts) {
                        oldest_source_ts = Some(oldest_source_ts.map_or(ts, |o: i64| o.min(ts)));
                    }
                    Message::Text(frame.text.clone())
                }
                Outgoing::Own(text) => Message::Text(text),
                Outgoing::Ping => Message::Ping(Default::default()),
            };
            if let Message::Text(text) = &message {
                bytes += text.len() as u64;
            }
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
        metrics.frames_out.fetch_add(count, Relaxed);
        metrics.bytes_out.fetch_add(bytes, Relaxed);
        if let Some(ts) = oldest_source_ts {
            // One observation per write keeps the histogram cheap at high fan-out.
            metrics.observe_delivery(now_ms().saturating_sub(ts).max(0) as u64);
        }
        if let Some(close) = close {
            let frame = CloseFrame {
                code: close.code,
                reason: Utf8Bytes::from(close.reason),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn same_origin_and_listed_origins_are_allowed() {
        assert!(check_origin(&headers(None, "127.0.0.1:3000"), &[]).is_ok());
        assert!(check_origin(
            &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
            &[]
        )
        .is_ok());
        assert!(check_origin(
            &headers(Some("https://evil.example"), "127.0.0.1:3000"),
            &[]
        )
        .is_err());
        let allowed = vec!["https://dash.example".to_owned()];
        assert!(check_origin(
            &headers(Some("https://dash.example"), "127.0.0.1:3000"),
            &allowed
        )
        .is_ok());
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
