//! The browser's live connection: one WebSocket, automatic reconnect with
//! backoff and jitter, and gap-free resume through the protocol's `since`.
//!
//! The protocol bookkeeping ([`LiveSession`], [`Backoff`]) is plain Rust and
//! unit-tested natively; only `browser::connect` (browser builds) touches the browser.

use std::collections::BTreeMap;
use std::time::Duration;

use pulse_core::protocol::{ClientMessage, EventFrame, ServerMessage, StreamPosition, Topic};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    Connecting,
    Live,
    Reconnecting,
    Offline,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
            Self::Offline => "offline",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Live => "Live",
            Self::Reconnecting => "Reconnecting…",
            Self::Offline => "Offline",
        }
    }
}

/// A topic to follow, optionally resuming after a snapshot's position.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    pub topic: String,
    pub since: Option<StreamPosition>,
}

/// What the page is told.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveEvent {
    Event(EventFrame),
    /// The server could not replay what was missed on `topic`: reload its snapshot.
    Reset {
        topic: String,
    },
}

fn is_state_topic(topic: &str) -> bool {
    topic.parse::<Topic>().is_ok_and(|t| t.is_state())
}

/// Per-topic positions across reconnects.
#[derive(Debug, Default)]
pub struct LiveSession {
    positions: BTreeMap<String, Option<StreamPosition>>,
}

impl LiveSession {
    pub fn new(subscriptions: Vec<Subscription>) -> Self {
        Self {
            positions: subscriptions
                .into_iter()
                .map(|s| (s.topic, s.since))
                .collect(),
        }
    }

    /// The `subscribe` frame for a (re)connect: resume every topic where it
    /// stopped. State topics (presence) are not resumed: the server sends
    /// their current state, which is all that matters.
    pub fn subscribe_message(&self) -> ClientMessage {
        ClientMessage::Subscribe {
            topics: self.positions.keys().cloned().collect(),
            since: self
                .positions
                .iter()
                .filter(|(topic, _)| !is_state_topic(topic))
                .filter_map(|(topic, pos)| pos.clone().map(|p| (topic.clone(), p)))
                .collect(),
        }
    }

    /// Applies a server frame; returns what the page must act on.
    pub fn handle(&mut self, message: ServerMessage) -> Vec<LiveEvent> {
        match message {
            ServerMessage::Subscribed {
                topic,
                epoch,
                offset,
                recovered,
            } => {
                let Some(position) = self.positions.get_mut(&topic) else {
                    return Vec::new();
                };
                let had_position = position.is_some() && !is_state_topic(&topic);
                if recovered && had_position {
                    // The backlog (offsets after ours, up to `offset`) follows this
                    // frame: keep our position so none of it is dropped.
                    return Vec::new();
                }
                *position = Some(StreamPosition { epoch, offset });
                if had_position {
                    vec![LiveEvent::Reset { topic }]
                } else {
                    Vec::new()
                }
            }
            ServerMessage::Event(frame) => self.accept(frame).into_iter().collect(),
            ServerMessage::Batch { events } => {
                events.into_iter().filter_map(|e| self.accept(e)).collect()
            }
            // Market data was thinned for a slow connection: the newest event
            // per symbol follows in order, so there is nothing to resume.
            ServerMessage::Conflated { .. } => Vec::new(),
            _ => Vec::new(),
        }
    }

    /// Drops events at or before the known position (replays can overlap).
    fn accept(&mut self, frame: EventFrame) -> Option<LiveEvent> {
        let position = self.positions.get_mut(&frame.topic)?.as_mut()?;
        if frame.offset <= position.offset {
            return None;
        }
        position.offset = frame.offset;
        Some(LiveEvent::Event(frame))
    }
}

/// Exponential backoff with jitter, so a restarted server is not hit by
/// every browser at the same instant.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    const BASE_MS: f64 = 250.0;
    const MAX_MS: f64 = 10_000.0;
    /// After this many failed attempts the page says "offline" (and keeps trying).
    pub const OFFLINE_AFTER: u32 = 5;

    /// The delay before the next attempt; `random` is uniform in [0, 1).
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let ceiling = (Self::BASE_MS * 2f64.powi(self.attempt.min(16) as i32)).min(Self::MAX_MS);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis((ceiling * (0.5 + 0.5 * random.clamp(0.0, 1.0))) as u64)
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Items waiting for the next animation frame. A hidden tab gets no
/// frames while its socket (or the player) goes on delivering, so the
/// queue is bounded: at `max` items they are handed over at once instead
/// of piling up until the tab is shown again.
#[derive(Debug)]
pub struct FrameQueue<T> {
    items: Vec<T>,
    /// A frame is requested and has not run yet (at most one at a time).
    scheduled: bool,
    max: usize,
}

/// What the caller of [`FrameQueue::push`] does next.
#[derive(Debug, PartialEq)]
pub enum Queued<T> {
    /// Request an animation frame, then hand over [`FrameQueue::frame`].
    RequestFrame,
    /// A frame is already requested.
    Waiting,
    /// The queue was full: hand these over now.
    HandOver(Vec<T>),
}

impl<T> FrameQueue<T> {
    /// Items one frame hands over at most when frames do not come.
    pub const MAX_ITEMS: usize = 4_096;

    pub fn new(max: usize) -> Self {
        Self {
            items: Vec::new(),
            scheduled: false,
            max: max.max(1),
        }
    }

    pub fn push(&mut self, item: T) -> Queued<T> {
        self.items.push(item);
        if self.items.len() >= self.max {
            return Queued::HandOver(std::mem::take(&mut self.items));
        }
        if self.scheduled {
            Queued::Waiting
        } else {
            self.scheduled = true;
            Queued::RequestFrame
        }
    }

    /// The requested frame came: everything queued since.
    pub fn frame(&mut self) -> Vec<T> {
        self.scheduled = false;
        std::mem::take(&mut self.items)
    }
}

#[cfg(feature = "browser")]
pub use browser::{connect, FrameCoalescer};

#[cfg(feature = "browser")]
mod browser {
    use std::cell::RefCell;
    use std::rc::Rc;

    use futures_util::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};
    use leptos::prelude::*;
    use leptos::task::spawn_local;

    use super::*;

    /// `ws://` or `wss://` URL of `/ws` on the configured server (static
    /// bundle) or else the page's own origin, with this page's session id
    /// (the server counts distinct sessions as active users).
    fn socket_url(session: &str) -> Option<String> {
        if let Some(base) = crate::endpoint::socket_base() {
            return Some(format!("{base}/ws?session={session}"));
        }
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!(
            "{scheme}://{}/ws?session={session}",
            location.host().ok()?
        ))
    }

    /// Opens the live connection and keeps it open for the page's lifetime.
    pub fn connect(
        subscriptions: Vec<Subscription>,
        status: RwSignal<ConnectionStatus>,
        on_event: impl Fn(LiveEvent) + 'static,
    ) {
        spawn_local(async move {
            // One id per page load: a reconnect is the same viewer.
            let session = format!("{:012x}", (js_sys::Math::random() * 2f64.powi(48)) as u64);
            let Some(url) = socket_url(&session) else {
                status.set(ConnectionStatus::Offline);
                return;
            };
            let mut session = LiveSession::new(subscriptions);
            let mut backoff = Backoff::default();
            loop {
                if let Ok(socket) = WebSocket::open(&url) {
                    let (mut sink, mut stream) = socket.split();
                    let subscribe =
                        serde_json::to_string(&session.subscribe_message()).unwrap_or_default();
                    if sink.send(Message::Text(subscribe)).await.is_ok() {
                        while let Some(Ok(message)) = stream.next().await {
                            let Message::Text(text) = message else {
                                continue;
                            };
                            let message = match serde_json::from_str::<ServerMessage>(&text) {
                                Ok(message) => message,
                                // Frames this client does not know are fine to skip.
                                Err(_) => continue,
                            };
                            if let ServerMessage::Error { code, message, .. } = &message {
                                leptos::logging::warn!("server error {code:?}: {message}");
                            }
                            if matches!(message, ServerMessage::Subscribed { .. }) {
                                backoff.reset();
                                status.set(ConnectionStatus::Live);
                            }
                            for event in session.handle(message) {
                                on_event(event);
                            }
                        }
                    }
                }
                let delay = backoff.next_delay(js_sys::Math::random());
                status.set(if backoff.attempts() >= Backoff::OFFLINE_AFTER {
                    ConnectionStatus::Offline
                } else {
                    ConnectionStatus::Reconnecting
                });
                gloo_timers::future::sleep(delay).await;
            }
        });
    }

    /// Collects items between animation frames and hands them over once per
    /// frame, so a flood of events costs one redraw per frame, not one per
    /// event (and, bounded by [`FrameQueue`], never piles up in a hidden tab).
    pub struct FrameCoalescer<T: 'static> {
        pending: Rc<RefCell<FrameQueue<T>>>,
        flush: Rc<dyn Fn(Vec<T>)>,
    }

    impl<T: 'static> FrameCoalescer<T> {
        pub fn new(flush: impl Fn(Vec<T>) + 'static) -> Self {
            Self {
                pending: Rc::new(RefCell::new(FrameQueue::new(FrameQueue::<T>::MAX_ITEMS))),
                flush: Rc::new(flush),
            }
        }

        pub fn push(&self, item: T) {
            // The borrow ends before `flush` runs.
            let queued = self.pending.borrow_mut().push(item);
            match queued {
                Queued::RequestFrame => {
                    let pending = Rc::clone(&self.pending);
                    let flush = Rc::clone(&self.flush);
                    request_animation_frame(move || {
                        let batch = pending.borrow_mut().frame();
                        if !batch.is_empty() {
                            flush(batch);
                        }
                    });
                }
                Queued::Waiting => {}
                Queued::HandOver(batch) => (self.flush)(batch),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn position(epoch: &str, offset: u64) -> Option<StreamPosition> {
        Some(StreamPosition {
            epoch: epoch.into(),
            offset,
        })
    }

    fn event(topic: &str, offset: u64) -> EventFrame {
        EventFrame {
            topic: topic.into(),
            offset,
            data: json!(offset),
        }
    }

    #[test]
    fn a_frame_queue_asks_for_one_frame_and_hands_over_at_its_bound() {
        let mut queue = FrameQueue::new(3);
        assert_eq!(queue.push(1), Queued::RequestFrame);
        assert_eq!(queue.push(2), Queued::Waiting, "one frame at a time");
        assert_eq!(queue.frame(), [1, 2]);
        assert_eq!(queue.push(3), Queued::RequestFrame);
        // No frame comes (a hidden tab): the bound hands the items over.
        assert_eq!(queue.push(4), Queued::Waiting);
        assert_eq!(queue.push(5), Queued::HandOver(vec![3, 4, 5]));
        assert_eq!(
            queue.push(6),
            Queued::Waiting,
            "the frame asked for is still to come"
        );
        assert_eq!(queue.frame(), [6]);
        assert!(queue.frame().is_empty());
    }

    #[test]
    fn a_state_topic_takes_the_replayed_state_and_is_never_reset() {
        let subscribed = |epoch: &str, offset| ServerMessage::Subscribed {
            topic: "presence".into(),
            epoch: epoch.into(),
            offset,
            recovered: false,
        };
        let mut session = LiveSession::new(vec![Subscription {
            topic: "presence".into(),
            since: None,
        }]);
        // The server announces the position just before the state it replays.
        assert!(session.handle(subscribed("e1", 4)).is_empty());
        let replayed = session.handle(ServerMessage::Event(event("presence", 5)));
        assert_eq!(replayed, vec![LiveEvent::Event(event("presence", 5))]);
        // A reconnect asks for the state again instead of resuming, and a new
        // epoch (server restart) is no reason to reload anything.
        let ClientMessage::Subscribe { since, .. } = session.subscribe_message() else {
            panic!("a subscribe frame");
        };
        assert!(since.is_empty(), "{since:?}");
        assert!(session.handle(subscribed("e2", 0)).is_empty());
        let state = session.handle(ServerMessage::Event(event("presence", 1)));
        assert_eq!(state, vec![LiveEvent::Event(event("presence", 1))]);
    }

    #[test]
    fn resubscribes_from_the_last_seen_offset() {
        let mut session = LiveSession::new(vec![Subscription {
            topic: "ticks:A".into(),
            since: position("e", 10),
        }]);
        session.handle(ServerMessage::Subscribed {
            topic: "ticks:A".into(),
            epoch: "e".into(),
            offset: 12,
            recovered: true,
        });
        // The server sends `subscribed` first, then the backlog (11, 12), then live
        // events; a replayed duplicate (10) is dropped.
        let events = session.handle(ServerMessage::Batch {
            events: vec![
                event("ticks:A", 10),
                event("ticks:A", 11),
                event("ticks:A", 12),
                event("ticks:A", 13),
            ],
        });
        assert_eq!(
            events,
            [11, 12, 13].map(|o| LiveEvent::Event(event("ticks:A", o)))
        );
        let ClientMessage::Subscribe { since, .. } = session.subscribe_message() else {
            panic!("not a subscribe");
        };
        assert_eq!(since["ticks:A"].offset, 13);
    }

    #[test]
    fn a_conflated_notice_changes_nothing() {
        let mut session = LiveSession::new(vec![Subscription {
            topic: "ticks".into(),
            since: position("e", 10),
        }]);
        let notice: ServerMessage =
            serde_json::from_str(r#"{"op":"conflated","skipped":3,"topic":"ticks"}"#).unwrap();
        assert!(session.handle(notice).is_empty());
        let events = session.handle(ServerMessage::Event(event("ticks", 14)));
        assert_eq!(events, [LiveEvent::Event(event("ticks", 14))]);
    }

    #[test]
    fn unrecoverable_history_asks_for_a_reset() {
        let mut session = LiveSession::new(vec![Subscription {
            topic: "posts".into(),
            since: position("old", 5),
        }]);
        let events = session.handle(ServerMessage::Subscribed {
            topic: "posts".into(),
            epoch: "new".into(),
            offset: 99,
            recovered: false,
        });
        assert_eq!(
            events,
            [LiveEvent::Reset {
                topic: "posts".into()
            }]
        );
        assert_eq!(
            session
                .handle(ServerMessage::Event(event("posts", 100)))
                .len(),
            1
        );
    }

    #[test]
    fn first_subscription_without_position_is_not_a_reset() {
        let mut session = LiveSession::new(vec![Subscription {
            topic: "posts".into(),
            since: None,
        }]);
        let events = session.handle(ServerMessage::Subscribed {
            topic: "posts".into(),
            epoch: "e".into(),
            offset: 3,
            recovered: false,
        });
        assert!(events.is_empty());
        assert!(session
            .handle(ServerMessage::Event(event("other", 1)))
            .is_empty());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut backoff = Backoff::default();
        let first = backoff.next_delay(0.0);
        let second = backoff.next_delay(0.999);
        assert_eq!(first, Duration::from_millis(125));
        assert!(second > first && second <= Duration::from_millis(500));
        for _ in 0..30 {
            assert!(backoff.next_delay(1.0) <= Duration::from_millis(10_000));
        }
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(250));
    }
}
