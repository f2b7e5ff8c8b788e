//! A follower's writes, handed to the leader: in send order through one
//! connection (so a socket's pipelined publishes stay in order), answered
//! when the commit group holding them reaches this node.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use redis::Connection;
use tokio::sync::oneshot;

use super::link;
use super::wire::InboxEntry;
use super::{Cluster, Role, COMMAND_TIMEOUT};
use crate::ingest::forward::error_of;
use crate::ingest::{Forwarded, Forwarder, IngestError, WritePath};
use crate::storage::{Answer, StorageError};
use crate::sync::lock;

/// How long a forwarded write waits for its answer; after that its outcome
/// is unknown to the requester (the leader refuses entries it finds older
/// than a little less, so a late answer is a refusal).
pub const FORWARD_DEADLINE: Duration = Duration::from_secs(10);
/// Inbox entries kept (`MAXLEN ~`); far more than a leader ever lags.
const INBOX_LEN: u64 = 100_000;

pub struct Waiting {
    answer: oneshot::Sender<Result<serde_json::Value, IngestError>>,
    deadline: Instant,
}

pub struct RedisForwarder {
    cluster: Arc<Cluster>,
    sender: mpsc::Sender<InboxEntry>,
}

impl RedisForwarder {
    pub fn start(cluster: Arc<Cluster>) -> std::io::Result<Arc<Self>> {
        let (sender, receiver) = mpsc::channel();
        let thread_cluster = Arc::clone(&cluster);
        std::thread::Builder::new()
            .name("pulse-forward".into())
            .spawn(move || run(thread_cluster, receiver))?;
        Ok(Arc::new(Self { cluster, sender }))
    }
}

fn unavailable(message: String) -> IngestError {
    IngestError::Storage(StorageError::Unavailable(message))
}

impl Forwarder for RedisForwarder {
    fn write_path(&self) -> WritePath {
        match self.cluster.role() {
            Role::Leader { .. } => WritePath::Here,
            Role::Candidate { .. } => {
                WritePath::Unavailable("a new leader is taking over; retry in a moment".into())
            }
            Role::Follower if self.cluster.is_linked() => WritePath::Leader,
            Role::Follower => WritePath::Unavailable(
                "this node cannot reach the cluster's Redis; nothing was accepted".into(),
            ),
        }
    }

    fn forward(
        &self,
        write: Forwarded,
        _now: pulse_core::model::TimestampMs,
    ) -> oneshot::Receiver<Result<serde_json::Value, IngestError>> {
        let (answer, receiver) = oneshot::channel();
        let request = self.cluster.next_request.fetch_add(1, Ordering::Relaxed);
        {
            let mut waiting = lock(&self.cluster.waiting);
            // Bounded like the local write queue: a flood of writes while the
            // leader is slow or gone is refused here, not held.
            if waiting.len() >= self.cluster.config.max_waiting {
                drop(waiting);
                let _ = answer.send(Err(unavailable(format!(
                    "{} writes already wait for the leader; nothing was accepted, retry later",
                    self.cluster.config.max_waiting
                ))));
                return receiver;
            }
            waiting.insert(
                request,
                Waiting {
                    answer,
                    deadline: Instant::now() + FORWARD_DEADLINE,
                },
            );
        }
        self.cluster
            .metrics
            .forwarded
            .fetch_add(1, Ordering::Relaxed);
        let entry = InboxEntry {
            node: self.cluster.node_id().to_owned(),
            request,
            write,
        };
        if self.sender.send(entry).is_err() {
            self.cluster.answer(
                request,
                Err(unavailable("the forwarding thread stopped".into())),
            );
        }
        receiver
    }
}

impl Cluster {
    /// Completes a forwarded write of this node with the leader's answer.
    pub(super) fn complete(&self, answer: Answer) {
        if answer.node != self.config.node_id {
            return;
        }
        self.answer(answer.request, answer.outcome.map_err(error_of));
    }

    fn answer(&self, request: u64, outcome: Result<serde_json::Value, IngestError>) {
        if let Some(waiting) = lock(&self.waiting).remove(&request) {
            let _ = waiting.answer.send(outcome);
        }
    }

    /// Answers every write whose deadline passed: its outcome is unknown.
    fn expire_waiting(&self) {
        let now = Instant::now();
        let expired: Vec<Waiting> = {
            let mut waiting = lock(&self.waiting);
            let due: Vec<u64> = waiting
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(request, _)| *request)
                .collect();
            due.into_iter().filter_map(|r| waiting.remove(&r)).collect()
        };
        for waiting in expired {
            self.metrics
                .forward_timeouts
                .fetch_add(1, Ordering::Relaxed);
            let _ = waiting.answer.send(Err(unavailable(format!(
                "no answer from the leader within {} s: the write may or may not have been committed",
                FORWARD_DEADLINE.as_secs()
            ))));
        }
    }
}

fn run(cluster: Arc<Cluster>, entries: mpsc::Receiver<InboxEntry>) {
    let mut conn: Option<Connection> = None;
    let mut last_used = Instant::now();
    loop {
        let entry = match entries.recv_timeout(Duration::from_millis(250)) {
            Ok(entry) => Some(entry),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        cluster.expire_waiting();
        let Some(entry) = entry else { continue };
        let request = entry.request;
        let sent = serde_json::to_string(&entry)
            .map_err(|error| format!("the write did not serialize: {error}"))
            .and_then(|json| {
                // A link idle for a while may have been cut (Redis
                // restarted): checked first, since an XADD is never retried
                // (it may have landed, and the leader would apply it twice).
                let idle = last_used.elapsed() > Duration::from_secs(1);
                if idle
                    && conn
                        .as_mut()
                        .is_some_and(|c| redis::cmd("PING").query::<String>(c).is_err())
                {
                    conn = None;
                }
                if conn.is_none() {
                    conn = link::connect(&cluster.client, COMMAND_TIMEOUT).ok();
                }
                last_used = Instant::now();
                let c = conn.as_mut().ok_or("cannot reach the cluster's Redis")?;
                redis::cmd("XADD")
                    .arg(&cluster.keys.inbox)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(INBOX_LEN)
                    .arg("*")
                    .arg("r")
                    .arg(json)
                    .query::<String>(c)
                    .map(drop)
                    .map_err(|error| {
                        conn = None;
                        format!("could not hand the write to the leader: {error}")
                    })
            });
        if let Err(message) = sent {
            cluster.answer(
                request,
                Err(unavailable(format!("{message}; nothing was accepted"))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{contract::start_redis, ClusterConfig};

    #[test]
    fn writes_waiting_for_the_leader_are_bounded() {
        let Some((_redis, port)) = start_redis() else {
            assert!(
                std::env::var("CI").is_err(),
                "redis-server is missing under CI"
            );
            return;
        };
        let cluster = Cluster::connect(
            ClusterConfig {
                redis_url: format!("redis://127.0.0.1:{port}/0"),
                node_id: "bounded".into(),
                log_len: 100,
                max_waiting: 2,
            },
            Duration::from_secs(5),
        )
        .expect("connects");
        let forwarder = RedisForwarder::start(Arc::clone(&cluster)).expect("starts");
        // No leader answers: the first two wait, the third is refused at once.
        let mut answers: Vec<_> = (0..3)
            .map(|_| forwarder.forward(Forwarded::Ticks(Vec::new()), 0))
            .collect();
        let refused = answers.pop().expect("three").try_recv();
        match refused {
            Ok(Err(error)) => assert!(
                error.to_string().contains("2 writes already wait"),
                "{error}"
            ),
            other => panic!("the third write is refused at once: {other:?}"),
        }
        for mut waiting in answers {
            assert!(waiting.try_recv().is_err(), "still waiting for the leader");
        }
        assert_eq!(lock(&cluster.waiting).len(), 2);
    }
}
