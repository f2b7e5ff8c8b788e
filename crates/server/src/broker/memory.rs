//! The single-node broker: offsets and history in memory, delivery through
//! this node's fan-out.
//!
//! Every topic has an epoch (new whenever its history is lost, e.g. a
//! restart without persistence), a per-event offset and a bounded history,
//! so a reconnecting client can ask for what it missed.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use pulse_core::protocol::{StreamPosition, Topic};

use super::{Broker, BrokerConfig, PendingEvent, Route, Subscription};
use crate::fanout::{Batching, Event, LocalTopic, TopicReport};
use crate::sync::{lock, read, write};

/// Topics one publish groups its events by with a scan; beyond, a map.
const SCANNED_TOPICS: usize = 8;
/// Events one publish hands over run by run instead of grouped by topic:
/// a batch of a few ticks, a post and its sentiment updates.
const RUNS_UP_TO: usize = 16;

/// Topics by name, created on first use.
pub struct MemoryBroker {
    config: BrokerConfig,
    epoch_seed: RwLock<String>,
    topics: RwLock<HashMap<Topic, Arc<TopicLog>>>,
    /// Topics removed so far (see [`MemoryBroker::fresh_epoch`]).
    removals: AtomicU64,
    /// The leadership term re-created topics carry (see [`Broker::begin_term`]).
    term: RwLock<String>,
    /// See [`Broker::follow_log`].
    follows_log: std::sync::atomic::AtomicBool,
}

/// One topic: its order and history here, its subscribers in `local`.
struct TopicLog {
    epoch: Arc<str>,
    /// Events kept for recovery on this topic.
    history_len: usize,
    /// New subscribers without `since` get the latest event (see [`Topic::is_state`]).
    replays_latest: bool,
    local: Arc<LocalTopic>,
    /// Taken before `local`'s own lock, never after.
    state: Mutex<LogState>,
}

impl Route for TopicLog {
    fn topic(&self) -> &Arc<str> {
        self.local.name()
    }

    fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }
}

struct LogState {
    /// Offset of the most recently prepared event (0 before the first).
    last_offset: u64,
    /// Offset of the newest published event.
    published_offset: u64,
    history: VecDeque<Arc<Event>>,
    /// The newest published event of a state topic (kept even without history).
    latest: Option<Arc<Event>>,
}

impl TopicLog {
    /// Makes a published event part of the history (in offset order).
    fn keep(&self, state: &mut LogState, event: &Arc<Event>) {
        if self.history_len > 0 {
            if state.history.len() >= self.history_len {
                state.history.pop_front();
            }
            state.history.push_back(Arc::clone(event));
        }
        state.published_offset = event.offset;
        if self.replays_latest {
            state.latest = Some(Arc::clone(event));
        }
    }

    /// The topic's next event, with its offset assigned.
    fn next_event(
        &self,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Arc<Event> {
        let offset = {
            let mut state = lock(&self.state);
            state.last_offset += 1;
            state.last_offset
        };
        // Topic names are validated ([a-zA-Z0-9:.-]): quoting needs no
        // escaping. Sized up front: this runs under the ingest lock, and
        // `format!` grew the string two or three times per event.
        let name = self.local.name();
        let mut body = String::with_capacity(name.len() + data_json.len() + 48);
        body.push_str(r#"{"topic":""#);
        body.push_str(name);
        body.push_str(r#"","offset":"#);
        // Writing to a String cannot fail.
        let _ = write!(body, "{offset}");
        body.push_str(r#","data":"#);
        body.push_str(data_json);
        body.push('}');
        Arc::new(Event {
            offset,
            body: body.into_boxed_str(),
            conflation_key,
            source_ts,
        })
    }
}

/// Publishes one batch's events (a few topics) run by run: consecutive
/// events of one topic under one lock, with nothing allocated (in memory
/// this runs under the ingest lock).
fn publish_runs(events: Vec<PendingEvent>) {
    let mut events = events.into_iter().peekable();
    while let Some(PendingEvent { route, event }) = events.next() {
        let rest = std::iter::from_fn(|| {
            events
                .next_if(|next| Arc::ptr_eq(&next.route, &route))
                .map(|next| next.event)
        });
        hand_over(&route, std::iter::once(event).chain(rest));
    }
}

/// Publishes a commit group's events (many batches, up to a few topics per
/// symbol they touch) grouped by topic, in first-seen order: each topic's
/// events are taken under one lock and handed to its flusher at once, in
/// offset order, instead of one by one.
fn publish_grouped(events: Vec<PendingEvent>) {
    /// A topic and its events of this publish.
    type Group = (Arc<dyn Route>, Vec<Arc<Event>>);
    let mut by_topic: Vec<Group> = Vec::new();
    let mut index: HashMap<*const (), usize> = HashMap::new();
    for PendingEvent { route, event } in events {
        // A few topics are found by a scan; a map indexes them beyond.
        let known = if by_topic.len() <= SCANNED_TOPICS {
            by_topic
                .iter()
                .position(|(known, _)| Arc::ptr_eq(known, &route))
        } else {
            if index.is_empty() {
                index.extend(
                    by_topic
                        .iter()
                        .enumerate()
                        .map(|(i, (known, _))| (address(known), i)),
                );
            }
            index.get(&address(&route)).copied()
        };
        match known {
            Some(at) => by_topic[at].1.push(event),
            None => {
                if !index.is_empty() {
                    index.insert(address(&route), by_topic.len());
                }
                by_topic.push((route, vec![event]));
            }
        }
    }
    for (route, events) in by_topic {
        hand_over(&route, events);
    }
}

/// Makes one topic's events (in offset order) part of its history and
/// hands them to its flusher, under the topic's lock.
fn hand_over(route: &Arc<dyn Route>, events: impl IntoIterator<Item = Arc<Event>>) {
    let Some(log) = downcast(route) else {
        debug_assert!(false, "an event of another broker");
        return;
    };
    let mut state = lock(&log.state);
    let kept = events
        .into_iter()
        .inspect(|event| log.keep(&mut state, event));
    log.local.deliver_all(kept);
}

/// A route's identity (its topic log's address).
fn address(route: &Arc<dyn Route>) -> *const () {
    Arc::as_ptr(route).cast()
}

/// The topic log behind a route; `None` for another broker's route.
fn downcast(route: &Arc<dyn Route>) -> Option<&TopicLog> {
    let any: &dyn std::any::Any = route.as_ref();
    any.downcast_ref::<TopicLog>()
}

impl MemoryBroker {
    /// `epoch_seed` should differ between runs whose histories differ (a
    /// random or time-based string when nothing is persisted).
    pub fn new(config: BrokerConfig, epoch_seed: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            config,
            epoch_seed: RwLock::new(epoch_seed.into()),
            topics: RwLock::new(HashMap::new()),
            removals: AtomicU64::new(0),
            term: RwLock::new(String::new()),
            follows_log: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn log(&self, topic: &Topic) -> Arc<TopicLog> {
        if let Some(log) = read(&self.topics).get(topic) {
            return Arc::clone(log);
        }
        self.create_log(topic, None)
    }

    /// Creates `topic` (if it does not exist yet) with the given epoch, or
    /// one derived from this broker's seed.
    fn create_log(&self, topic: &Topic, epoch: Option<&str>) -> Arc<TopicLog> {
        let mut topics = write(&self.topics);
        let log = topics.entry(topic.clone()).or_insert_with(|| {
            let per_symbol = topic.symbol().is_some();
            let (history_len, capacity) = if per_symbol {
                (
                    self.config.symbol_history_len.min(self.config.history_len),
                    self.config.symbol_channel_capacity,
                )
            } else {
                (self.config.history_len, self.config.channel_capacity)
            };
            let batching = Batching {
                window: self.config.batch_window,
                max_events: self.config.max_batch,
            };
            Arc::new(TopicLog {
                epoch: epoch
                    .map_or_else(|| self.fresh_epoch(topic), str::to_owned)
                    .into(),
                history_len,
                replays_latest: topic.is_state(),
                local: LocalTopic::open(
                    topic.to_string().into(),
                    capacity,
                    topic.is_market_data(),
                    batching,
                ),
                state: Mutex::new(LogState {
                    last_offset: 0,
                    published_offset: 0,
                    history: VecDeque::new(),
                    latest: None,
                }),
            })
        });
        Arc::clone(log)
    }

    /// The epoch a topic created now gets. Once any topic has been removed,
    /// epochs carry the removal count, so a topic created again never
    /// shares an epoch with its earlier life.
    fn fresh_epoch(&self, topic: &Topic) -> String {
        let seed = read(&self.epoch_seed);
        match self.removals.load(Relaxed) {
            0 => format!("{seed}-{topic}"),
            n => format!("{seed}.{}{n}-{topic}", read(&self.term)),
        }
    }

    /// Replaces `topic`'s log by an empty one under `epoch` that goes on
    /// after `last_offset`; the old one's subscribers are dropped.
    fn restart_log(&self, topic: &Topic, epoch: &str, last_offset: u64) -> Arc<TopicLog> {
        if let Some(old) = write(&self.topics).remove(topic) {
            old.local.close();
        }
        let log = self.create_log(topic, Some(epoch));
        let mut state = lock(&log.state);
        state.last_offset = last_offset;
        state.published_offset = last_offset;
        drop(state);
        log
    }
}

impl Broker for MemoryBroker {
    fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn prepare_json(
        &self,
        topic: &Topic,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> PendingEvent {
        let log = self.log(topic);
        let event = log.next_event(data_json, conflation_key, source_ts);
        PendingEvent { route: log, event }
    }

    fn prepare_json_on(
        &self,
        route: Arc<dyn Route>,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> Option<PendingEvent> {
        // A closed log was removed or replaced: its events would reach nobody.
        let log = downcast(&route).filter(|log| !log.local.is_closed())?;
        let event = log.next_event(data_json, conflation_key, source_ts);
        Some(PendingEvent { route, event })
    }

    fn prepare_replica(
        &self,
        topic: &Topic,
        epoch: &str,
        offset: u64,
        body: Box<str>,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> PendingEvent {
        let mut log = self.log(topic);
        if *log.epoch != *epoch {
            log = self.restart_log(topic, epoch, offset.saturating_sub(1));
        }
        let mut state = lock(&log.state);
        if offset != state.last_offset + 1 {
            // Entries this node never got (or, impossible with the log's
            // checks, a repeat): recovery must not reach across them.
            state.history.clear();
            state.latest = None;
            state.published_offset = offset.saturating_sub(1);
        }
        state.last_offset = offset;
        drop(state);
        PendingEvent {
            route: log,
            event: Arc::new(Event {
                offset,
                body,
                conflation_key,
                source_ts,
            }),
        }
    }

    fn begin_term(&self, term: &str) {
        *write(&self.term) = format!("{term}.");
    }

    fn follow_log(&self) {
        self.follows_log.store(true, Relaxed);
    }

    fn reseed(&self, seed: &str) {
        *write(&self.epoch_seed) = seed.to_owned();
        let topics: Vec<(Topic, u64)> = read(&self.topics)
            .iter()
            .map(|(topic, log)| (topic.clone(), lock(&log.state).last_offset))
            .collect();
        for (topic, last_offset) in topics {
            let epoch = format!("{seed}-{topic}");
            self.restart_log(&topic, &epoch, last_offset);
        }
    }

    fn publish(&self, events: Vec<PendingEvent>) {
        if events.len() <= RUNS_UP_TO {
            publish_runs(events);
        } else {
            publish_grouped(events);
        }
    }

    /// With `since`, events after that position are returned in `backlog`
    /// when the history still reaches back to it; the live receiver then
    /// continues exactly where the backlog ends. The topic's lock is held
    /// throughout, so nothing is published in between.
    fn subscribe(&self, topic: &Topic, since: Option<&StreamPosition>) -> Subscription {
        let log = self.log(topic);
        let state = lock(&log.state);
        // Flushing first makes "everything up to the current offset" well
        // defined: it is in the history, and nothing older is still in flight.
        log.local.flush();
        let receiver = log.local.subscribe();
        let current = state.published_offset;
        let (recovered, backlog) = match since {
            None if log.replays_latest => {
                let latest = state.latest.as_ref().filter(|e| e.offset <= current);
                (true, latest.cloned().into_iter().collect())
            }
            None => (true, Vec::new()),
            Some(position) if *position.epoch != *log.epoch => (false, Vec::new()),
            // The client already holds events that are prepared but not yet
            // published (they were in a snapshot): it resumes after them.
            Some(position) if position.offset >= current => (
                position.offset <= state.last_offset || self.follows_log.load(Relaxed),
                Vec::new(),
            ),
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
            topic: Arc::clone(log.local.name()),
            epoch: Arc::clone(&log.epoch),
            offset,
            skip_through,
            recovered: recovered && since.is_some(),
            backlog,
            receiver,
        }
    }

    fn position(&self, topic: &Topic) -> StreamPosition {
        match read(&self.topics).get(topic) {
            Some(log) => StreamPosition {
                epoch: log.epoch.to_string(),
                offset: lock(&log.state).last_offset,
            },
            None => StreamPosition {
                epoch: self.fresh_epoch(topic),
                offset: 0,
            },
        }
    }

    fn restore(&self, topic: &Topic, epoch: &str, last_offset: u64, history: Vec<Event>) {
        let log = self.create_log(topic, Some(epoch));
        let mut state = lock(&log.state);
        state.last_offset = last_offset;
        state.published_offset = last_offset;
        let keep = history.len().saturating_sub(log.history_len);
        state.history = history.into_iter().skip(keep).map(Arc::new).collect();
        if log.replays_latest {
            state.latest = state.history.back().cloned();
        }
    }

    fn remove_if_unused(&self, topic: &Topic) -> bool {
        let mut topics = write(&self.topics);
        let Some(log) = topics.get(topic) else {
            return false;
        };
        {
            let state = lock(&log.state);
            if log.local.subscribers() > 0
                || state.last_offset != state.published_offset
                || log.local.has_pending()
            {
                return false;
            }
        }
        if let Some(log) = topics.remove(topic) {
            self.removals.fetch_add(1, Relaxed);
            log.local.close();
        }
        true
    }

    fn topic_count(&self) -> usize {
        read(&self.topics).len()
    }

    fn report(&self) -> Vec<TopicReport> {
        let mut reports: Vec<_> = read(&self.topics)
            .values()
            .map(|log| log.local.report())
            .collect();
        reports.sort_by(|a, b| a.topic.cmp(&b.topic));
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(config: BrokerConfig) -> Arc<dyn Broker> {
        MemoryBroker::new(config, "test")
    }

    crate::broker_contract_tests!(memory);

    #[tokio::test]
    async fn a_remembered_route_prepares_on_its_topic_until_the_topic_is_gone() {
        let broker = memory(BrokerConfig::default());
        let topic = Topic::SymbolTicks("R".into());
        let first = broker.prepare_json(&topic, "1", None, None);
        let route = Arc::clone(&first.route);
        broker.publish(vec![first]);
        let second = broker
            .prepare_json_on(Arc::clone(&route), "2", None, None)
            .expect("the topic still exists");
        assert_eq!(second.position(), broker.position(&topic).into());
        assert_eq!(second.event().offset, 2);
        broker.publish(vec![second]);

        assert!(broker.remove_if_unused(&topic));
        assert!(
            broker
                .prepare_json_on(Arc::clone(&route), "3", None, None)
                .is_none(),
            "a removed topic's events would reach nobody"
        );
        let again = broker.prepare_json(&topic, "3", None, None);
        let route = Arc::clone(&again.route);
        broker.publish(vec![again]);
        broker.reseed("next");
        assert!(
            broker.prepare_json_on(route, "4", None, None).is_none(),
            "a replaced topic's neither"
        );
    }
}
