//! `/ws`: the WebSocket endpoint speaking the protocol in `pulse_core::protocol`.
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
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamMap;

use pulse_core::analytics::sentiment::SentimentAnalyzer;
use pulse_core::model::{Engagement, NewPost, Tick};
use pulse_core::protocol::{
    ClientMessage, CloseCode, ErrorCode, ServerMessage, StreamPosition, Topic, MAX_ANALYZE_CHARS,
    MAX_CLIENT_FRAME_BYTES,
};

use super::api::ApiError;
use super::auth::{bearer_token, may_ingest};
use super::broker::Subscription;
use super::clock::now_ms;
use super::deadline::sleep_until_some;
use super::fanout::Frame;
use super::ingest::IngestError;
use super::outbox::{Outbox, OutboxLimits, Outgoing, PushOutcome};
use super::state::AppState;

/// Malformed frames tolerated per connection before it is closed. Rejected
/// records (a publish whose data fails validation) never count: a producer
/// replaying a file with many bad lines must hear about every one.
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
    connect_info: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Response {
    let client_ip = connect_info.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |info| {
        let axum::Extension(axum::extract::ConnectInfo(addr)) = info;
        addr.ip()
    });
    if let Err(message) = check_origin(&headers, &state.config.allowed_origins) {
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message).into_response();
    }
    let presented = bearer_token(&headers).or(params.token.as_deref());
    let can_publish = may_ingest(state.config.ingest_token.as_deref(), presented);
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
            // An IPv6 /64 is one client, as for the rate limits and connection caps.
            let presence = super::presence::join(
                &state.presence,
                session,
                super::rate_limit::client_key(client_ip),
            );
            async move {
                Connection::new(state, can_publish).run(socket).await;
                drop(presence);
            }
        })
}

/// Browsers always send `Origin` on an upgrade; it must name this server or
/// an allowed origin (cross-site WebSocket hijacking). The same rule as every
/// state-changing request ([`super::csrf::check`]); clients without `Origin`
/// are programs, not browsers, and are let through.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    super::csrf::check(headers, host, allowed).map_err(|refused| refused.to_string())
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
    /// Subscriptions whose backlog did not fit the outbox yet; they go on
    /// from their cursor once the client has read what is queued.
    resuming: std::collections::VecDeque<TopicCursor>,
    /// Pending topics (see `pending_topics`) this connection counts in.
    pending: Vec<Topic>,
    /// Publish and analyze requests of this connection (token bucket).
    throttle: Throttle,
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
            can_publish,
            outbox: Arc::new(Outbox::new(limits)),
            subscriptions: StreamMap::new(),
            cursors: HashMap::new(),
            resuming: std::collections::VecDeque::new(),
            pending: Vec::new(),
            throttle: Throttle::new(state.config.publish_rate, state.config.analyze_rate),
            protocol_errors: 0,
            request_id: None,
            in_flight: futures::stream::FuturesOrdered::new(),
            state,
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

        let outbox = Arc::clone(&self.outbox);
        loop {
            let paused_until = self.throttle.paused_until();
            tokio::select! {
                incoming = stream.next(), if self.in_flight.len() < MAX_PUBLISHES_IN_FLIGHT && paused_until.is_none() => {
                    let Some(Ok(message)) = incoming else {
                        if let Some(Err(error)) = incoming {
                            tracing::debug!(%error, "websocket read failed");
                            if let Some((code, reason)) = close_for_read_error(error) {
                                self.outbox.close(code, reason);
                            }
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
                () = outbox.drained(), if !self.resuming.is_empty() => {
                    self.resume_backlogs();
                }
                () = sleep_until_some(paused_until) => {
                    self.throttle.resume();
                }
                Ok(()) = drop_hook.changed() => {
                    self.outbox.close(CloseCode::Restart, "connections dropped by the test hook");
                    break;
                }
                () = stopped(&mut shutdown) => {
                    // Every publish read so far is answered before the close.
                    self.finish_in_flight().await;
                    self.outbox.close(CloseCode::GoingAway, "server shutting down");
                    break;
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > heartbeat_every * 2 {
                        metrics.dead_peer_disconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.outbox.close(CloseCode::GoingAway, "heartbeat timeout");
                        break;
                    }
                    self.outbox.push_own(Outgoing::Ping);
                }
            }
            if self.outbox.is_closing() {
                break;
            }
        }
        self.subscriptions = StreamMap::new();
        for topic in std::mem::take(&mut self.pending) {
            self.leave_pending(topic);
        }
        // Let the writer flush what is queued (and the close frame), but not
        // forever: one still blocked after the grace is aborted, not detached
        // (a detached writer would keep the socket open).
        self.outbox.close(CloseCode::Normal, "bye");
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
            Ok(text) => self.queue_own(text),
            Err(error) => tracing::error!(%error, "could not encode a reply"),
        }
    }

    /// Queues a frame of this connection's own, within its budget.
    fn queue_own(&self, text: String) {
        let outcome = self.outbox.push_own(Outgoing::Own(Utf8Bytes::from(text)));
        self.count_outcome(&outcome);
    }

    fn count_outcome(&self, outcome: &PushOutcome) {
        let metrics = &self.state.metrics;
        match outcome {
            PushOutcome::Conflated { .. } => {
                metrics
                    .conflations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            PushOutcome::Closing { .. } => {
                metrics
                    .slow_consumer_disconnects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            PushOutcome::Queued | PushOutcome::Closed => {}
        }
    }

    fn reply_error(&mut self, code: ErrorCode, message: String) {
        self.state.metrics.protocol_error(code);
        let id = self.request_id.clone();
        self.reply(&ServerMessage::Error { code, message, id });
        if code.is_malformed_frame() {
            self.protocol_errors += 1;
            if self.protocol_errors >= MAX_PROTOCOL_ERRORS {
                self.outbox
                    .close(CloseCode::PolicyViolation, "too many malformed frames");
            }
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
                self.throttle.take_publish();
                self.request_id = id;
                self.publish(&topic, data);
                self.request_id = None;
            }
            ClientMessage::Ping { id } => self.reply(&ServerMessage::Pong { id }),
            ClientMessage::Analyze { id, text } => {
                self.throttle.take_analyze();
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

    /// Parses topic names; a name listed twice counts once. Names that are
    /// not topics are answered with one error for the whole frame, so a
    /// frame listing thousands of them costs one reply, not thousands.
    fn parse_topics(&mut self, names: Vec<String>) -> Vec<Topic> {
        let mut topics: Vec<Topic> = Vec::with_capacity(names.len().min(64));
        let mut unknown = Vec::new();
        for name in names {
            match name.parse::<Topic>() {
                Ok(topic) if !topics.contains(&topic) => topics.push(topic),
                Ok(_) => {}
                Err(_) => unknown.push(name),
            }
        }
        if !unknown.is_empty() {
            self.reply_error(
                ErrorCode::UnknownTopic,
                format!(
                    "{}; topics are ticks, ticks:<SYMBOL>, candles:<SYMBOL>, posts, sentiment, engagement, presence",
                    name_some("unknown topic", &unknown)
                ),
            );
        }
        topics
    }

    fn subscribe(&mut self, names: Vec<String>, since: HashMap<String, StreamPosition>) {
        let max = self.state.config.max_subscriptions;
        let mut untracked = Vec::new();
        let mut over_limit = Vec::new();
        for topic in self.parse_topics(names) {
            let name = topic.to_string();
            let already = self.cursors.contains_key(name.as_str())
                || self.resuming.iter().any(|c| c.topic == topic);
            if !already && self.cursors.len() + self.resuming.len() >= max {
                over_limit.push(name);
                continue;
            }
            // A per-symbol topic of a symbol without data is pending: it
            // lives while subscribed, and only so many exist at once.
            let untracked_symbol = topic
                .symbol()
                .is_some_and(|symbol| !self.state.ingest.tracks(symbol));
            if untracked_symbol && !self.pending.contains(&topic) {
                if !self.state.pending_topics.join(&topic) {
                    untracked.push(name);
                    continue;
                }
                self.pending.push(topic.clone());
            }
            self.resuming.retain(|c| c.topic != topic);
            let subscription = self.state.broker.subscribe(&topic, since.get(&name));
            self.attach(topic, subscription, true);
        }
        if !untracked.is_empty() {
            self.reply_error(
                ErrorCode::UnknownTopic,
                format!(
                    "{}: no data for that symbol yet, and the server already holds its limit of {} topics waiting for data",
                    name_some("unknown topic", &untracked),
                    self.state.pending_topics.max()
                ),
            );
        }
        if !over_limit.is_empty() {
            self.reply_error(
                ErrorCode::TooManySubscriptions,
                format!(
                    "{} refused: a connection may hold at most {max} subscriptions",
                    name_some("topic", &over_limit)
                ),
            );
        }
    }

    /// Sends `subscribed` (when `announce`, or when the history could not
    /// be recovered) and as much of the backlog as the outbox has room for,
    /// then starts the live feed; a backlog that does not fit continues
    /// from its cursor once the client has read ([`Connection::resume_backlogs`]).
    fn attach(&mut self, topic: Topic, subscription: Subscription, announce: bool) {
        if announce || !subscription.recovered {
            self.reply(&ServerMessage::Subscribed {
                topic: subscription.topic.to_string(),
                epoch: subscription.epoch.to_string(),
                offset: subscription.offset,
                recovered: subscription.recovered,
            });
        }
        let name = Arc::clone(&subscription.topic);
        self.subscriptions.remove(&name);
        self.cursors.remove(&name);
        let max_batch = self.state.broker.config().max_batch.max(1);
        // What the client has so far: everything before the backlog, then
        // each chunk as it is queued (a replayed state lies after the
        // announced offset).
        let mut offset = subscription
            .backlog
            .first()
            .map_or(subscription.offset, |e| e.offset.saturating_sub(1));
        for chunk in subscription.backlog.chunks(max_batch) {
            let text = Frame::encode(chunk);
            if !self.outbox.has_room_for_backlog(text.len()) {
                self.resuming.push_back(TopicCursor {
                    topic,
                    epoch: subscription.epoch,
                    offset,
                    skip_through: subscription.skip_through,
                });
                return;
            }
            self.queue_own(text);
            offset = chunk.last().map_or(offset, |e| e.offset);
        }
        self.cursors.insert(
            Arc::clone(&name),
            TopicCursor {
                topic,
                epoch: subscription.epoch,
                offset,
                skip_through: subscription.skip_through,
            },
        );
        self.subscriptions
            .insert(name, BroadcastStream::new(subscription.receiver));
    }

    /// Gives up a pending topic; the last subscriber of a topic whose symbol
    /// still has no data removes it.
    fn leave_pending(&self, topic: Topic) {
        if self.state.pending_topics.leave(&topic)
            && topic
                .symbol()
                .is_some_and(|symbol| !self.state.ingest.tracks(symbol))
        {
            self.state.broker.remove_if_unused(&topic);
        }
    }

    /// Continues backlogs that waited for the client to read.
    fn resume_backlogs(&mut self) {
        let waiting = std::mem::take(&mut self.resuming);
        for cursor in waiting {
            let position = StreamPosition {
                epoch: cursor.epoch.to_string(),
                offset: cursor.offset,
            };
            let subscription = self.state.broker.subscribe(&cursor.topic, Some(&position));
            self.attach(cursor.topic, subscription, false);
        }
    }

    fn unsubscribe(&mut self, names: Vec<String>) {
        for topic in self.parse_topics(names) {
            let name = topic.to_string();
            self.subscriptions.remove(name.as_str());
            self.cursors.remove(name.as_str());
            self.resuming.retain(|c| c.topic != topic);
            if let Some(index) = self.pending.iter().position(|t| *t == topic) {
                let topic = self.pending.swap_remove(index);
                self.leave_pending(topic);
            }
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
                            let text = Frame::encode(&rest);
                            self.queue_own(text);
                            return;
                        }
                    }
                    cursor.offset = frame.last_offset();
                }
                let outcome = self.outbox.push_frame(frame);
                self.count_outcome(&outcome);
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
                let subscription = self.state.broker.subscribe(&cursor.topic, Some(&position));
                self.attach(cursor.topic, subscription, true);
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
        let position = |topic: &Topic| ingest.broker().position(topic).offset;
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

    /// Waits (bounded) for every publish in flight and answers each.
    async fn finish_in_flight(&mut self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.next()).await {
                Ok(Some(done)) => self.finish_publish(done),
                Ok(None) | Err(_) => break,
            }
        }
    }

    fn reply_ingest_error(&mut self, error: IngestError) {
        let code = super::errors::ws_code(error.kind());
        let message = match error {
            IngestError::Invalid { error, .. } => {
                format!("invalid {}: {}", error.field, error.message)
            }
            error => error.to_string(),
        };
        self.reply_error(code, message);
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

/// "unknown topic 'a'" or "3 unknown topics: 'a', 'b', 'c'", naming at most
/// ten, so an error reply stays small whatever the request listed.
fn name_some(what: &str, names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut listed: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{}'", n.chars().take(40).collect::<String>()))
        .collect();
    if names.len() > SHOWN {
        listed.push(format!("and {} more", names.len() - SHOWN));
    }
    match names.len() {
        1 => format!("{what} {}", listed.join(", ")),
        n => format!("{n} {what}s: {}", listed.join(", ")),
    }
}

/// The close a read error deserves (RFC 6455 §7.4.1): 1007 for text that is
/// not UTF-8, 1009 for a frame over the size limit, 1002 for other protocol
/// violations; `None` when the connection is simply gone.
fn close_for_read_error(error: axum::Error) -> Option<(CloseCode, &'static str)> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match *error.into_inner().downcast::<WsError>().ok()? {
        WsError::Utf8(_) => Some((CloseCode::InvalidData, "text frame is not valid UTF-8")),
        WsError::Capacity(_) => Some((CloseCode::TooBig, "frame too large")),
        WsError::Protocol(_) => Some((CloseCode::ProtocolError, "WebSocket protocol violation")),
        _ => None,
    }
}

/// Token buckets for the requests of one connection that cost the server
/// work: `publish` (records per second) and `analyze`. Over the rate the
/// connection is simply not read until a token is due, so a fast producer
/// is slowed down (TCP backpressure) rather than refused: nothing it sends
/// is lost.
struct Throttle {
    publish: Bucket,
    analyze: Bucket,
    paused_until: Option<tokio::time::Instant>,
}

struct Bucket {
    per_second: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    fn new(per_second: f64) -> Self {
        Self {
            per_second,
            tokens: Self::burst(per_second),
            at: tokio::time::Instant::now(),
        }
    }

    fn burst(per_second: f64) -> f64 {
        (per_second * 2.0).max(1.0)
    }

    /// Takes a token (going into debt if none is left); returns how long
    /// until the debt is paid off, if there is one.
    fn take(&mut self, now: tokio::time::Instant) -> Option<std::time::Duration> {
        if self.per_second <= 0.0 {
            return None;
        }
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(Self::burst(self.per_second)) - 1.0;
        self.at = now;
        (self.tokens < 0.0)
            .then(|| std::time::Duration::from_secs_f64(-self.tokens / self.per_second))
    }
}

impl Throttle {
    /// Rates are per second; 0 means unlimited.
    fn new(publish_rate: f64, analyze_rate: f64) -> Self {
        Self {
            publish: Bucket::new(publish_rate),
            analyze: Bucket::new(analyze_rate),
            paused_until: None,
        }
    }

    fn take_publish(&mut self) {
        let now = tokio::time::Instant::now();
        let wait = self.publish.take(now);
        self.pause(now, wait);
    }

    fn take_analyze(&mut self) {
        let now = tokio::time::Instant::now();
        let wait = self.analyze.take(now);
        self.pause(now, wait);
    }

    fn pause(&mut self, now: tokio::time::Instant, wait: Option<std::time::Duration>) {
        if let Some(wait) = wait {
            let until = now + wait;
            self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
        }
    }

    fn paused_until(&self) -> Option<tokio::time::Instant> {
        self.paused_until
    }

    fn resume(&mut self) {
        self.paused_until = None;
    }
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
                code: close.code.code(),
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

    #[tokio::test]
    async fn a_producer_over_its_rate_is_paused_not_refused() {
        let mut throttle = Throttle::new(10.0, 0.0);
        for _ in 0..20 {
            throttle.take_publish();
        }
        assert!(
            throttle.paused_until().is_none(),
            "a burst of twice the rate passes"
        );
        throttle.take_publish();
        let until = throttle.paused_until().expect("paused");
        let wait = until - tokio::time::Instant::now();
        assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_millis(100));
        throttle.resume();
        for _ in 0..1_000 {
            throttle.take_analyze();
        }
        assert!(throttle.paused_until().is_none(), "0 means unlimited");
    }
}
