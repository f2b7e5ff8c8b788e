//! Local fan-out: delivery of published events to this node's connections.
//!
//! Fan-out cost is what matters: an event is serialized once when it is
//! published. A per-topic flusher then groups whatever was delivered since
//! its last flush into one frame (a single `event`, or a `batch`) and
//! broadcasts one `Arc<Frame>`; every subscriber writes the same bytes. When
//! a topic is idle the flusher sends at once; under load it waits at most
//! `batch_window` after the previous flush, so each subscriber wakes once
//! per window instead of once per event.
//!
//! This knows nothing of offsets' origin, history or other nodes: a broker
//! (`crate::broker`) decides what is delivered and in which order.

mod frame;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, Notify};

pub use frame::{Event, Frame, TopicReport, TopicStats};

use crate::sync::lock;

/// How a topic's flusher groups events.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Longest time an event waits to be grouped with others under load.
    pub window: Duration,
    /// Events grouped into one frame at most.
    pub max_events: usize,
}

/// One topic's local subscribers and the events on their way to them.
pub struct LocalTopic {
    name: Arc<str>,
    stats: Arc<TopicStats>,
    conflatable: bool,
    batching: Batching,
    sender: broadcast::Sender<Arc<Frame>>,
    wake: Notify,
    /// Set when the topic is closed; its flusher then stops.
    closed: AtomicBool,
    pending: Mutex<Pending>,
}

struct Pending {
    events: Vec<Arc<Event>>,
    last_flush: Option<Instant>,
}

impl LocalTopic {
    /// Opens a topic whose subscribers may lag `capacity` frames before they
    /// miss some, and starts its flusher (needs a tokio runtime).
    pub fn open(
        name: Arc<str>,
        capacity: usize,
        conflatable: bool,
        batching: Batching,
    ) -> Arc<Self> {
        let topic = Arc::new(Self {
            name,
            stats: Arc::default(),
            conflatable,
            batching,
            sender: broadcast::channel(capacity.max(1)).0,
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            pending: Mutex::new(Pending {
                events: Vec::new(),
                last_flush: None,
            }),
        });
        tokio::spawn(run_flusher(Arc::clone(&topic)));
        topic
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Hands an event to the flusher. Events must come in offset order.
    pub fn deliver(&self, event: Arc<Event>) {
        self.deliver_all(std::iter::once(event));
    }

    /// [`LocalTopic::deliver`] for several events (in offset order): one
    /// lock and one wake-up.
    ///
    /// Events nobody listens to are only counted: a flush would drop them
    /// anyway, and a subscriber that comes later finds them in its broker's
    /// history (the broker subscribes and delivers under its topic's lock,
    /// so no receiver can appear in between). Most per-symbol topics have
    /// no subscriber, and waking their flushers for nothing was the larger
    /// part of publishing a tick.
    pub fn deliver_all(&self, events: impl IntoIterator<Item = Arc<Event>>) {
        let mut pending = lock(&self.pending);
        let before = pending.events.len();
        if before == 0 && self.sender.receiver_count() == 0 {
            drop(pending);
            let count = events.into_iter().count() as u64;
            self.stats.published.fetch_add(count, Relaxed);
            return;
        }
        pending.events.extend(events);
        let count = (pending.events.len() - before) as u64;
        drop(pending);
        if count > 0 {
            self.stats.published.fetch_add(count, Relaxed);
            self.wake.notify_one();
        }
    }

    /// Broadcasts everything delivered so far, now.
    pub fn flush(&self) {
        self.flush_locked(&mut lock(&self.pending));
    }

    /// A receiver of every frame broadcast from now on. Called under the
    /// same lock as [`LocalTopic::deliver_all`] (see there).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.sender.subscribe()
    }

    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Whether events were delivered that no frame has carried yet.
    pub fn has_pending(&self) -> bool {
        !lock(&self.pending).events.is_empty()
    }

    /// Whether [`LocalTopic::close`] was called: the topic was removed or
    /// replaced, and nothing delivered to it reaches anyone any more.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Stops the flusher; events still pending are dropped.
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
        self.wake.notify_one();
    }

    pub fn report(&self) -> TopicReport {
        TopicReport {
            topic: Arc::clone(&self.name),
            subscribers: self.subscribers(),
            published: self.stats.published.load(Relaxed),
            delivered: self.stats.delivered.load(Relaxed),
        }
    }

    /// Broadcasts everything pending, in frames of at most `max_events`.
    /// Called only with the pending lock held, which keeps frames in offset order.
    fn flush_locked(&self, pending: &mut Pending) {
        while !pending.events.is_empty() {
            let take = pending.events.len().min(self.batching.max_events.max(1));
            let events: Vec<Arc<Event>> = pending.events.drain(..take).collect();
            pending.last_flush = Some(Instant::now());
            if self.sender.receiver_count() > 0 {
                let frame = Frame {
                    topic: Arc::clone(&self.name),
                    stats: Arc::clone(&self.stats),
                    conflatable: self.conflatable,
                    text: Utf8Bytes::from(Frame::encode(&events)),
                    events,
                };
                // An error only means nobody listens any more.
                let _ = self.sender.send(Arc::new(frame));
            }
        }
    }
}

/// Broadcasts pending events of one topic, grouping them under load.
async fn run_flusher(topic: Arc<LocalTopic>) {
    loop {
        topic.wake.notified().await;
        if topic.closed.load(Relaxed) {
            return;
        }
        let due = lock(&topic.pending)
            .last_flush
            .map(|at| at + topic.batching.window);
        // Only a window still open is waited out: the timer rounds every
        // deadline up to its next millisecond, even one already passed.
        if let Some(due) = due.filter(|due| *due > Instant::now()) {
            tokio::time::sleep_until(due.into()).await;
        }
        topic.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(offset: u64) -> Arc<Event> {
        Arc::new(Event {
            offset,
            body: format!(r#"{{"topic":"t","offset":{offset},"data":{offset}}}"#).into(),
            conflation_key: None,
            source_ts: None,
        })
    }

    fn batching(max_events: usize) -> Batching {
        Batching {
            window: Duration::from_secs(3600),
            max_events,
        }
    }

    #[tokio::test]
    async fn a_flush_sends_what_was_delivered_in_frames_of_at_most_max_events() {
        let topic = LocalTopic::open("t".into(), 16, false, batching(2));
        let mut receiver = topic.subscribe();
        for offset in 1..=5 {
            topic.deliver(event(offset));
        }
        topic.flush();
        let mut sizes = Vec::new();
        let mut last = 0;
        while last < 5 {
            let frame = receiver.recv().await.unwrap();
            sizes.push(frame.events.len());
            last = frame.last_offset();
        }
        assert_eq!(sizes.iter().sum::<usize>(), 5);
        assert!(sizes.iter().all(|n| *n <= 2), "{sizes:?}");
        assert!(!topic.has_pending());
        assert_eq!(topic.report().published, 5);
    }

    #[tokio::test]
    async fn an_idle_topic_sends_at_once_without_a_flush() {
        let topic = LocalTopic::open("t".into(), 16, false, batching(8));
        let mut receiver = topic.subscribe();
        topic.deliver(event(1));
        let frame = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .expect("the flusher sends an idle topic's event without waiting a window")
            .unwrap();
        assert_eq!(frame.last_offset(), 1);
    }

    #[tokio::test]
    async fn events_nobody_listens_to_are_counted_and_not_queued() {
        let topic = LocalTopic::open("t".into(), 16, false, batching(8));
        topic.deliver_all([event(1), event(2)]);
        assert!(!topic.has_pending(), "no flush needed for nobody");
        assert_eq!(topic.report().published, 2);
        let mut receiver = topic.subscribe();
        topic.deliver(event(3));
        assert!(topic.has_pending());
        topic.flush();
        assert_eq!(receiver.recv().await.unwrap().last_offset(), 3);
        topic.close();
    }

    #[tokio::test]
    async fn nothing_is_encoded_for_a_topic_nobody_listens_to() {
        let topic = LocalTopic::open("t".into(), 16, false, batching(8));
        topic.deliver(event(1));
        topic.flush();
        let mut late = topic.subscribe();
        topic.deliver(event(2));
        topic.flush();
        assert_eq!(late.recv().await.unwrap().last_offset(), 2);
        topic.close();
    }
}
