//! The broker seam: who sequences events, keeps their history and gets them
//! to every subscriber, on this node or (in a multi-node build) others.
//!
//! Modelled on centrifuge's hub/broker split: [`crate::fanout`] delivers to
//! this node's connections; a [`Broker`] owns the order of each topic
//! (epoch and offsets), its recovery history, and the hand-off to fan-out.
//! Ingest prepares events (offsets assigned under its own lock, so a
//! snapshot's positions stay consistent with its data), storage makes them
//! durable, and then the broker publishes them. [`memory::MemoryBroker`] is
//! the single-node broker; the shared suite in `tests.rs` states the contract
//! every implementation must keep.

pub mod memory;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use pulse_core::protocol::{StreamPosition, Topic};

use crate::fanout::{Event, Frame, TopicReport};

/// Tuning of a broker and its fan-out; see `config` for the flags that set it.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
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

impl Default for BrokerConfig {
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
pub enum BrokerError {
    #[error("event could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Where a broker finds a prepared event's topic again on publish: its own
/// handle, opaque to everyone else but for the topic's name and epoch (the
/// memory broker keeps its topic log here, so publishing needs no lookup,
/// and an event carries one shared pointer to its topic, not three).
pub trait Route: std::any::Any + Send + Sync {
    fn topic(&self) -> &Arc<str>;
    fn epoch(&self) -> &Arc<str>;
}

/// An event with its offset, not yet visible to subscribers or recovery.
pub struct PendingEvent {
    pub(crate) route: Arc<dyn Route>,
    pub(crate) event: Arc<Event>,
}

impl PendingEvent {
    pub fn topic(&self) -> &str {
        self.route.topic()
    }

    pub fn epoch(&self) -> &str {
        self.route.epoch()
    }

    pub fn event(&self) -> &Event {
        &self.event
    }

    pub fn position(&self) -> Published {
        Published {
            epoch: Arc::clone(self.route.epoch()),
            offset: self.event.offset,
        }
    }
}

/// Where a published event landed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "StreamPosition")]
pub struct Published {
    pub epoch: Arc<str>,
    pub offset: u64,
}

impl From<StreamPosition> for Published {
    fn from(position: StreamPosition) -> Self {
        Published {
            epoch: position.epoch.into(),
            offset: position.offset,
        }
    }
}

impl Serialize for Published {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StreamPosition::from(self.clone()).serialize(serializer)
    }
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
    /// from a snapshot that was ahead of the published stream); drop them.
    pub skip_through: u64,
    pub receiver: broadcast::Receiver<Arc<Frame>>,
}

/// Sequencing, history and delivery of topics. Contract (checked for every
/// implementation by the shared suite):
/// - offsets of a topic increase by one from 1 within an epoch, in the order
///   events are prepared, and are published in that order;
/// - a subscriber gets every event published after it subscribed, once, in
///   order; with `since` in the current epoch and within the history, the
///   backlog holds exactly the events after `since`, and the live feed goes
///   on from there without a gap or repeat;
/// - a lost history (other epoch, truncated ring, removed topic) is said,
///   `recovered: false`, never papered over.
pub trait Broker: Send + Sync + 'static {
    fn config(&self) -> &BrokerConfig;

    /// Assigns `data_json` (already serialized, so data for several topics
    /// is encoded once) the next offset of `topic`; nobody sees it until
    /// [`Broker::publish`].
    fn prepare_json(
        &self,
        topic: &Topic,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> PendingEvent;

    /// [`Broker::prepare_json`] on the topic of an event this broker
    /// prepared before (its `route`), without finding the topic by name
    /// again. `None` when that topic has been removed or replaced since (or
    /// the broker keeps no such handles): the caller then names the topic.
    fn prepare_json_on(
        &self,
        route: Arc<dyn Route>,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Option<PendingEvent> {
        let _ = (route, data_json, conflation_key, source_ts);
        None
    }

    /// A follower's copy of an event the leader sequenced: it keeps the
    /// leader's epoch and offset instead of assigning its own. A topic whose
    /// epoch differs starts again under the leader's (its subscribers are
    /// dropped and resubscribe with `recovered: false`); an offset past the
    /// next one (log entries this node never got) clears the topic's
    /// history, so no client recovers across the hole.
    fn prepare_replica(
        &self,
        topic: &Topic,
        epoch: &str,
        offset: u64,
        body: Box<str>,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> PendingEvent;

    /// Starts every topic again under a new epoch seed (`<seed>-<topic>`),
    /// offsets kept, history and subscribers dropped: the cluster's data
    /// set changed (its log was lost), so no client may recover across it.
    fn reseed(&self, seed: &str);

    /// Topics this broker creates again after removing them carry `term`
    /// in their epoch from now on, so two leaders of one cluster never hand
    /// out the same epoch for different histories.
    fn begin_term(&self, term: &str);

    /// This broker follows a log that other nodes may be further along:
    /// a `since` ahead of what arrived here, in the same epoch, recovers
    /// (the events are on their way) and is skipped through, instead of
    /// being refused as impossible.
    fn follow_log(&self);

    /// Makes prepared events visible to subscribers and recovery, once they
    /// are durable. Events of one topic must come in offset order.
    fn publish(&self, events: Vec<PendingEvent>);

    /// Subscribes to `topic`, with what the client missed after `since`.
    fn subscribe(&self, topic: &Topic, since: Option<&StreamPosition>) -> Subscription;

    /// The position a snapshot taken now corresponds to. Asking about a
    /// topic that does not exist allocates nothing.
    fn position(&self, topic: &Topic) -> StreamPosition;

    /// Restores a topic persisted by an earlier run (its epoch, last offset
    /// and recent history, oldest first) before anything is published on it.
    fn restore(&self, topic: &Topic, epoch: &str, last_offset: u64, history: Vec<Event>);

    /// Removes `topic` if nobody is subscribed and nothing is in flight; a
    /// topic created again later starts a new epoch. `true` if removed.
    fn remove_if_unused(&self, topic: &Topic) -> bool;

    /// Number of topics that exist now.
    fn topic_count(&self) -> usize;

    /// Every topic's subscribers and counters, sorted by name.
    fn report(&self) -> Vec<TopicReport>;
}

impl dyn Broker {
    /// [`Broker::prepare_json`] for any serializable data.
    pub fn prepare<T: Serialize>(
        &self,
        topic: &Topic,
        data: &T,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Result<PendingEvent, BrokerError> {
        let data = serde_json::to_string(data)?;
        Ok(self.prepare_json(topic, &data, conflation_key, source_ts))
    }

    /// Prepares and publishes at once, for events nothing needs to store.
    pub fn publish_now<T: Serialize>(
        &self,
        topic: &Topic,
        data: &T,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Result<Published, BrokerError> {
        let pending = self.prepare(topic, data, conflation_key, source_ts)?;
        let published = pending.position();
        self.publish(vec![pending]);
        Ok(published)
    }
}
