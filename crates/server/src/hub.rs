//! The topic hub: Pulse's equivalent of Channels' groups and channel layer.
//!
//! Every topic has an epoch (new whenever its history is lost, e.g. a restart
//! without persistence), a per-event offset and a bounded history, so a
//! reconnecting client can ask for what it missed.
//!
//! Fan-out cost is what matters: an event is serialized once when it is
//! published. A per-topic flusher then groups whatever was published since its
//! last flush into one frame (a single `event`, or a `batch`) and broadcasts
//! one `Arc<Frame>`; every subscriber writes the same bytes. When a topic is
//! idle the flusher sends at once; under load it waits at most `batch_window`
//! after the previous flush, so each subscriber wakes once per window instead
//! of once per event.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use pulse_core::protocol::{StreamPosition, Topic};

use super::sync::{lock, read as read_lock, write as write_lock};

/// Tuning of the hub; see `server::config` for the flags that set it.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Events kept per topic for recovery.
    pub history_len: usize,
    /// Longest time an event waits to be grouped with others under load.
    pub batch_window: Duration,
    /// Frames a subscriber may lag in the broadcast channel before it misses some.
    pub channel_capacity: usize,
    /// Events grouped into one frame at most.
    pub max_batch: usize,
    /// History kept by each per-symbol topic (`ticks:<SYMBOL>`,
    /// `candles:<SYMBOL>`): there are up to two per tracked symbol, so they
    /// get a smaller ring and channel than the shared topics.
    pub symbol_history_len: usize,
    /// Broadcast capacity of a per-symbol topic; the channel's slots are
    /// allocated up front, and a lagging subscriber resumes from history.
    pub symbol_channel_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history_len: 10_000,
            batch_window: Duration::from_millis(5),
            channel_capacity: 4_096,
            max_batch: 512,
            symbol_history_len: 2_000,
            symbol_channel_capacity: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("event could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// One published event, serialized once.
#[derive(Debug)]
pub struct Event {
    pub offset: u64,
    /// `{"topic":..,"offset":..,"data":..}` — the body shared by `event` and `batch` frames.
    pub body: Box<str>,
    /// Events with the same key supersede each other when a slow consumer is
    /// conflated (the symbol of a tick); `None` means never conflate.
    pub conflation_key: Option<Arc<str>>,
    /// Producer timestamp (Unix ms) when the data carries one, for latency metrics.
    pub source_ts: Option<i64>,
}

/// What the broadcast channel carries: one or more consecutive events of a
/// topic, already encoded as a WebSocket text frame.
#[derive(Debug)]
pub struct Frame {
    pub topic: Arc<str>,
    /// The topic's counters; writers add what they deliver.
    pub stats: Arc<TopicStats>,
    pub conflatable: bool,
    pub events: Vec<Arc<Event>>,
    pub text: Utf8Bytes,
}

impl Frame {
    pub fn last_offset(&self) -> u64 {
        self.events.last().map_or(0, |event| event.offset)
    }

    /// Encodes events as one `event` frame, or a `batch` frame when there are several.
    pub fn encode(events: &[Arc<Event>]) -> String {
        match events {
            [single] => {
                let mut text = String::with_capacity(single.body.len() + 14);
                text.push_str(r#"{"op":"event","#);
                text.push_str(&single.body[1..]);
                text
            }
            _ => {
                let len = events.iter().map(|e| e.body.len() + 1).sum::<usize>();
                let mut text = String::with_capacity(len + 28);
                text.push_str(r#"{"op":"batch","events":["#);
                for (i, event) in events.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(&event.body);
                }
                text.push_str("]}");
                text
            }
        }
    }
}

/// An event with its offset, not yet visible to subscribers.
pub struct Prepared {
    channel: Arc<TopicChannel>,
    event: Arc<Event>,
}

impl Prepared {
    pub fn topic(&self) -> &str {
        &self.channel.name
    }

    pub fn epoch(&self) -> &str {
        &self.channel.epoch
    }

    pub fn event(&self) -> &Event {
        &self.event
    }

    pub fn position(&self) -> Published {
        Published {
            epoch: Arc::clone(&self.channel.epoch),
            offset: self.event.offset,
        }
    }
}

/// Where a published event landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub epoch: Arc<str>,
    pub offset: u64,
}

impl From<Published> for StreamPosition {
    fn from(published: Published) -> Self {
        StreamPosition {
            epoch: published.epoch.to_string(),
            offset: published.offset,
        }
    }
}

/// The answer to a subscription: where the topic stands, what the client
/// missed (when it could be recovered) and the live feed after that.
pub struct Subscription {
    pub topic: Arc<str>,
    pub epoch: Arc<str>,
    /// Where the subscriber stands before the live feed: after `backlog`
    /// when it recovers with `since`; on a state topic subscribed without
    /// `since`, just before the latest event, which is the backlog.
    pub offset: u64,
    pub recovered: bool,
    pub backlog: Vec<Arc<Event>>,
    /// Live events up to this offset are already with the client (it resumed
    /// from a snapshot that was ahead of the released stream); drop them.
    pub skip_through: u64,
    pub receiver: broadcast::Receiver<Arc<Frame>>,
}

struct TopicState {
    /// Offset of the most recently prepared event (0 before the first).
    last_offset: u64,
    /// Offset of the newest event already handed to the broadcast channel.
    flushed_offset: u64,
    history: VecDeque<Arc<Event>>,
    /// The newest released event of a state topic (kept even without history).
    latest: Option<Arc<Event>>,
    pending: Vec<Arc<Event>>,
    last_flush: Option<Instant>,
}

/// Per-topic counters for `/metrics`.
#[derive(Debug, Default)]
pub struct TopicStats {
    /// Events published on the topic.
    pub published: AtomicU64,
    /// Events written to subscribers (one per subscriber per event).
    pub delivered: AtomicU64,
}

/// A topic's figures at one moment, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: Arc<str>,
    pub subscribers: usize,
    pub published: u64,
    pub delivered: u64,
}

struct TopicChannel {
    name: Arc<str>,
    /// Events kept for recovery on this topic.
    history_len: usize,
    /// Set when the topic is removed; its flusher then stops.
    removed: std::sync::atomic::AtomicBool,
    stats: Arc<TopicStats>,
    epoch: Arc<str>,
    conflatable: bool,
    /// New subscribers without `since` get the latest event (see [`Topic::is_state`]).
    replays_latest: bool,
    state: Mutex<TopicState>,
    sender: broadcast::Sender<Arc<Frame>>,
    wake: Notify,
}

/// Topics by name, created on first use.
pub struct Hub {
    config: HubConfig,
    epoch_seed: String,
    topics: RwLock<HashMap<Topic, Arc<TopicChannel>>>,
    /// Topics removed so far (see [`Hub::fresh_epoch`]).
    removals: AtomicU64,
}

impl Hub {
    /// `epoch_seed` should differ between runs whose histories differ (a
    /// random or time-based string when nothing is persisted).
    pub fn new(config: HubConfig, epoch_seed: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            config,
            epoch_seed: epoch_seed.into(),
            topics: RwLock::new(HashMap::new()),
            removals: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    fn channel(&self, topic: &Topic) -> Arc<TopicChannel> {
        if let Some(channel) = read_lock(&self.topics).get(topic) {
            return Arc::clone(channel);
        }
        self.create_channel(topic, None)
    }

    /// Creates `topic` (if it does not exist yet) with the given epoch, or
    /// one derived from this hub's seed.
    fn create_channel(&self, topic: &Topic, epoch: Option<&str>) -> Arc<TopicChannel> {
        let mut topics = write_lock(&self.topics);
        let channel = topics.entry(topic.clone()).or_insert_with(|| {
            let name: Arc<str> = topic.to_string().into();
            let per_symbol = topic.symbol().is_some();
            let (history_len, capacity) = if per_symbol {
                (
                    self.config.symbol_history_len.min(self.config.history_len),
                    self.config.symbol_channel_capacity.max(1),
                )
            } else {
                (self.config.history_len, self.config.channel_capacity.max(1))
            };
            let channel = Arc::new(TopicChannel {
                history_len,
                removed: std::sync::atomic::AtomicBool::new(false),
                epoch: epoch
                    .map_or_else(|| self.fresh_epoch(topic), str::to_owned)
                    .into(),
                name,
                stats: Arc::default(),
                conflatable: topic.is_market_data(),
                replays_latest: topic.is_state(),
                state: Mutex::new(TopicState {
                    last_offset: 0,
                    flushed_offset: 0,
                    history: VecDeque::new(),
                    latest: None,
                    pending: Vec::new(),
                    last_flush: None,
                }),
                sender: broadcast::channel(capacity).0,
                wake: Notify::new(),
            });
            tokio::spawn(run_flusher(Arc::clone(&channel), self.config.clone()));
            channel
        });
        Arc::clone(channel)
    }

    /// Restores a topic persisted by an earlier run: its epoch, the offset it
    /// had reached and its recent history (oldest first), so clients resume
    /// across the restart. Call before anything is published on the topic.
    pub fn restore(&self, topic: &Topic, epoch: &str, last_offset: u64, history: Vec<Event>) {
        let channel = self.create_channel(topic, Some(epoch));
        let mut state = lock(&channel.state);
        state.last_offset = last_offset;
        state.flushed_offset = last_offset;
        let keep = history.len().saturating_sub(channel.history_len);
        state.history = history.into_iter().skip(keep).map(Arc::new).collect();
        if channel.replays_latest {
            state.latest = state.history.back().cloned();
        }
    }

    /// Publishes `data` on `topic` at once; returns the event's position.
    pub fn publish<T: Serialize>(
        &self,
        topic: &Topic,
        data: &T,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Result<Published, HubError> {
        let prepared = self.prepare(topic, data, conflation_key, source_ts)?;
        let published = prepared.position();
        self.release(vec![prepared]);
        Ok(published)
    }

    /// First half of a durable publish: assigns the event its offset and
    /// encodes it, but shows it to nobody until [`Hub::release`]. Storage
    /// writes the prepared events and releases them once they are on disk,
    /// in the order they were prepared.
    pub fn prepare<T: Serialize>(
        &self,
        topic: &Topic,
        data: &T,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Result<Prepared, HubError> {
        let data = serde_json::to_string(data)?;
        Ok(self.prepare_json(topic, &data, conflation_key, source_ts))
    }

    /// [`Hub::prepare`] for data already serialized as JSON, so data that goes
    /// to several topics (a tick: `ticks` and `ticks:<SYMBOL>`) is encoded once.
    pub fn prepare_json(
        &self,
        topic: &Topic,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Prepared {
        let channel = self.channel(topic);
        let mut state = lock(&channel.state);
        let offset = state.last_offset + 1;
        state.last_offset = offset;
        // Topic names are validated ([a-zA-Z0-9:.-]): quoting needs no escaping.
        let body = format!(
            r#"{{"topic":"{}","offset":{offset},"data":{data_json}}}"#,
            channel.name
        );
        let event = Arc::new(Event {
            offset,
            body: body.into_boxed_str(),
            conflation_key,
            source_ts,
        });
        drop(state);
        Prepared { channel, event }
    }

    /// Second half of a durable publish: makes prepared events visible to
    /// subscribers and recovery. Events of one topic must come in offset order.
    pub fn release(&self, prepared: Vec<Prepared>) {
        for Prepared { channel, event } in prepared {
            let mut state = lock(&channel.state);
            if channel.history_len > 0 {
                if state.history.len() >= channel.history_len {
                    state.history.pop_front();
                }
                state.history.push_back(Arc::clone(&event));
            }
            if channel.replays_latest {
                state.latest = Some(Arc::clone(&event));
            }
            state.pending.push(event);
            channel.stats.published.fetch_add(1, Relaxed);
            drop(state);
            channel.wake.notify_one();
        }
    }

    /// Subscribes to `topic`. With `since`, events after that position are
    /// returned in `backlog` when the history still reaches back to it; the
    /// live receiver then continues exactly where the backlog ends.
    pub fn subscribe(&self, topic: &Topic, since: Option<&StreamPosition>) -> Subscription {
        let channel = self.channel(topic);
        let mut state = lock(&channel.state);
        // Flushing first makes "everything up to the current offset" well
        // defined: it is in the history, and nothing older is still in flight.
        flush_locked(&channel, &mut state, self.config.max_batch);
        let receiver = channel.sender.subscribe();
        let current = state.flushed_offset;
        let (recovered, backlog) = match since {
            None if channel.replays_latest => {
                let latest = state.latest.as_ref().filter(|e| e.offset <= current);
                (true, latest.cloned().into_iter().collect())
            }
            None => (true, Vec::new()),
            Some(position) if *position.epoch != *channel.epoch => (false, Vec::new()),
            // The client already holds events that are prepared but not yet
            // released (they were in a snapshot): it resumes after them.
            Some(position) if position.offset >= current => {
                (position.offset <= state.last_offset, Vec::new())
            }
            Some(position) => {
                let oldest = state.history.front().map_or(u64::MAX, |e| e.offset);
                if position.offset + 1 < oldest {
                    (false, Vec::new())
                } else {
                    let backlog = state
                        .history
                        .iter()
                        .filter(|e| e.offset > position.offset && e.offset <= current)
                        .cloned()
                        .collect();
                    (true, backlog)
                }
            }
        };
        let skip_through = match since {
            Some(position) if recovered && position.offset > current => position.offset,
            _ => 0,
        };
        // A replayed state is announced like a live event: the subscriber
        // stands just before it, so clients that drop what they already have
        // keep it.
        let offset = match (since, backlog.first()) {
            (None, Some(latest)) => latest.offset.saturating_sub(1),
            _ => current.max(skip_through),
        };
        Subscription {
            topic: Arc::clone(&channel.name),
            epoch: Arc::clone(&channel.epoch),
            offset,
            skip_through,
            recovered: recovered && since.is_some(),
            backlog,
            receiver,
        }
    }

    /// The position a snapshot taken now corresponds to. Asking about a
    /// topic that does not exist allocates nothing: it stands at offset 0 of
    /// the epoch it will get when created.
    pub fn position(&self, topic: &Topic) -> StreamPosition {
        match read_lock(&self.topics).get(topic) {
            Some(channel) => StreamPosition {
                epoch: channel.epoch.to_string(),
                offset: lock(&channel.state).last_offset,
            },
            None => StreamPosition {
                epoch: self.fresh_epoch(topic),
                offset: 0,
            },
        }
    }

    /// The epoch a topic created now gets. Once any topic has been removed,
    /// epochs carry the removal count, so a topic created again never
    /// shares an epoch with its earlier life.
    fn fresh_epoch(&self, topic: &Topic) -> String {
        match self.removals.load(Relaxed) {
            0 => format!("{}-{topic}", self.epoch_seed),
            n => format!("{}.{n}-{topic}", self.epoch_seed),
        }
    }

    /// Number of topics that exist now.
    pub fn topic_count(&self) -> usize {
        read_lock(&self.topics).len()
    }

    /// Removes `topic` (its history, channel and flusher) if nobody is
    /// subscribed and nothing is waiting to be released; `true` if removed.
    /// A topic created again later starts a new epoch, so a client holding
    /// an old position is told `recovered: false`.
    pub fn remove_if_unused(&self, topic: &Topic) -> bool {
        let mut topics = write_lock(&self.topics);
        let Some(channel) = topics.get(topic) else {
            return false;
        };
        {
            let state = lock(&channel.state);
            if channel.sender.receiver_count() > 0
                || state.last_offset != state.flushed_offset
                || !state.pending.is_empty()
            {
                return false;
            }
        }
        if let Some(channel) = topics.remove(topic) {
            self.removals.fetch_add(1, Relaxed);
            channel.removed.store(true, Relaxed);
            channel.wake.notify_one();
        }
        true
    }

    /// Every topic's subscribers and counters, sorted by name, for metrics.
    pub fn report(&self) -> Vec<TopicReport> {
        let mut reports: Vec<_> = read_lock(&self.topics)
            .values()
            .map(|c| TopicReport {
                topic: Arc::clone(&c.name),
                subscribers: c.sender.receiver_count(),
                published: c.stats.published.load(Relaxed),
                delivered: c.stats.delivered.load(Relaxed),
            })
            .collect();
        reports.sort_by(|a, b| a.topic.cmp(&b.topic));
        reports
    }
}

/// Broadcasts pending events of one topic, grouping them under load.
async fn run_flusher(channel: Arc<TopicChannel>, config: HubConfig) {
    loop {
        channel.wake.notified().await;
        if channel.removed.load(Relaxed) {
            return;
        }
        let due = lock(&channel.state)
            .last_flush
            .map(|at| at + config.batch_window);
        // Only a window still open is waited out: the timer rounds every
        // deadline up to its next millisecond, even one already passed.
        if let Some(due) = due.filter(|due| *due > Instant::now()) {
            tokio::time::sleep_until(due.into()).await;
        }
        let mut state = lock(&channel.state);
        flush_locked(&channel, &mut state, config.max_batch);
    }
}

/// Broadcasts everything pending, in frames of at most `max_batch` events.
/// Called only with the topic's lock held, which keeps frames in offset order.
fn flush_locked(channel: &TopicChannel, state: &mut TopicState, max_batch: usize) {
    while !state.pending.is_empty() {
        let take = state.pending.len().min(max_batch.max(1));
        let events: Vec<Arc<Event>> = state.pending.drain(..take).collect();
        state.flushed_offset = events.last().map_or(state.flushed_offset, |e| e.offset);
        state.last_flush = Some(Instant::now());
        if channel.sender.receiver_count() > 0 {
            let frame = Frame {
                topic: Arc::clone(&channel.name),
                stats: Arc::clone(&channel.stats),
                conflatable: channel.conflatable,
                text: Utf8Bytes::from(Frame::encode(&events)),
                events,
            };
            // An error only means nobody listens any more.
            let _ = channel.sender.send(Arc::new(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn hub(history_len: usize) -> Arc<Hub> {
        Hub::new(
            HubConfig {
                history_len,
                batch_window: Duration::from_millis(1),
                ..HubConfig::default()
            },
            "test",
        )
    }

    async fn next_offsets(sub: &mut Subscription) -> Vec<u64> {
        let frame = sub.receiver.recv().await.unwrap();
        let parsed: Value = serde_json::from_str(frame.text.as_str()).unwrap();
        match parsed["op"].as_str() {
            Some("event") => vec![parsed["offset"].as_u64().unwrap()],
            Some("batch") => parsed["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["offset"].as_u64().unwrap())
                .collect(),
            other => panic!("unexpected op {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unused_topic_is_removed_and_comes_back_in_a_new_epoch() {
        let hub = hub(100);
        let topic = Topic::SymbolTicks("ZZ".into());
        let before = hub.position(&topic);
        assert_eq!(
            hub.topic_count(),
            0,
            "asking for a position allocates nothing"
        );
        hub.publish(&topic, &json!({"i": 1}), None, None).unwrap();
        let sub = hub.subscribe(&topic, None);
        assert!(!hub.remove_if_unused(&topic), "a subscriber keeps it");
        drop(sub);
        assert!(hub.remove_if_unused(&topic));
        assert_eq!(hub.topic_count(), 0);
        let after = hub.position(&topic);
        assert_ne!(after.epoch, before.epoch);
        let old = StreamPosition {
            epoch: before.epoch,
            offset: 1,
        };
        let sub = hub.subscribe(&topic, Some(&old));
        assert!(!sub.recovered, "history of the removed topic is gone");
        assert_eq!(sub.epoch.as_ref(), after.epoch);
    }

    #[tokio::test]
    async fn offsets_increase_by_one_and_frames_are_valid_json() {
        let hub = hub(100);
        let mut sub = hub.subscribe(&Topic::Posts, None);
        for i in 0..3 {
            assert_eq!(
                hub.publish(&Topic::Posts, &json!({"i": i}), None, None)
                    .unwrap()
                    .offset,
                i + 1
            );
        }
        let mut seen = Vec::new();
        while seen.len() < 3 {
            seen.extend(next_offsets(&mut sub).await);
        }
        assert_eq!(seen, [1, 2, 3]);
    }

    #[tokio::test]
    async fn since_replays_missed_events_without_gaps_or_duplicates() {
        let hub = hub(100);
        for i in 0..10 {
            hub.publish(&Topic::Posts, &json!(i), None, None).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let epoch = hub.position(&Topic::Posts).epoch;
        let since = StreamPosition { epoch, offset: 6 };
        let mut sub = hub.subscribe(&Topic::Posts, Some(&since));
        assert!(sub.recovered);
        let backlog: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
        assert_eq!(backlog, [7, 8, 9, 10]);
        hub.publish(&Topic::Posts, &json!(10), None, None).unwrap();
        assert_eq!(next_offsets(&mut sub).await, [11]);
    }

    #[tokio::test]
    async fn stale_epoch_or_truncated_history_is_not_recovered() {
        let hub = hub(5);
        for i in 0..20 {
            hub.publish(&Topic::Posts, &json!(i), None, None).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let epoch = hub.position(&Topic::Posts).epoch;
        let old = StreamPosition {
            epoch: epoch.clone(),
            offset: 3,
        };
        assert!(!hub.subscribe(&Topic::Posts, Some(&old)).recovered);
        let foreign = StreamPosition {
            epoch: "other".into(),
            offset: 19,
        };
        assert!(!hub.subscribe(&Topic::Posts, Some(&foreign)).recovered);
        let edge = StreamPosition { epoch, offset: 15 };
        let sub = hub.subscribe(&Topic::Posts, Some(&edge));
        assert!(sub.recovered);
        assert_eq!(sub.backlog.len(), 5);
    }

    #[tokio::test]
    async fn a_state_topic_hands_new_subscribers_its_latest_event() {
        let states = hub(100);
        assert!(states.subscribe(&Topic::Presence, None).backlog.is_empty());
        for sessions in 1..=3 {
            states
                .publish(&Topic::Presence, &json!({"sessions": sessions}), None, None)
                .unwrap();
        }
        let sub = states.subscribe(&Topic::Presence, None);
        let latest: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
        assert_eq!(latest, [3]);
        assert_eq!(sub.offset, 2, "announced just before the replayed state");
        assert!(!sub.recovered, "nothing was asked to be recovered");
        // Streams are not states: a plain subscription starts with what comes next.
        states
            .publish(&Topic::Posts, &json!(1), None, None)
            .unwrap();
        assert!(states.subscribe(&Topic::Posts, None).backlog.is_empty());
        // The state does not depend on keeping a history.
        let without_history = hub(0);
        without_history
            .publish(&Topic::Presence, &json!({"sessions": 1}), None, None)
            .unwrap();
        let sub = without_history.subscribe(&Topic::Presence, None);
        assert_eq!((sub.offset, sub.backlog.len()), (0, 1));
    }

    #[test]
    fn single_and_batch_frames_share_event_bodies() {
        let event = |offset| {
            Arc::new(Event {
                offset,
                body: format!(r#"{{"topic":"posts","offset":{offset},"data":null}}"#).into(),
                conflation_key: None,
                source_ts: None,
            })
        };
        let single: Value = serde_json::from_str(&Frame::encode(&[event(1)])).unwrap();
        assert_eq!(
            single,
            json!({"op":"event","topic":"posts","offset":1,"data":null})
        );
        let batch: Value = serde_json::from_str(&Frame::encode(&[event(1), event(2)])).unwrap();
        assert_eq!(batch["op"], "batch");
        assert_eq!(batch["events"][1]["offset"], 2);
    }
}
