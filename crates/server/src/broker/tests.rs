//! The contract of [`Broker`], as one suite every implementation runs:
//! `crate::broker_contract_tests!(factory)` in the implementation's tests,
//! where `factory(config) -> Arc<dyn Broker>` gives a fresh, empty broker.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use pulse_core::protocol::{StreamPosition, Topic};

use super::{Broker, BrokerConfig, Subscription};

pub type Factory = fn(BrokerConfig) -> Arc<dyn Broker>;

/// Generates one `#[tokio::test]` per contract check for `factory`.
#[macro_export]
macro_rules! broker_contract_tests {
    ($factory:path) => {
        $crate::broker_contract_tests!(@tests $factory;
            offsets_increase_by_one_and_frames_are_valid_json,
            since_replays_missed_events_without_gaps_or_duplicates,
            stale_epoch_or_truncated_history_is_not_recovered,
            a_state_topic_hands_new_subscribers_its_latest_event,
            an_unused_topic_is_removed_and_comes_back_in_a_new_epoch,
            prepared_events_are_invisible_until_published,
            a_snapshot_ahead_of_the_stream_resumes_without_repeats,
            restored_topics_resume_their_epoch_and_offsets,
            replicas_keep_the_leaders_positions_and_never_recover_across_a_hole,
            a_reseed_starts_every_topic_again_and_keeps_its_offsets,
            one_publish_of_many_topics_keeps_each_topics_order,
            a_topic_without_subscribers_still_recovers_what_it_published,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::broker::tests::$name($factory).await;
            }
        )*
    };
}

fn config(history_len: usize) -> BrokerConfig {
    BrokerConfig {
        history_len,
        batch_window: Duration::from_millis(1),
        ..BrokerConfig::default()
    }
}

/// Offsets of the next frame (an `event` or a `batch`).
async fn next_offsets(sub: &mut Subscription) -> Vec<u64> {
    let frame = tokio::time::timeout(Duration::from_secs(10), sub.receiver.recv())
        .await
        .expect("a frame arrives")
        .expect("the channel is open");
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

/// Live offsets until `last` arrives.
async fn offsets_through(sub: &mut Subscription, last: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&last) {
        seen.extend(next_offsets(sub).await);
    }
    seen
}

fn publish(broker: &dyn Broker, topic: &Topic, data: Value) -> u64 {
    broker.publish_now(topic, &data, None, None).unwrap().offset
}

pub async fn offsets_increase_by_one_and_frames_are_valid_json(factory: Factory) {
    let broker = factory(config(100));
    let mut sub = broker.subscribe(&Topic::Posts, None);
    for i in 0..3 {
        assert_eq!(publish(&*broker, &Topic::Posts, json!({"i": i})), i + 1);
    }
    assert_eq!(offsets_through(&mut sub, 3).await, [1, 2, 3]);
}

pub async fn since_replays_missed_events_without_gaps_or_duplicates(factory: Factory) {
    let broker = factory(config(100));
    for i in 0..10 {
        publish(&*broker, &Topic::Posts, json!(i));
    }
    let epoch = broker.position(&Topic::Posts).epoch;
    let since = StreamPosition { epoch, offset: 6 };
    let mut sub = broker.subscribe(&Topic::Posts, Some(&since));
    assert!(sub.recovered);
    let backlog: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
    assert_eq!(backlog, [7, 8, 9, 10]);
    assert_eq!(sub.offset, 10);
    publish(&*broker, &Topic::Posts, json!(10));
    assert_eq!(offsets_through(&mut sub, 11).await, [11]);
}

pub async fn stale_epoch_or_truncated_history_is_not_recovered(factory: Factory) {
    let broker = factory(config(5));
    for i in 0..20 {
        publish(&*broker, &Topic::Posts, json!(i));
    }
    let epoch = broker.position(&Topic::Posts).epoch;
    let old = StreamPosition {
        epoch: epoch.clone(),
        offset: 3,
    };
    assert!(!broker.subscribe(&Topic::Posts, Some(&old)).recovered);
    let foreign = StreamPosition {
        epoch: "other".into(),
        offset: 19,
    };
    assert!(!broker.subscribe(&Topic::Posts, Some(&foreign)).recovered);
    let edge = StreamPosition { epoch, offset: 15 };
    let sub = broker.subscribe(&Topic::Posts, Some(&edge));
    assert!(sub.recovered);
    assert_eq!(sub.backlog.len(), 5);
}

pub async fn a_state_topic_hands_new_subscribers_its_latest_event(factory: Factory) {
    let states = factory(config(100));
    assert!(states.subscribe(&Topic::Presence, None).backlog.is_empty());
    for sessions in 1..=3 {
        publish(&*states, &Topic::Presence, json!({"sessions": sessions}));
    }
    let sub = states.subscribe(&Topic::Presence, None);
    let latest: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
    assert_eq!(latest, [3]);
    assert_eq!(sub.offset, 2, "announced just before the replayed state");
    assert!(!sub.recovered, "nothing was asked to be recovered");
    // Streams are not states: a plain subscription starts with what comes next.
    publish(&*states, &Topic::Posts, json!(1));
    assert!(states.subscribe(&Topic::Posts, None).backlog.is_empty());
    // The state does not depend on keeping a history.
    let without_history = factory(config(0));
    publish(&*without_history, &Topic::Presence, json!({"sessions": 1}));
    let sub = without_history.subscribe(&Topic::Presence, None);
    assert_eq!((sub.offset, sub.backlog.len()), (0, 1));
}

pub async fn an_unused_topic_is_removed_and_comes_back_in_a_new_epoch(factory: Factory) {
    let broker = factory(config(100));
    let topic = Topic::SymbolTicks("ZZ".into());
    let before = broker.position(&topic);
    assert_eq!(
        broker.topic_count(),
        0,
        "asking for a position allocates nothing"
    );
    publish(&*broker, &topic, json!({"i": 1}));
    let sub = broker.subscribe(&topic, None);
    assert!(!broker.remove_if_unused(&topic), "a subscriber keeps it");
    drop(sub);
    let pending = broker.prepare_json(&topic, "2", None, None);
    assert!(
        !broker.remove_if_unused(&topic),
        "an event in flight keeps it"
    );
    broker.publish(vec![pending]);
    // Subscribing flushes what is on its way; once that is out and the
    // subscriber gone, nothing holds the topic.
    drop(broker.subscribe(&topic, None));
    assert!(broker.remove_if_unused(&topic));
    assert_eq!(broker.topic_count(), 0);
    let after = broker.position(&topic);
    assert_ne!(after.epoch, before.epoch);
    let old = StreamPosition {
        epoch: before.epoch,
        offset: 1,
    };
    let sub = broker.subscribe(&topic, Some(&old));
    assert!(!sub.recovered, "history of the removed topic is gone");
    assert_eq!(sub.epoch.as_ref(), after.epoch);
}

pub async fn prepared_events_are_invisible_until_published(factory: Factory) {
    let broker = factory(config(100));
    publish(&*broker, &Topic::Ticks, json!(1));
    let pending = broker.prepare_json(&Topic::Ticks, "2", None, None);
    assert_eq!(pending.position().offset, 2);
    // A snapshot sees the prepared offset (its data may already contain it).
    assert_eq!(broker.position(&Topic::Ticks).offset, 2);
    let epoch = broker.position(&Topic::Ticks).epoch;
    let mut sub = broker.subscribe(&Topic::Ticks, Some(&StreamPosition { epoch, offset: 0 }));
    let backlog: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
    assert_eq!(backlog, [1], "the unpublished event is not in the backlog");
    broker.publish(vec![pending]);
    assert_eq!(
        offsets_through(&mut sub, 2).await,
        [2],
        "then it arrives live, once"
    );
}

pub async fn a_snapshot_ahead_of_the_stream_resumes_without_repeats(factory: Factory) {
    let broker = factory(config(100));
    publish(&*broker, &Topic::Posts, json!(1));
    let pending = broker.prepare_json(&Topic::Posts, "2", None, None);
    let snapshot = broker.position(&Topic::Posts);
    assert_eq!(snapshot.offset, 2);
    let mut sub = broker.subscribe(&Topic::Posts, Some(&snapshot));
    assert!(sub.recovered);
    assert!(sub.backlog.is_empty());
    assert_eq!(sub.skip_through, 2, "event 2 is already with the client");
    assert_eq!(sub.offset, 2);
    broker.publish(vec![pending]);
    publish(&*broker, &Topic::Posts, json!(3));
    // The live feed still carries 2; the subscriber drops it by skip_through.
    let live: Vec<u64> = offsets_through(&mut sub, 3).await;
    let kept: Vec<u64> = live.into_iter().filter(|o| *o > sub.skip_through).collect();
    assert_eq!(kept, [3]);
}

pub async fn restored_topics_resume_their_epoch_and_offsets(factory: Factory) {
    use crate::fanout::Event;
    let broker = factory(config(3));
    let history = (5..=9)
        .map(|offset| Event {
            offset,
            body: format!(r#"{{"topic":"posts","offset":{offset},"data":{offset}}}"#).into(),
            conflation_key: None,
            source_ts: None,
        })
        .collect();
    broker.restore(&Topic::Posts, "earlier", 9, history);
    let position = broker.position(&Topic::Posts);
    assert_eq!((position.epoch.as_str(), position.offset), ("earlier", 9));
    let since = StreamPosition {
        epoch: "earlier".into(),
        offset: 6,
    };
    let sub = broker.subscribe(&Topic::Posts, Some(&since));
    assert!(sub.recovered);
    let backlog: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
    assert_eq!(
        backlog,
        [7, 8, 9],
        "the ring keeps its newest history_len events"
    );
    assert_eq!(publish(&*broker, &Topic::Posts, json!(10)), 10);
}

fn body(offset: u64) -> Box<str> {
    format!(r#"{{"topic":"posts","offset":{offset},"data":{offset}}}"#).into()
}

pub async fn replicas_keep_the_leaders_positions_and_never_recover_across_a_hole(factory: Factory) {
    let follower = factory(config(100));
    let mut sub = follower.subscribe(&Topic::Posts, None);
    for offset in 1..=3 {
        let event =
            follower.prepare_replica(&Topic::Posts, "lead", offset, body(offset), None, None);
        assert_eq!(event.position().offset, offset);
        follower.publish(vec![event]);
    }
    // The subscriber made before the leader's epoch was known is dropped.
    let dropped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if sub.receiver.recv().await.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        dropped.is_ok(),
        "a subscriber of the replaced epoch is closed"
    );
    let position = follower.position(&Topic::Posts);
    assert_eq!((position.epoch.as_str(), position.offset), ("lead", 3));
    let since = |offset| StreamPosition {
        epoch: "lead".into(),
        offset,
    };
    let sub = follower.subscribe(&Topic::Posts, Some(&since(1)));
    assert!(sub.recovered);
    assert_eq!(
        sub.backlog.iter().map(|e| e.offset).collect::<Vec<_>>(),
        [2, 3]
    );
    // Entries 4..=6 never reached this node.
    let event = follower.prepare_replica(&Topic::Posts, "lead", 7, body(7), None, None);
    follower.publish(vec![event]);
    assert!(
        !follower.subscribe(&Topic::Posts, Some(&since(2))).recovered,
        "no recovery across the hole"
    );
    let sub = follower.subscribe(&Topic::Posts, Some(&since(6)));
    assert!(sub.recovered);
    assert_eq!(
        sub.backlog.iter().map(|e| e.offset).collect::<Vec<_>>(),
        [7]
    );
}

pub async fn a_reseed_starts_every_topic_again_and_keeps_its_offsets(factory: Factory) {
    let broker = factory(config(100));
    for i in 0..4 {
        publish(&*broker, &Topic::Posts, json!(i));
    }
    let before = broker.position(&Topic::Posts);
    broker.reseed("fresh");
    let after = broker.position(&Topic::Posts);
    assert_eq!(after.epoch, "fresh-posts");
    assert_eq!(after.offset, before.offset);
    assert!(!broker.subscribe(&Topic::Posts, Some(&before)).recovered);
    assert_eq!(publish(&*broker, &Topic::Posts, json!(5)), 5);
    assert_eq!(
        broker.position(&Topic::Engagement).epoch,
        "fresh-engagement"
    );
}

/// One call with events of several topics, interleaved as a batch of ticks
/// makes them, small (one batch) and large (a commit group of many).
pub async fn one_publish_of_many_topics_keeps_each_topics_order(factory: Factory) {
    for rounds in [2, 30] {
        let broker = factory(config(1_000));
        let topics = [
            Topic::Ticks,
            Topic::SymbolTicks("A".into()),
            Topic::Candles("A".into()),
        ];
        let mut subs: Vec<Subscription> = topics
            .iter()
            .map(|topic| broker.subscribe(topic, None))
            .collect();
        let mut pending = Vec::new();
        for round in 0..rounds {
            for topic in &topics {
                pending.push(broker.prepare_json(topic, &round.to_string(), None, None));
            }
            // A candle topic gets two events per tick.
            pending.push(broker.prepare_json(&topics[2], "0", None, None));
        }
        broker.publish(pending);
        let last = [rounds, rounds, 2 * rounds];
        for ((topic, sub), last) in topics.iter().zip(&mut subs).zip(last) {
            let expected: Vec<u64> = (1..=last).collect();
            assert_eq!(offsets_through(sub, last).await, expected, "{topic} live");
            let since = StreamPosition {
                epoch: sub.epoch.to_string(),
                offset: 0,
            };
            let backlog: Vec<u64> = broker
                .subscribe(topic, Some(&since))
                .backlog
                .iter()
                .map(|e| e.offset)
                .collect();
            assert_eq!(backlog, expected, "{topic} history");
        }
    }
}

/// Events of a topic nobody listens to cost no frame, but a subscriber that
/// comes later recovers them, and the live feed goes on after them.
pub async fn a_topic_without_subscribers_still_recovers_what_it_published(factory: Factory) {
    let broker = factory(config(100));
    let topic = Topic::SymbolTicks("Q".into());
    for i in 0..3 {
        publish(&*broker, &topic, json!(i));
    }
    let position = broker.position(&topic);
    let since = StreamPosition {
        epoch: position.epoch.clone(),
        offset: 1,
    };
    let mut sub = broker.subscribe(&topic, Some(&since));
    assert!(sub.recovered);
    let backlog: Vec<u64> = sub.backlog.iter().map(|e| e.offset).collect();
    assert_eq!(backlog, [2, 3]);
    publish(&*broker, &topic, json!(3));
    assert_eq!(offsets_through(&mut sub, 4).await, [4]);
    let report = broker.report();
    let counted = report.iter().find(|r| *r.topic == *"ticks:Q").unwrap();
    assert_eq!(counted.published, 4, "every event is counted");
}
