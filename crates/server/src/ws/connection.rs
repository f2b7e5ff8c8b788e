//! One connection's state machine: requests in, subscriptions, delivery into its outbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamMap;

use pulse_core::analytics::sentiment::SentimentAnalyzer;
use pulse_core::protocol::{
    ClientMessage, CloseCode, ErrorCode, ServerMessage, StreamPosition, Topic, MAX_ANALYZE_CHARS,
    MAX_CLIENT_FRAME_BYTES,
};

use crate::broker::Subscription;
use crate::deadline::sleep_until_some;
use crate::fanout::Frame;
use crate::outbox::{Outbox, OutboxLimits, Outgoing, PushOutcome};
use crate::state::AppState;

use super::publish::{PublishDone, MAX_PUBLISHES_IN_FLIGHT};
use super::*;

pub(super) struct TopicCursor {
    pub(super) topic: Topic,
    pub(super) epoch: Arc<str>,
    pub(super) offset: u64,
    /// Live events up to this offset are already with the client.
    pub(super) skip_through: u64,
}

pub(super) struct Connection {
    pub(super) state: AppState,
    pub(super) can_publish: bool,
    pub(super) outbox: Arc<Outbox>,
    pub(super) subscriptions: StreamMap<Arc<str>, TopicStream>,
    pub(super) cursors: HashMap<Arc<str>, TopicCursor>,
    /// Subscriptions whose backlog did not fit the outbox yet; they go on
    /// from their cursor once the client has read what is queued.
    pub(super) resuming: std::collections::VecDeque<TopicCursor>,
    /// Pending topics (see `pending_topics`) this connection counts in.
    pub(super) pending: Vec<Topic>,
    /// Publish and analyze requests of this connection (token bucket).
    pub(super) throttle: Throttle,
    pub(super) protocol_errors: u32,
    /// `id` of the request being handled, echoed in its error replies.
    pub(super) request_id: Option<serde_json::Value>,
    /// Publishes waiting for disk, in the order they arrived.
    pub(super) in_flight: futures::stream::FuturesOrdered<
        std::pin::Pin<Box<dyn std::future::Future<Output = PublishDone> + Send>>,
    >,
}

impl Connection {
    pub(super) fn new(state: AppState, can_publish: bool) -> Self {
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

    pub(super) async fn run(mut self, socket: WebSocket) {
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

    pub(super) fn reply(&self, message: &ServerMessage) {
        match serde_json::to_string(message) {
            Ok(text) => self.queue_own(text),
            Err(error) => tracing::error!(%error, "could not encode a reply"),
        }
    }

    /// Queues a frame of this connection's own, within its budget.
    pub(super) fn queue_own(&self, text: String) {
        let outcome = self.outbox.push_own(Outgoing::Own(Utf8Bytes::from(text)));
        self.count_outcome(&outcome);
    }

    pub(super) fn count_outcome(&self, outcome: &PushOutcome) {
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

    pub(super) fn reply_error(&mut self, code: ErrorCode, message: String) {
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

    pub(super) fn handle_text(&mut self, text: &str) {
        if text.len() > MAX_CLIENT_FRAME_BYTES {
            return self.reply_error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frames may be at most {MAX_CLIENT_FRAME_BYTES} bytes, got {}",
                    text.len()
                ),
            );
        }
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(error) => {
                // One parse on the way that matters. On the error path, the
                // frame is checked for being JSON at all: serde stops at an
                // unknown `op` before it reads on, so a data error can still
                // be a frame that is not JSON.
                let not_json = if error.is_syntax() || error.is_eof() {
                    Some(error.to_string())
                } else {
                    serde_json::from_str::<serde::de::IgnoredAny>(text)
                        .err()
                        .map(|syntax| syntax.to_string())
                };
                return match not_json {
                    Some(syntax) => self.reply_error(
                        ErrorCode::InvalidJson,
                        format!("frame is not valid JSON: {syntax}"),
                    ),
                    None => self.reply_error(
                        ErrorCode::InvalidMessage,
                        format!(
                            "not a valid message ({error}); ops are subscribe, unsubscribe, publish, ping, analyze"
                        ),
                    ),
                };
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
    pub(super) fn parse_topics(&mut self, names: Vec<String>) -> Vec<Topic> {
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

    pub(super) fn subscribe(&mut self, names: Vec<String>, since: HashMap<String, StreamPosition>) {
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
    pub(super) fn attach(&mut self, topic: Topic, subscription: Subscription, announce: bool) {
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
            .insert(name, topic_stream(subscription.receiver));
    }

    /// Gives up a pending topic; the last subscriber of a topic whose symbol
    /// still has no data removes it.
    pub(super) fn leave_pending(&self, topic: Topic) {
        if self.state.pending_topics.leave(&topic)
            && topic
                .symbol()
                .is_some_and(|symbol| !self.state.ingest.tracks(symbol))
        {
            self.state.broker.remove_if_unused(&topic);
        }
    }

    /// Continues backlogs that waited for the client to read.
    pub(super) fn resume_backlogs(&mut self) {
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

    pub(super) fn unsubscribe(&mut self, names: Vec<String>) {
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

    pub(super) fn deliver(
        &mut self,
        topic: Arc<str>,
        item: Result<Arc<Frame>, BroadcastStreamRecvError>,
    ) {
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
}

/// A subscription's live feed. A topic's feed ends when the broker starts it
/// again (in a cluster: a new epoch, or entries this node never got); the
/// closing item makes the connection subscribe again from where the client
/// stands, like after a lag, so the client is told `recovered: false`
/// instead of silently hearing nothing more.
pub(super) type TopicStream = tokio_stream::adapters::Chain<
    BroadcastStream<Arc<Frame>>,
    tokio_stream::Once<Result<Arc<Frame>, BroadcastStreamRecvError>>,
>;

fn topic_stream(receiver: tokio::sync::broadcast::Receiver<Arc<Frame>>) -> TopicStream {
    tokio_stream::StreamExt::chain(
        BroadcastStream::new(receiver),
        tokio_stream::once(Err(BroadcastStreamRecvError::Lagged(0))),
    )
}

/// Resolves once the server is shutting down (the guard the watch hands
/// out is dropped here, so the connection future stays `Send`).
pub(super) async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// "unknown topic 'a'" or "3 unknown topics: 'a', 'b', 'c'", naming at most
/// ten, so an error reply stays small whatever the request listed.
pub(super) fn name_some(what: &str, names: &[String]) -> String {
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
