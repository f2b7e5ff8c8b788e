//! The broker contract (`broker/tests.rs`) run through Redis: events are
//! prepared by a leader's broker, appended by `commit.lua`, read back with
//! `XREAD` and replayed into a follower's broker, which is what subscribers
//! see: the path every event takes to a follower's clients.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_core::protocol::{StreamPosition, Topic};

use super::link::{self, stream_entries, Keys, Scripts};
use super::wire::{BatchOut, GroupIn, GroupOut};
use crate::broker::memory::MemoryBroker;
use crate::broker::{Broker, BrokerConfig, PendingEvent, Subscription};
use crate::fanout::{Event, TopicReport};
use crate::storage::WriteBatch;
use crate::sync::lock;

const TOKEN: &str = "leader:test";
const EPOCH: &str = "contract";

pub(super) struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A leader and a follower joined by a real Redis log.
struct ThroughRedis {
    leader: Arc<MemoryBroker>,
    follower: Arc<MemoryBroker>,
    conn: Mutex<redis::Connection>,
    keys: Keys,
    scripts: Scripts,
    g: AtomicU64,
    /// Events prepared on the follower directly (the replica checks): they
    /// are published there, not appended again.
    replicas: Mutex<std::collections::HashSet<(String, u64)>>,
    _redis: RedisServer,
}

/// A throw-away `redis-server` on a free loopback port, and that port.
pub(super) fn start_redis() -> Option<(RedisServer, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = RedisServer(child);
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
    for _ in 0..100 {
        if link::connect(&client, Duration::from_secs(2)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    None
}

/// The factory the contract macro calls; without `redis-server` (outside
/// CI) it says so and checks the memory broker instead.
fn through_redis(config: BrokerConfig) -> Arc<dyn Broker> {
    let Some((redis, mut conn)) = start_redis().and_then(|(redis, port)| {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
        Some((redis, link::connect(&client, Duration::from_secs(2)).ok()?))
    }) else {
        assert!(
            std::env::var("CI").is_err(),
            "redis-server is missing under CI"
        );
        eprintln!("skipped the Redis path: redis-server is not installed");
        return MemoryBroker::new(config, EPOCH);
    };
    let keys = Keys::new();
    let _: () = redis::pipe()
        .hset(&keys.meta, "epoch", EPOCH)
        .hset(&keys.meta, "g", 0)
        .set(&keys.leader, TOKEN)
        .query(&mut conn)
        .expect("seeded");
    let follower = MemoryBroker::new(config.clone(), EPOCH);
    follower.follow_log();
    Arc::new(ThroughRedis {
        leader: MemoryBroker::new(config, EPOCH),
        follower,
        conn: Mutex::new(conn),
        keys,
        scripts: Scripts::new(),
        g: AtomicU64::new(0),
        replicas: Mutex::default(),
        _redis: redis,
    })
}

impl ThroughRedis {
    /// Appends the events as one commit group and replays it on the follower.
    fn append_and_replay(&self, events: Vec<PendingEvent>) {
        let mut conn = lock(&self.conn);
        let batch = WriteBatch {
            events,
            ..WriteBatch::default()
        };
        let expected = self.g.load(Ordering::Acquire);
        let entry = serde_json::to_string(&GroupOut {
            epoch: EPOCH,
            token: TOKEN,
            g: expected + 1,
            batches: vec![BatchOut::of(&batch)],
        })
        .expect("serializes");
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(&self.keys.meta)
            .key(&self.keys.leader)
            .key(&self.keys.bus)
            .arg(TOKEN)
            .arg(EPOCH)
            .arg(expected)
            .arg(1_000)
            .arg("")
            .arg(&entry);
        super::log::offset_args(&mut invocation, &[&batch]);
        let g: u64 = invocation
            .invoke(&mut *conn)
            .expect("the log takes the group");
        self.g.store(g, Ordering::Release);
        let reply: redis::Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(10)
            .arg("STREAMS")
            .arg(&self.keys.bus)
            .arg(format!("{expected}-0"))
            .query(&mut *conn)
            .expect("reads the log");
        drop(conn);
        self.leader.publish(batch.events);
        for (_, data) in stream_entries(&reply) {
            let group: GroupIn = serde_json::from_str(&data).expect("a group");
            for replicated in group.batches {
                for event in replicated.events {
                    let topic: Topic = event.topic.parse().expect("a topic");
                    let copy = self.follower.prepare_replica(
                        &topic,
                        &event.epoch,
                        event.offset,
                        event.body.into_boxed_str(),
                        event.key.map(Arc::from),
                        event.ts,
                    );
                    self.follower.publish(vec![copy]);
                }
            }
        }
    }
}

impl Broker for ThroughRedis {
    fn config(&self) -> &BrokerConfig {
        self.leader.config()
    }

    fn prepare_json(
        &self,
        topic: &Topic,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<i64>,
    ) -> PendingEvent {
        self.leader
            .prepare_json(topic, data_json, conflation_key, source_ts)
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
        lock(&self.replicas).insert((topic.to_string(), offset));
        self.follower
            .prepare_replica(topic, epoch, offset, body, conflation_key, source_ts)
    }

    fn reseed(&self, seed: &str) {
        self.leader.reseed(seed);
        self.follower.reseed(seed);
    }

    fn begin_term(&self, term: &str) {
        self.leader.begin_term(term);
    }

    fn follow_log(&self) {}

    fn publish(&self, events: Vec<PendingEvent>) {
        let (replicas, events): (Vec<_>, Vec<_>) = {
            let mut made_here = lock(&self.replicas);
            events.into_iter().partition(|event| {
                made_here.remove(&(event.topic().to_owned(), event.event().offset))
            })
        };
        self.follower.publish(replicas);
        if !events.is_empty() {
            self.append_and_replay(events);
        }
    }

    fn subscribe(&self, topic: &Topic, since: Option<&StreamPosition>) -> Subscription {
        self.follower.subscribe(topic, since)
    }

    /// A snapshot reaches as far as the node furthest along: the leader,
    /// with what it prepared, unless events went to the follower directly.
    fn position(&self, topic: &Topic) -> StreamPosition {
        let (leader, follower) = (self.leader.position(topic), self.follower.position(topic));
        if follower.offset > leader.offset {
            follower
        } else {
            leader
        }
    }

    fn restore(&self, topic: &Topic, epoch: &str, last_offset: u64, history: Vec<Event>) {
        self.leader
            .restore(topic, epoch, last_offset, history.clone());
        self.follower.restore(topic, epoch, last_offset, history);
    }

    fn remove_if_unused(&self, topic: &Topic) -> bool {
        // Subscribers are the follower's, events in flight the leader's.
        let name = topic.to_string();
        let subscribed = self
            .follower
            .report()
            .iter()
            .any(|report| *report.topic == *name && report.subscribers > 0);
        // Nobody subscribes on the leader; this flushes what it delivered.
        drop(self.leader.subscribe(topic, None));
        if subscribed || !self.leader.remove_if_unused(topic) {
            return false;
        }
        self.follower.remove_if_unused(topic);
        true
    }

    fn topic_count(&self) -> usize {
        self.follower.topic_count()
    }

    fn report(&self) -> Vec<TopicReport> {
        self.follower.report()
    }
}

crate::broker_contract_tests!(through_redis);
