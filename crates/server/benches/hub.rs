//! The hub's in-process fan-out: `cargo bench --bench hub`.
//!
//! Each subscriber is modelled the way `server::ws` runs a connection, minus
//! the socket: a connection task moves hub frames into the subscriber's
//! [`Outbox`] and a writer task drains it. One iteration publishes one tick
//! and waits until every subscriber's writer has taken it, so the time per
//! iteration is how long one event takes to reach N subscribers, and the
//! throughput is deliveries per second. The loopback socket writes the real
//! server adds are measured end to end by `loadgen` (BENCHMARKS.md).

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pulse_core::protocol::Topic;
use pulse_server::broker::memory::MemoryBroker;
use pulse_server::broker::{Broker, BrokerConfig};
use pulse_server::outbox::{Outbox, OutboxLimits, Outgoing};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Counts what the writers took and wakes the publisher when a round is complete.
#[derive(Default)]
struct Progress {
    delivered: AtomicU64,
    target: AtomicU64,
    done: Notify,
}

struct Fixture {
    broker: Arc<dyn Broker>,
    subscribers: u64,
    progress: Arc<Progress>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fixture {
    fn start(subscribers: u64) -> Self {
        // No batching window: each event is flushed at once, as on an idle topic.
        let config = BrokerConfig {
            batch_window: Duration::ZERO,
            history_len: 1_000,
            ..BrokerConfig::default()
        };
        let hub: Arc<dyn Broker> = MemoryBroker::new(config, "bench");
        let progress = Arc::new(Progress::default());
        let limits = OutboxLimits {
            max_frames: 1_024,
            max_bytes: 4 << 20,
        };
        let mut tasks = Vec::new();
        for _ in 0..subscribers {
            let mut subscription = hub.subscribe(&Topic::Ticks, None);
            let outbox = Arc::new(Outbox::new(limits));
            let inbox = Arc::clone(&outbox);
            tasks.push(tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match subscription.receiver.recv().await {
                        Ok(frame) => {
                            inbox.push_frame(frame);
                        }
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    }
                }
            }));
            let progress = Arc::clone(&progress);
            tasks.push(tokio::spawn(async move {
                loop {
                    let (items, _) = outbox.next_batch().await;
                    let events: u64 = items
                        .iter()
                        .map(|item| match item {
                            Outgoing::Shared(frame) => frame.events.len() as u64,
                            _ => 0,
                        })
                        .sum();
                    let total = progress.delivered.fetch_add(events, SeqCst) + events;
                    if total >= progress.target.load(SeqCst) {
                        progress.done.notify_one();
                    }
                }
            }));
        }
        Self {
            broker: hub,
            subscribers,
            progress,
            tasks,
        }
    }

    /// Publishes `rounds` ticks one after another, each once every subscriber
    /// has the previous one; returns the time taken.
    async fn rounds(&self, rounds: u64) -> Duration {
        let key: Arc<str> = Arc::from("AAPL");
        let started = Instant::now();
        for round in 0..rounds {
            let expected = self.progress.delivered.load(SeqCst) + self.subscribers;
            self.progress.target.store(expected, SeqCst);
            let tick = json!({"symbol": "AAPL", "price": 187.25, "volume": round, "ts": 1_780_000_000_000i64});
            self.broker
                .publish_now(&Topic::Ticks, &tick, Some(Arc::clone(&key)), None)
                .expect("a tick serializes");
            while self.progress.delivered.load(SeqCst) < expected {
                self.progress.done.notified().await;
            }
        }
        started.elapsed()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn fan_out(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("hub_fan_out");
    group.sample_size(20);
    for subscribers in [100u64, 1_000, 10_000] {
        let fixture = enter(&runtime, || Fixture::start(subscribers));
        group.throughput(Throughput::Elements(subscribers));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter_custom(|rounds| runtime.block_on(fixture.rounds(rounds)))
        });
        enter(&runtime, || drop(fixture));
    }
    group.finish();
}

/// Publishing with nobody subscribed: encoding, offset, history.
fn publish(c: &mut Criterion) {
    let runtime = runtime();
    let hub: Arc<dyn Broker> = enter(&runtime, || {
        MemoryBroker::new(BrokerConfig::default(), "bench")
    });
    let key: Arc<str> = Arc::from("AAPL");
    let tick =
        json!({"symbol": "AAPL", "price": 187.25, "volume": 100, "ts": 1_780_000_000_000i64});
    let mut group = c.benchmark_group("hub_publish");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tick", |b| {
        b.iter(|| {
            enter(&runtime, || {
                hub.publish_now(&Topic::Ticks, &tick, Some(Arc::clone(&key)), None)
                    .expect("a tick serializes")
            })
        })
    });
    group.finish();
}

/// Two workers, like the machine the figures are taken on.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `f` inside the runtime (the hub spawns its flusher tasks there).
fn enter<T>(runtime: &Runtime, f: impl FnOnce() -> T) -> T {
    let _guard = runtime.enter();
    f()
}

criterion_group!(benches, fan_out, publish);
criterion_main!(benches);
