//! What travels through Redis: commit groups on the log, forwarded writes
//! in the inbox. JSON, so an operator can read both with `XRANGE`.

use serde::{Deserialize, Serialize};

use pulse_core::model::{Candle, Counts, Engagement, Post, Tick};

use crate::ingest::{Forwarded, ReplicatedBatch};
use crate::storage::{CandleMerge, Replay, WriteBatch};

/// A leader's commit group as it appends it (borrowing its batches).
#[derive(Serialize)]
pub struct GroupOut<'a> {
    pub epoch: &'a str,
    /// The lease token of the leader that wrote it.
    pub token: &'a str,
    pub g: u64,
    pub batches: Vec<BatchOut<'a>>,
}

#[derive(Serialize)]
pub struct BatchOut<'a> {
    events: Vec<EventOut<'a>>,
    ticks: &'a [Tick],
    candles: &'a [Candle],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    candle_merges: &'a [CandleMerge],
    posts: &'a [Post],
    engagement: &'a [(Engagement, Counts)],
    replay: &'a Replay,
}

#[derive(Serialize)]
struct EventOut<'a> {
    topic: &'a str,
    epoch: &'a str,
    offset: u64,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<i64>,
}

impl<'a> BatchOut<'a> {
    pub fn of(batch: &'a WriteBatch) -> Self {
        Self {
            events: batch
                .events
                .iter()
                .map(|pending| EventOut {
                    topic: pending.topic(),
                    epoch: pending.epoch(),
                    offset: pending.event().offset,
                    body: &pending.event().body,
                    key: pending.event().conflation_key.as_deref(),
                    ts: pending.event().source_ts,
                })
                .collect(),
            ticks: &batch.ticks,
            candles: &batch.candles,
            candle_merges: &batch.candle_merges,
            posts: &batch.posts,
            engagement: &batch.engagement,
            replay: &batch.replay,
        }
    }
}

/// A commit group as a follower reads it.
#[derive(Deserialize)]
pub struct GroupIn {
    pub epoch: String,
    pub token: String,
    pub g: u64,
    pub batches: Vec<ReplicatedBatch>,
}

/// A write forwarded to the leader.
#[derive(Serialize, Deserialize)]
pub struct InboxEntry {
    pub node: String,
    pub request: u64,
    pub write: Forwarded,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::memory::MemoryBroker;
    use crate::broker::{Broker, BrokerConfig};
    use pulse_core::protocol::Topic;

    #[tokio::test]
    async fn a_group_reads_back_as_the_leader_wrote_it() {
        let broker: std::sync::Arc<dyn Broker> = MemoryBroker::new(BrokerConfig::default(), "e");
        let tick = Tick {
            symbol: "ACME".into(),
            price: 0.1 + 0.2,
            volume: 1e-7,
            ts: 1_700_000_000_123,
        };
        let batch = WriteBatch {
            events: vec![broker
                .prepare(&Topic::Ticks, &tick, Some("ACME".into()), Some(tick.ts))
                .expect("serializes")],
            ticks: vec![tick.clone()],
            ..WriteBatch::default()
        };
        let json = serde_json::to_string(&GroupOut {
            epoch: "e",
            token: "n1:x",
            g: 7,
            batches: vec![BatchOut::of(&batch)],
        })
        .expect("serializes");
        let back: GroupIn = serde_json::from_str(&json).expect("parses");
        assert_eq!(
            (back.epoch.as_str(), back.token.as_str(), back.g),
            ("e", "n1:x", 7)
        );
        let replicated = &back.batches[0];
        assert_eq!(replicated.ticks, [tick], "floats survive exactly");
        let event = &replicated.events[0];
        assert_eq!(event.topic, "ticks");
        assert_eq!(event.epoch, "e-ticks");
        assert_eq!(event.offset, 1);
        assert_eq!(event.body, &*batch.events[0].event().body);
        assert_eq!(event.key.as_deref(), Some("ACME"));
    }
}
