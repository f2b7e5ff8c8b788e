//! The subscribers as a group: spawn them all, wait until each has
//! subscribed or given up, and at the end stop them and collect their stats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::args::Args;
use crate::shared::Shared;
use crate::sub_stats::SubStats;
use crate::subscriber::{subscriber, SubscriberPlan};

/// The running subscriber tasks.
pub struct Fleet {
    tasks: Vec<JoinHandle<Option<SubStats>>>,
    stop: watch::Sender<bool>,
}

/// How the connect phase went.
pub struct Connected {
    pub ok: usize,
    pub failed: usize,
    /// From the first spawn to the last subscriber subscribed or failed.
    pub secs: f64,
    pub first_error: Option<String>,
}

impl Fleet {
    /// Spawns `--subscribers` tasks (at most `--connect-concurrency` connect
    /// at once) and waits until every one has subscribed or failed.
    pub async fn connect(args: &Args, shared: &Arc<Shared>) -> (Fleet, Connected) {
        let plan = Arc::new(SubscriberPlan {
            urls: if args.subscriber_urls.is_empty() {
                vec![args.url.as_str().into()]
            } else {
                args.subscriber_urls
                    .iter()
                    .map(|u| u.as_str().into())
                    .collect()
            },
            topic: args.topic.as_str().into(),
            attempts: args.connect_attempts,
            permits: Semaphore::new(args.connect_concurrency.max(1)),
            quickack: args.quickack,
        });
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let start = Instant::now();
        let tasks = (0..args.subscribers)
            .map(|index| {
                tokio::spawn(subscriber(
                    index,
                    Arc::clone(&plan),
                    Arc::clone(shared),
                    ready_tx.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        drop(ready_tx);
        let connected = wait_for_subscriptions(ready_rx, args.subscribers, start).await;
        (Fleet { tasks, stop }, connected)
    }

    /// Tells every subscriber to close.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the subscribers and returns the stats of those that connected.
    pub async fn finish(self) -> Vec<SubStats> {
        self.stop();
        let mut all = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            if let Ok(Some(stats)) = task.await {
                all.push(stats);
            }
        }
        all
    }
}

/// Counts readiness reports, printing progress every 2 s.
async fn wait_for_subscriptions(
    mut ready: mpsc::UnboundedReceiver<Result<(), String>>,
    expected: usize,
    start: Instant,
) -> Connected {
    let mut ok = 0usize;
    let mut failed = 0usize;
    let mut first_error = None;
    let mut last_report = Instant::now();
    while let Some(result) = ready.recv().await {
        match result {
            Ok(()) => ok += 1,
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            println!("loadgen: {ok} subscribed, {failed} failed ...");
            last_report = Instant::now();
        }
        if ok + failed == expected {
            break;
        }
    }
    Connected {
        ok,
        failed,
        secs: start.elapsed().as_secs_f64(),
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_counts_successes_and_keeps_the_first_failure() {
        let (tx, rx) = mpsc::unbounded_channel();
        for result in [
            Ok(()),
            Err("refused".to_owned()),
            Ok(()),
            Err("later".to_owned()),
        ] {
            let _ = tx.send(result);
        }
        // A fifth report would be past `expected`: waiting must stop at four.
        let _ = tx.send(Ok(()));
        let connected = wait_for_subscriptions(rx, 4, Instant::now()).await;
        assert_eq!((connected.ok, connected.failed), (2, 2));
        assert_eq!(connected.first_error.as_deref(), Some("refused"));
    }

    #[tokio::test]
    async fn waiting_ends_when_every_subscriber_has_gone() {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Ok(()));
        drop(tx);
        let connected = wait_for_subscriptions(rx, 3, Instant::now()).await;
        assert_eq!((connected.ok, connected.failed), (1, 0));
    }
}
