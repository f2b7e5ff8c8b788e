//! Runs the simulated feed through ingest, like any producer.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::social::SocialGenerator;
use super::{SimulatorConfig, TickGenerator};
use crate::clock::now_ms;
use crate::ingest::{self, Ingest};

/// Starts the feed: on an empty node it first generates a past (so the
/// dashboard is full on first paint); a node with data goes on from its
/// last prices.
pub async fn start(config: SimulatorConfig, ingest: Arc<Ingest>, fresh: bool) -> JoinHandle<()> {
    let mut feed = SimulatedFeed::new(&config);
    if fresh {
        backfill(&config, &mut feed, &ingest).await;
    } else {
        let last: Vec<(String, f64)> = ingest
            .summaries()
            .into_iter()
            .map(|s| (s.symbol, s.last))
            .collect();
        feed.ticks.resume_from(&last);
    }
    tokio::spawn(run(config, feed, ingest))
}

/// Generates the simulator's past so the dashboard is full on first paint.
async fn backfill(config: &SimulatorConfig, feed: &mut SimulatedFeed, ingest: &Ingest) {
    let now = now_ms();
    let max_ticks = ingest::RECENT_TICKS_PER_SYMBOL * config.symbols.len();
    for ts in config.backfill_times(now, max_ticks) {
        if let Err(error) = ingest.tick(feed.ticks.next_tick(ts), now).await {
            tracing::warn!(%error, "backfilled tick rejected");
        }
    }
    // A screenful of earlier posts, spread over the backfill window, some with engagement.
    let backfill_ms = (config.backfill_secs * 1000) as i64;
    let posts = ((config.backfill_secs as f64 * config.post_rate) as i64).min(40);
    for i in 0..posts {
        let ts = now - backfill_ms + backfill_ms * i / posts.max(1);
        feed.post(ingest, ts).await;
        for _ in 0..(config.engagement_rate / config.post_rate.max(0.01)).min(10.0) as usize {
            feed.engage(ingest, ts).await;
        }
    }
}

/// The simulator's generators.
struct SimulatedFeed {
    ticks: TickGenerator,
    social: SocialGenerator,
}

impl SimulatedFeed {
    fn new(config: &SimulatorConfig) -> Self {
        Self {
            ticks: TickGenerator::new(config),
            social: SocialGenerator::new(config.seed, config.symbols.clone()),
        }
    }

    async fn post(&mut self, ingest: &Ingest, ts: i64) {
        let post = self.social.next_post(ts);
        if let Err(error) = ingest.posts(vec![post], now_ms()).await {
            tracing::warn!(%error, "simulated post rejected");
        }
    }

    async fn engage(&mut self, ingest: &Ingest, ts: i64) {
        let recent = ingest.recent_post_ids(30);
        if let Some(event) = self.social.next_engagement(&recent, ts) {
            if let Err(error) = ingest.engagements(vec![event], now_ms()).await {
                tracing::warn!(%error, "simulated engagement rejected");
            }
        }
    }
}

/// Feeds simulated data at the configured rates until aborted.
async fn run(config: SimulatorConfig, mut feed: SimulatedFeed, ingest: Arc<Ingest>) {
    // Wake at most every 10 ms and catch up on however many items are due, so
    // high rates do not depend on timer resolution.
    let period = config.tick_interval().max(Duration::from_millis(10));
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let (mut ticks, mut posts, mut engagements) = (0u64, 0u64, 0u64);
    loop {
        timer.tick().await;
        let elapsed = started.elapsed().as_secs_f64();
        let due = |rate: f64| (elapsed * rate) as u64;
        if !ingest.sequences_here() {
            // A cluster's follower: the leader simulates for everyone, and
            // a node that takes over later does not replay the missed time.
            (ticks, posts, engagements) = (
                due(config.tick_rate),
                due(config.post_rate),
                due(config.engagement_rate),
            );
            continue;
        }
        while ticks < due(config.tick_rate) {
            ticks += 1;
            let now = now_ms();
            if let Err(error) = ingest.tick(feed.ticks.next_tick(now), now).await {
                tracing::warn!(%error, "simulated tick rejected");
            }
        }
        while posts < due(config.post_rate) {
            posts += 1;
            feed.post(&ingest, now_ms()).await;
        }
        while engagements < due(config.engagement_rate) {
            engagements += 1;
            feed.engage(&ingest, now_ms()).await;
        }
    }
}
