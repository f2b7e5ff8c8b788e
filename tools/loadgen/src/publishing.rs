//! The publish phase: spawn the publishers, print a progress line every
//! second while they run, and collect what they sent.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinHandle;

use crate::args::Args;
use crate::publisher::{publisher, shares, PubResult};
use crate::shared::Shared;

/// What the publishers achieved together.
pub struct Published {
    /// Events actually sent (at most the planned total).
    pub events: u64,
    pub errors: u64,
    /// The worst lag of any publisher behind its schedule.
    pub lag_max_ms: f64,
    /// When publishing started; the drain is timed from here too.
    pub start: Instant,
    pub secs: f64,
}

/// Publishes `total` events at `--rate` over `--publishers` connections.
pub async fn publish(
    args: &Args,
    symbol: Option<&str>,
    total: u64,
    shared: &Arc<Shared>,
) -> Published {
    println!(
        "loadgen: publishing {total} events at {} ev/s over {} publisher(s) for {} s",
        args.rate, args.publishers, args.duration
    );
    let start = Instant::now();
    let url: Arc<str> = args.url.as_str().into();
    let tasks: Vec<_> = shares(total, args.publishers as u64)
        .into_iter()
        .map(|share| {
            tokio::spawn(publisher(
                Arc::clone(&url),
                args.token.clone(),
                symbol.map(str::to_owned),
                args.rate / args.publishers as f64,
                share,
                Arc::clone(shared),
            ))
        })
        .collect();
    // A stuck publisher must not hang the run.
    let deadline = start + Duration::from_secs_f64(args.duration * 3.0 + 10.0);
    show_progress(&tasks, shared, start, deadline).await;
    let sum = collect(tasks).await;
    Published {
        // Count what was actually sent (a failed publisher may have sent some).
        events: shared.sends.recorded().max(sum.sent.min(total)),
        errors: sum.errors,
        lag_max_ms: sum.lag_max_ms,
        start,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// One line a second until the publishers are done or `deadline` passes.
async fn show_progress(
    tasks: &[JoinHandle<Result<PubResult>>],
    shared: &Shared,
    start: Instant,
    deadline: Instant,
) {
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.tick().await;
    let mut last_delivered = 0;
    let mut last_at = Instant::now();
    while tasks.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        progress.tick().await;
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let now = Instant::now();
        println!(
            "loadgen: t={:5.1}s published {:>9} delivered {:>11} ({:>9.0}/s) connected {}",
            start.elapsed().as_secs_f64(),
            shared.sends.claimed(),
            delivered,
            (delivered - last_delivered) as f64 / now.duration_since(last_at).as_secs_f64(),
            shared.connected.load(Ordering::Relaxed),
        );
        last_delivered = delivered;
        last_at = now;
    }
}

/// Sums the finished publishers' results; aborts those still running.
async fn collect(tasks: Vec<JoinHandle<Result<PubResult>>>) -> PubResult {
    let mut sum = PubResult {
        sent: 0,
        errors: 0,
        lag_max_ms: 0.0,
    };
    for task in tasks {
        if !task.is_finished() {
            task.abort();
            eprintln!("loadgen: a publisher did not finish in time");
            continue;
        }
        match task.await {
            Ok(Ok(result)) => {
                sum.sent += result.sent;
                sum.errors += result.errors;
                sum.lag_max_ms = sum.lag_max_ms.max(result.lag_max_ms);
            }
            Ok(Err(error)) => eprintln!("loadgen: publisher failed: {error:#}"),
            Err(error) => eprintln!("loadgen: publisher task failed: {error}"),
        }
    }
    sum
}
