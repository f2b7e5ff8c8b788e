//! A connection's bounded outgoing queue.
//!
//! The connection task moves frames from the hub into the outbox without ever
//! waiting on the socket; a separate writer task drains it. When the queue
//! goes over its budget (frames or bytes), queued market data is conflated to
//! the latest event per symbol; if that is not enough the connection is
//! closed with [`CloseCode::SlowConsumer`]. One slow client therefore costs
//! nobody else anything.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use pulse_core::protocol::{CloseCode, ServerMessage};
use tokio::sync::Notify;

use super::fanout::{Event, Frame};
use super::sync::lock;

#[derive(Clone, Copy, Debug)]
pub struct OutboxLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

#[derive(Debug)]
pub enum Outgoing {
    /// A hub frame whose bytes are shared with every other subscriber.
    Shared(Arc<Frame>),
    /// A frame made for this connection alone (replies, backlog, conflated data).
    Own(Utf8Bytes),
    Ping,
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Self::Shared(frame) => frame.text.len(),
            Self::Own(text) => text.len(),
            Self::Ping => 0,
        }
    }
}

/// What the writer should do once the queue is drained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: CloseCode,
    pub reason: String,
}

/// Result of offering a hub frame to the outbox.
#[derive(Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// Market data was conflated; this many events were dropped.
    Conflated {
        skipped: usize,
    },
    /// The budget is exhausted even after conflating `skipped` events: the
    /// connection is being closed.
    Closing {
        skipped: usize,
    },
    /// The connection is already closing; the frame was discarded.
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Outgoing>,
    bytes: usize,
    close: Option<CloseReason>,
}

pub struct Outbox {
    limits: OutboxLimits,
    state: Mutex<State>,
    ready: Notify,
    /// Signalled whenever the writer empties the queue.
    drained: Notify,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            drained: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Queues a frame made for this connection alone (a reply, an error, a
    /// backlog chunk). It counts against the same budget as hub frames: a
    /// client that asks for answers and never reads them is a slow consumer
    /// like any other.
    pub fn push_own(&self, item: Outgoing) -> PushOutcome {
        self.push(item)
    }

    /// Queues a hub frame, conflating or closing when over budget.
    pub fn push_frame(&self, frame: Arc<Frame>) -> PushOutcome {
        self.push(Outgoing::Shared(frame))
    }

    fn push(&self, item: Outgoing) -> PushOutcome {
        let mut state = self.state();
        if state.close.is_some() {
            return PushOutcome::Closed;
        }
        let len = item.len();
        let over = |state: &State| {
            state.queue.len() + 1 > self.limits.max_frames
                || state.bytes + len > self.limits.max_bytes
        };
        let mut outcome = PushOutcome::Queued;
        if over(&state) {
            let skipped = conflate(&mut state);
            if over(&state) {
                // What is queued cannot reach the client in time anyway; the
                // close frame goes out next, and the client resumes with `since`.
                state.queue.clear();
                state.bytes = 0;
                state.close = Some(CloseReason {
                    code: CloseCode::SlowConsumer,
                    reason: "slow consumer: outgoing queue over budget".into(),
                });
                drop(state);
                self.ready.notify_one();
                return PushOutcome::Closing { skipped };
            }
            if skipped > 0 {
                outcome = PushOutcome::Conflated { skipped };
            }
        }
        state.bytes += len;
        state.queue.push_back(item);
        drop(state);
        self.ready.notify_one();
        outcome
    }

    /// Whether a backlog chunk of `len` bytes may be queued now. Backlogs
    /// take at most half the budget, so live frames and replies keep room;
    /// the rest follows as the client reads ([`Outbox::drained`]). An empty
    /// queue always takes one chunk, so a backlog always makes progress.
    pub fn has_room_for_backlog(&self, len: usize) -> bool {
        let state = self.state();
        state.close.is_none()
            && (state.queue.is_empty()
                || (state.queue.len() < self.limits.max_frames / 2
                    && state.bytes + len <= self.limits.max_bytes / 2))
    }

    /// Resolves once the writer has taken what was queued (immediately if it
    /// did so since the last call).
    pub async fn drained(&self) {
        self.drained.notified().await;
    }

    /// Asks the writer to close the connection after what is queued.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let mut state = self.state();
        if state.close.is_none() {
            state.close = Some(CloseReason {
                code,
                reason: reason.into(),
            });
        }
        drop(state);
        self.ready.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.state().close.is_some()
    }

    /// Waits for work; returns everything queued, and the close reason when
    /// the connection should end after it.
    pub async fn next_batch(&self) -> (Vec<Outgoing>, Option<CloseReason>) {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state();
                if !state.queue.is_empty() || state.close.is_some() {
                    state.bytes = 0;
                    let items = state.queue.drain(..).collect();
                    let close = state.close.clone();
                    drop(state);
                    self.drained.notify_one();
                    return (items, close);
                }
            }
            notified.await;
        }
    }
}

/// Replaces every queued market-data frame by one frame per topic that holds
/// only the newest event per symbol, preceded by a `conflated` notice.
/// Returns how many events were dropped.
fn conflate(state: &mut State) -> usize {
    let mut kept: Vec<Outgoing> = Vec::with_capacity(state.queue.len());
    // Per topic: events in arrival order, later ones replacing earlier ones with the same key.
    let mut by_topic: Vec<(Arc<str>, Vec<Arc<Event>>, usize)> = Vec::new();
    for item in state.queue.drain(..) {
        match item {
            Outgoing::Shared(frame) if frame.conflatable => {
                let entry = match by_topic.iter_mut().position(|(t, _, _)| *t == frame.topic) {
                    Some(i) => &mut by_topic[i],
                    None => {
                        by_topic.push((Arc::clone(&frame.topic), Vec::new(), 0));
                        let last = by_topic.len() - 1;
                        &mut by_topic[last]
                    }
                };
                entry.2 += frame.events.len();
                entry.1.extend(frame.events.iter().cloned());
            }
            other => kept.push(other),
        }
    }
    let mut skipped_total = 0;
    for (topic, events, total) in by_topic {
        let mut latest: HashMap<Option<Arc<str>>, Arc<Event>> = HashMap::new();
        for event in events {
            latest.insert(event.conflation_key.clone(), event);
        }
        let mut survivors: Vec<Arc<Event>> = latest.into_values().collect();
        survivors.sort_by_key(|event| event.offset);
        let skipped = total - survivors.len();
        skipped_total += skipped;
        if skipped > 0 {
            let notice = ServerMessage::Conflated {
                skipped: skipped as u64,
                topic: topic.to_string(),
            };
            match serde_json::to_string(&notice) {
                Ok(text) => kept.push(Outgoing::Own(Utf8Bytes::from(text))),
                Err(error) => tracing::error!(%error, "could not encode a conflated notice"),
            }
        }
        kept.push(Outgoing::Own(Utf8Bytes::from(Frame::encode(&survivors))));
    }
    state.bytes = kept.iter().map(Outgoing::len).sum();
    state.queue = kept.into();
    skipped_total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick_frame(offset: u64, symbol: &str) -> Arc<Frame> {
        let event = Arc::new(Event {
            offset,
            body: format!(
                r#"{{"topic":"ticks","offset":{offset},"data":{{"symbol":"{symbol}"}}}}"#
            )
            .into(),
            conflation_key: Some(symbol.into()),
            source_ts: None,
        });
        let text = Frame::encode(std::slice::from_ref(&event));
        Arc::new(Frame {
            topic: "ticks".into(),
            stats: Arc::default(),
            conflatable: true,
            events: vec![event],
            text: Utf8Bytes::from(text),
        })
    }

    fn post_frame(offset: u64, size: usize) -> Arc<Frame> {
        let event = Arc::new(Event {
            offset,
            body: format!(
                r#"{{"topic":"posts","offset":{offset},"data":"{}"}}"#,
                "x".repeat(size)
            )
            .into(),
            conflation_key: None,
            source_ts: None,
        });
        let text = Frame::encode(std::slice::from_ref(&event));
        Arc::new(Frame {
            topic: "posts".into(),
            stats: Arc::default(),
            conflatable: false,
            events: vec![event],
            text: Utf8Bytes::from(text),
        })
    }

    fn texts(items: &[Outgoing]) -> Vec<serde_json::Value> {
        items
            .iter()
            .map(|item| match item {
                Outgoing::Shared(frame) => serde_json::from_str(frame.text.as_str()).unwrap(),
                Outgoing::Own(text) => serde_json::from_str(text.as_str()).unwrap(),
                Outgoing::Ping => serde_json::Value::Null,
            })
            .collect()
    }

    #[tokio::test]
    async fn market_data_is_conflated_to_latest_per_symbol() {
        let outbox = Outbox::new(OutboxLimits {
            max_frames: 4,
            max_bytes: 1 << 20,
        });
        for (offset, symbol) in [(1, "A"), (2, "B"), (3, "A"), (4, "A")] {
            assert_eq!(
                outbox.push_frame(tick_frame(offset, symbol)),
                PushOutcome::Queued
            );
        }
        assert_eq!(
            outbox.push_frame(tick_frame(5, "B")),
            PushOutcome::Conflated { skipped: 2 }
        );
        let (items, close) = outbox.next_batch().await;
        assert_eq!(close, None);
        let frames = texts(&items);
        assert_eq!(frames[0]["op"], "conflated");
        assert_eq!(frames[0]["skipped"], 2);
        // Survivors: B@2 and A@4, in offset order, then the new B@5.
        assert_eq!(frames[1]["events"][0]["offset"], 2);
        assert_eq!(frames[1]["events"][1]["offset"], 4);
        assert_eq!(frames[2]["offset"], 5);
    }

    #[tokio::test]
    async fn a_consumer_over_its_byte_budget_is_closed_with_4008() {
        let outbox = Outbox::new(OutboxLimits {
            max_frames: 100,
            max_bytes: 500,
        });
        let mut outcome = PushOutcome::Queued;
        for offset in 1..=10 {
            outcome = outbox.push_frame(post_frame(offset, 100));
            if outcome != PushOutcome::Queued {
                break;
            }
        }
        assert_eq!(outcome, PushOutcome::Closing { skipped: 0 });
        assert_eq!(outbox.push_frame(post_frame(99, 1)), PushOutcome::Closed);
        let (_, close) = outbox.next_batch().await;
        assert_eq!(close.unwrap().code, CloseCode::SlowConsumer);
    }

    #[tokio::test]
    async fn replies_count_against_the_budget_too() {
        let outbox = Outbox::new(OutboxLimits {
            max_frames: 100,
            max_bytes: 1_000,
        });
        let reply = || Outgoing::Own(Utf8Bytes::from("x".repeat(300)));
        for _ in 0..3 {
            assert_eq!(outbox.push_own(reply()), PushOutcome::Queued);
        }
        assert_eq!(
            outbox.push_own(reply()),
            PushOutcome::Closing { skipped: 0 }
        );
        let (_, close) = outbox.next_batch().await;
        assert_eq!(close.unwrap().code, CloseCode::SlowConsumer);
    }

    #[tokio::test]
    async fn backlogs_take_half_the_budget_and_resume_when_drained() {
        let outbox = Outbox::new(OutboxLimits {
            max_frames: 100,
            max_bytes: 1_000,
        });
        assert!(
            outbox.has_room_for_backlog(2_000),
            "an empty queue takes one chunk"
        );
        outbox.push_own(Outgoing::Own(Utf8Bytes::from("x".repeat(400))));
        assert!(outbox.has_room_for_backlog(100));
        assert!(!outbox.has_room_for_backlog(101));
        let _ = outbox.next_batch().await;
        // The writer took the queue: the signal is waiting.
        tokio::time::timeout(std::time::Duration::from_secs(1), outbox.drained())
            .await
            .expect("drained is signalled");
        assert!(outbox.has_room_for_backlog(500));
    }
}
