//! Ingest's timed chores: what must happen even when no data arrives.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::now_ms;
use crate::ingest::Ingest;

/// Closes candles of quiet symbols when their interval ends.
pub async fn close_candles_on_time(ingest: Arc<Ingest>) {
    let mut timer = tokio::time::interval(Duration::from_millis(250));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if let Err(error) = ingest.close_due_candles(now_ms()).await {
            tracing::warn!(%error, "closing due candles failed");
        }
    }
}

/// Drops symbols that had no tick for `idle` and nobody watches, so the
/// tracked set only holds what is in use (see `--max-symbols`).
pub async fn forget_idle_symbols(ingest: Arc<Ingest>, idle: Duration, every: Duration) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let dropped = ingest.forget_idle_symbols(now_ms().saturating_sub(idle_ms));
        if !dropped.is_empty() {
            tracing::info!(count = dropped.len(), "idle symbols no longer tracked");
        }
    }
}
