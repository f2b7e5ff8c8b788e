//! Followers: the leader's commit groups applied to this node's engines,
//! views, topics and archive, in log order, so that any follower can take
//! over as leader with the same state.

use std::sync::Arc;

use serde::Deserialize;

use pulse_core::model::{Candle, Counts, Engagement, Post, Tick};
use pulse_core::protocol::Topic;

use super::Ingest;
use crate::storage::{Answer, CandleMerge, Commit, LogPosition, Replay, WriteBatch};

/// An event as the leader sequenced it.
#[derive(Debug, Deserialize)]
pub struct ReplicatedEvent {
    pub topic: String,
    pub epoch: String,
    pub offset: u64,
    pub body: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub ts: Option<i64>,
}

/// One of the leader's write batches, as its log carries it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplicatedBatch {
    pub events: Vec<ReplicatedEvent>,
    pub ticks: Vec<Tick>,
    pub candles: Vec<Candle>,
    /// Absent in groups written before backfills were merged.
    #[serde(default)]
    pub candle_merges: Vec<CandleMerge>,
    pub posts: Vec<Post>,
    pub engagement: Vec<(Engagement, Counts)>,
    pub replay: Replay,
}

/// What applying a group leaves to do once it is in this node's archive.
pub struct Applied {
    /// Resolves when the group is committed here (batches commit in order).
    pub commit: Option<Commit>,
    /// Forwarded requests the group answers.
    pub answers: Vec<Answer>,
}

impl Ingest {
    /// Applies one commit group of the leader's log. Views, topics and the
    /// archive change in the same step, under the ingest lock, as on the
    /// leader: a snapshot taken here plus `since` is exact on this node too.
    pub fn apply_replicated(
        &self,
        position: &LogPosition,
        batches: Vec<ReplicatedBatch>,
    ) -> Applied {
        let mut state = self.state();
        let mut commit = None;
        let mut answers = Vec::new();
        for replicated in batches {
            let mut batch = WriteBatch {
                replicated: Some(position.clone()),
                ..WriteBatch::default()
            };
            for event in replicated.events {
                let Ok(topic) = event.topic.parse::<Topic>() else {
                    tracing::warn!(topic = %event.topic, "the log carries an unknown topic; skipped");
                    continue;
                };
                if topic == Topic::Presence {
                    if let Some(presence) = presence_of(&event.body) {
                        self.set_cluster_presence(presence);
                    }
                }
                batch.events.push(self.broker.prepare_replica(
                    &topic,
                    &event.epoch,
                    event.offset,
                    event.body.into_boxed_str(),
                    event.key.map(Arc::from),
                    event.ts,
                ));
            }
            for tick in &replicated.ticks {
                let position = self
                    .broker
                    .position(&Topic::SymbolTicks(tick.symbol.clone()));
                drop(state.record_tick(tick, position.into()));
            }
            if let Some(due) = replicated.replay.closed_due {
                drop(state.market.close_due(due));
            }
            for post in &replicated.posts {
                drop(state.record_post(post));
            }
            for (event, _) in &replicated.engagement {
                if let Err(error) = state.engagement.apply(event) {
                    tracing::warn!(%error, "a replicated engagement event did not apply here");
                }
            }
            for symbol in &replicated.replay.forgotten {
                state.forget(symbol);
                self.broker
                    .remove_if_unused(&Topic::SymbolTicks(symbol.clone()));
                self.broker
                    .remove_if_unused(&Topic::Candles(symbol.clone()));
            }
            if let Some(change) = &replicated.replay.reaction {
                self.reactions.apply(change);
            }
            let mut replay = replicated.replay;
            answers.extend(replay.answers.take().map(|answer| *answer));
            batch.ticks = replicated.ticks;
            batch.candles = replicated.candles;
            batch.candle_merges = replicated.candle_merges;
            batch.posts = replicated.posts;
            batch.engagement = replicated.engagement;
            batch.replay = replay;
            commit = self.submit(batch);
        }
        Applied { commit, answers }
    }

    /// The cluster's data set changed (its log was lost): every topic
    /// starts again under `seed`, so clients reload instead of recovering.
    pub fn adopt_epoch(&self, seed: &str) {
        let mut state = self.state();
        self.broker.reseed(seed);
        let symbols: Vec<String> = state.recent_ticks.keys().cloned().collect();
        for symbol in symbols {
            let position = self.broker.position(&Topic::SymbolTicks(symbol.clone()));
            if let Some(entry) = state.recent_ticks.get_mut(&symbol) {
                entry.position = Some(position.into());
            }
        }
    }
}

/// The count inside a `presence` event body.
fn presence_of(body: &str) -> Option<pulse_core::model::Presence> {
    #[derive(Deserialize)]
    struct Body {
        data: pulse_core::model::Presence,
    }
    serde_json::from_str::<Body>(body).ok().map(|b| b.data)
}
