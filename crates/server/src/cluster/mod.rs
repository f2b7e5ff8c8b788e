//! Several Pulse nodes over one Redis (`--redis`): one sequencer, an
//! ordered log, followers that replay it.
//!
//! Pulse's derived topics (candles, sentiment windows, engagement totals,
//! post ids, presence) come from stateful engines, so nodes cannot each
//! compute them from what they ingest. One node holds a lease in Redis and
//! is the **leader**: it runs today's ingest, and each of its storage
//! commit groups is first appended to the log (`commit.lua`, which refuses
//! a deposed leader, another epoch or an unexpected sequence number or
//! offset). The others are **followers**: they read the log in order
//! (`XREAD` from their last group, so a dropped link resumes without a
//! gap), apply each group to their own engines, views, topics and SQLite
//! archive, and hand writes made on them to the leader through an inbox
//! stream; the answer comes back inside the commit group that holds the
//! data, so an acknowledged write is in Redis, in the leader's archive and
//! on the node that acknowledged it. Any follower can take over when the
//! lease lapses. See the README ("Several nodes") for the failure table.

#[cfg(test)]
mod contract;
mod follow;
mod forward;
mod inbox;
mod lease;
pub mod link;
mod log;
mod presence;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::Client;

use crate::ingest::Ingest;
use crate::presence::memory::MemoryPresence;
use crate::storage::{CommitLog, LogPosition};
use crate::sync::{lock, read, write};

pub use forward::FORWARD_DEADLINE;

/// How long the lease lasts without a renewal: a dead leader is replaced
/// after at most this (plus one renewal period).
pub const LEASE: Duration = Duration::from_millis(3_000);
/// How often the leader renews, and followers try to take the lease.
pub const RENEW_EVERY: Duration = Duration::from_millis(1_000);
/// A node's presence keys live this long without a refresh: a dead node's
/// sessions leave within it.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// Connect and command timeout of the non-blocking connections.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub redis_url: String,
    pub node_id: String,
    /// Commit groups the log keeps (`MAXLEN ~`); a follower that falls
    /// further behind resets the topics it missed.
    pub log_len: u64,
    /// Writes this node may have waiting for the leader's answer at once
    /// (`--max-write-queue`); beyond, they are refused with 503.
    pub max_waiting: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid --redis URL: {0}")]
    Url(redis::RedisError),
    #[error("cannot reach Redis at {url} within {waited:?}: {source}")]
    Unreachable {
        url: String,
        waited: Duration,
        source: redis::RedisError,
    },
    #[error("Redis answered unexpectedly: {0}")]
    Protocol(String),
    #[error("multi-node mode needs the SQLite archive; drop --in-memory")]
    NeedsStorage,
}

/// What this node is in the cluster now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Holds the lease, still applying the log up to where it stands.
    Candidate {
        token: String,
    },
    Leader {
        token: String,
    },
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate { .. } => "candidate",
            Role::Leader { .. } => "leader",
        }
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct ClusterMetrics {
    pub failovers: AtomicU64,
    pub commits: AtomicU64,
    pub commit_micros: AtomicU64,
    pub commit_refusals: AtomicU64,
    pub applied_groups: AtomicU64,
    pub log_gaps: AtomicU64,
    pub epoch_changes: AtomicU64,
    pub forwarded: AtomicU64,
    pub forward_timeouts: AtomicU64,
    pub link_errors: AtomicU64,
}

/// State shared by the cluster's threads, the storage writer's log and
/// the request handlers.
pub struct Cluster {
    config: ClusterConfig,
    client: Client,
    keys: link::Keys,
    scripts: link::Scripts,
    role: Mutex<Role>,
    /// The data set's epoch (every topic's epoch starts with it).
    epoch: RwLock<Arc<str>>,
    /// The last commit group this node applied (or, as leader, appended).
    applied: AtomicU64,
    /// The log's head as last seen in Redis.
    head: AtomicU64,
    /// Whether the log reader's link to Redis works now.
    linked: AtomicBool,
    /// When the lease was last renewed (leader) or the link last worked.
    last_renewal: Mutex<Instant>,
    /// The newest inbox entry id applied, where a new leader resumes.
    inbox_cursor: Mutex<String>,
    /// Forwarded writes waiting for their answer.
    waiting: Mutex<HashMap<u64, forward::Waiting>>,
    next_request: AtomicU64,
    pub metrics: ClusterMetrics,
    /// Nodes with a fresh heartbeat, as last counted.
    live_nodes: std::sync::atomic::AtomicU32,
    stopping: AtomicBool,
    /// This node's broker, told when a leadership term begins.
    broker: std::sync::OnceLock<Arc<dyn crate::broker::Broker>>,
}

impl Cluster {
    /// Connects (retrying for up to `wait`) and reads, or creates, the
    /// data set's epoch.
    pub fn connect(config: ClusterConfig, wait: Duration) -> Result<Arc<Self>, ClusterError> {
        let client = Client::open(config.redis_url.as_str()).map_err(ClusterError::Url)?;
        let keys = link::Keys::new();
        let scripts = link::Scripts::new();
        let started = Instant::now();
        let (epoch, head) = loop {
            let attempt = link::connect(&client, COMMAND_TIMEOUT)
                .and_then(|mut conn| ensure_epoch(&mut conn, &keys, &scripts, None, 0));
            match attempt {
                Ok(found) => break found,
                Err(source) if started.elapsed() >= wait => {
                    return Err(ClusterError::Unreachable {
                        url: redacted(&config.redis_url),
                        waited: wait,
                        source,
                    })
                }
                Err(error) => {
                    tracing::warn!(%error, "Redis not reachable yet; retrying");
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        };
        tracing::info!(node = %config.node_id, %epoch, head, "joined the cluster");
        Ok(Arc::new(Self {
            config,
            client,
            keys,
            scripts,
            role: Mutex::new(Role::Follower),
            epoch: RwLock::new(epoch.into()),
            applied: AtomicU64::new(0),
            head: AtomicU64::new(head),
            linked: AtomicBool::new(true),
            last_renewal: Mutex::new(Instant::now()),
            inbox_cursor: Mutex::new("0-0".into()),
            waiting: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            metrics: ClusterMetrics::default(),
            live_nodes: std::sync::atomic::AtomicU32::new(1),
            stopping: AtomicBool::new(false),
            broker: std::sync::OnceLock::new(),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// The data set's epoch: the seed of every topic's epoch.
    pub fn epoch(&self) -> Arc<str> {
        Arc::clone(&read(&self.epoch))
    }

    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Groups in the log this node has not applied yet.
    pub fn lag(&self) -> u64 {
        self.head
            .load(Ordering::Acquire)
            .saturating_sub(self.applied())
    }

    pub fn is_linked(&self) -> bool {
        self.linked.load(Ordering::Acquire)
    }

    /// Ready to serve: Redis reachable and the log applied (a follower may
    /// trail by the groups of the last moment).
    pub fn readiness(&self) -> Result<(), String> {
        if !self.is_linked() {
            return Err("cannot reach Redis".into());
        }
        match self.role() {
            Role::Candidate { .. } => Err("taking over as leader; applying the log".into()),
            _ if self.lag() > 1_000 => Err(format!("{} commit groups behind the log", self.lag())),
            _ => Ok(()),
        }
    }

    /// Where a freshly opened archive stands against the log, and what to
    /// do about it; returns the group to follow on from.
    pub fn reconcile_archive(&self, ingest: &Ingest, archive: Option<LogPosition>, has_data: bool) {
        let epoch = self.epoch();
        let applied = match archive {
            Some(position) if *position.epoch == *epoch => {
                let head = self.head.load(Ordering::Acquire);
                if position.g > head {
                    // Redis lost groups this archive holds: the log clients
                    // recovered from is gone, so it starts a new epoch.
                    match self.replace_epoch(&epoch, position.g) {
                        Ok((new_epoch, g)) => {
                            self.switch_epoch(ingest, &new_epoch);
                            g
                        }
                        Err(error) => {
                            tracing::error!(%error, "could not start a new epoch");
                            position.g
                        }
                    }
                } else {
                    position.g
                }
            }
            // Another epoch, or data from before this node joined: its
            // history is kept, its topics start again under the log's epoch
            // and it follows on from the log's head.
            None if !has_data => 0,
            _ => {
                self.switch_epoch(ingest, &epoch);
                self.head.load(Ordering::Acquire)
            }
        };
        self.applied.store(applied, Ordering::Release);
    }

    /// Starts a new epoch in Redis if it still has `known` and is behind `g`.
    fn replace_epoch(&self, known: &str, g: u64) -> Result<(String, u64), redis::RedisError> {
        let mut conn = link::connect(&self.client, COMMAND_TIMEOUT)?;
        ensure_epoch(&mut conn, &self.keys, &self.scripts, Some(known), g)
    }

    /// Adopts `epoch` for the data set: topics restart under it. Called
    /// only when this node's topics belong to another history.
    fn switch_epoch(&self, ingest: &Ingest, epoch: &str) {
        tracing::warn!(%epoch, "the cluster's data set changed; topics start a new epoch");
        self.metrics.epoch_changes.fetch_add(1, Ordering::Relaxed);
        *write(&self.epoch) = epoch.into();
        ingest.adopt_epoch(epoch);
    }

    /// Gives leadership up (lost lease, refused commit, other epoch).
    fn step_down(&self, why: &str) {
        let mut role = lock(&self.role);
        if *role != Role::Follower {
            tracing::warn!(node = %self.config.node_id, why, "stepping down to follower");
            *role = Role::Follower;
        }
    }

    /// The token if this node leads now.
    fn leader_token(&self) -> Option<String> {
        match &*lock(&self.role) {
            Role::Leader { token } => Some(token.clone()),
            _ => None,
        }
    }

    /// The lease token this node holds (leader or candidate).
    fn held_token(&self) -> Option<String> {
        match &*lock(&self.role) {
            Role::Leader { token } | Role::Candidate { token } => Some(token.clone()),
            Role::Follower => None,
        }
    }

    /// The log the storage writer appends the leader's groups to.
    pub fn commit_log(self: &Arc<Self>) -> Box<dyn CommitLog> {
        Box::new(log::RedisLog::new(Arc::clone(self)))
    }

    /// Starts the cluster's threads: lease, log reader, inbox, forwarder
    /// and presence.
    /// `share_limits` is told how many nodes are alive whenever that
    /// changes, so per-client rate limits can be split among them.
    pub fn start(
        self: &Arc<Self>,
        ingest: Arc<Ingest>,
        presence: Arc<MemoryPresence>,
        share_limits: Box<dyn Fn(u32) + Send>,
    ) -> std::io::Result<()> {
        let forwarder = forward::RedisForwarder::start(Arc::clone(self))?;
        ingest.set_forwarder(forwarder);
        ingest.broker().follow_log();
        let _ = self.broker.set(Arc::clone(ingest.broker()));
        // Topics created on these threads start their flushers on the runtime.
        let runtime = tokio::runtime::Handle::current();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            let runtime = runtime.clone();
            std::thread::Builder::new()
                .name(format!("pulse-{name}"))
                .spawn(move || {
                    let _entered = runtime.enter();
                    body();
                })
                .map(drop)
        };
        let cluster = Arc::clone(self);
        let follow_ingest = Arc::clone(&ingest);
        spawn(
            "log-reader",
            Box::new(move || follow::run(cluster, follow_ingest)),
        )?;
        let cluster = Arc::clone(self);
        spawn("lease", Box::new(move || lease::run(cluster)))?;
        let cluster = Arc::clone(self);
        let inbox_ingest = Arc::clone(&ingest);
        spawn("inbox", Box::new(move || inbox::run(cluster, inbox_ingest)))?;
        let cluster = Arc::clone(self);
        spawn(
            "presence",
            Box::new(move || presence::run(cluster, ingest, presence, share_limits)),
        )?;
        Ok(())
    }

    /// On a clean stop: the lease goes at once (a follower takes over
    /// without waiting for it to lapse) and this node's sessions leave.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let token = self.held_token();
        self.step_down("shutting down");
        if let Ok(mut conn) = link::connect(&self.client, COMMAND_TIMEOUT) {
            if let Some(token) = token {
                let released: Result<i64, _> = self
                    .scripts
                    .release
                    .key(&self.keys.leader)
                    .arg(token)
                    .invoke(&mut conn);
                if let Err(error) = released {
                    tracing::warn!(%error, "could not release the lease");
                }
            }
            let node = &self.config.node_id;
            let _: Result<(), _> = redis::pipe()
                .del(self.keys.sessions(node))
                .del(self.keys.connections(node))
                .zrem(&self.keys.nodes, node)
                .query(&mut conn);
        }
    }

    /// The cluster's part of `/metrics`.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(2048);
        let role = self.role();
        let _ = writeln!(
            out,
            "# HELP pulse_cluster_role This node's role (1 for the current one).\n# TYPE pulse_cluster_role gauge"
        );
        for name in ["follower", "candidate", "leader"] {
            let _ = writeln!(
                out,
                "pulse_cluster_role{{role=\"{name}\"}} {}",
                u8::from(role.name() == name)
            );
        }
        let m = &self.metrics;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 15] = [
            (
                "pulse_cluster_nodes",
                "Nodes with a heartbeat in the last 15 s (per-client rates are split among them).",
                "gauge",
                u64::from(self.live_nodes.load(Ordering::Relaxed)),
            ),
            (
                "pulse_cluster_linked",
                "1 while the log reader's link to Redis works.",
                "gauge",
                u64::from(self.is_linked()),
            ),
            (
                "pulse_cluster_log_applied",
                "Last commit group applied (or appended) here.",
                "gauge",
                self.applied(),
            ),
            (
                "pulse_cluster_log_head",
                "The log's head as last seen in Redis.",
                "gauge",
                self.head.load(Ordering::Acquire),
            ),
            (
                "pulse_cluster_log_lag",
                "Commit groups in the log not yet applied here.",
                "gauge",
                self.lag(),
            ),
            (
                "pulse_cluster_leader_terms_total",
                "Times this node took over as leader (failovers and first election).",
                "counter",
                load(&m.failovers),
            ),
            (
                "pulse_cluster_commits_total",
                "Commit groups this node appended to the log as leader.",
                "counter",
                load(&m.commits),
            ),
            (
                "pulse_cluster_commit_micros_total",
                "Time spent appending commit groups, in microseconds.",
                "counter",
                load(&m.commit_micros),
            ),
            (
                "pulse_cluster_commit_refusals_total",
                "Appends the log refused or that failed (this node then stepped down).",
                "counter",
                load(&m.commit_refusals),
            ),
            (
                "pulse_cluster_applied_groups_total",
                "Commit groups of other leaders applied here.",
                "counter",
                load(&m.applied_groups),
            ),
            (
                "pulse_cluster_log_gaps_total",
                "Stretches of the log trimmed before this node read them.",
                "counter",
                load(&m.log_gaps),
            ),
            (
                "pulse_cluster_epoch_changes_total",
                "Times the data set's epoch changed under this node.",
                "counter",
                load(&m.epoch_changes),
            ),
            (
                "pulse_cluster_forwarded_total",
                "Writes this node handed to the leader.",
                "counter",
                load(&m.forwarded),
            ),
            (
                "pulse_cluster_forward_timeouts_total",
                "Forwarded writes with no answer within the deadline.",
                "counter",
                load(&m.forward_timeouts),
            ),
            (
                "pulse_cluster_link_errors_total",
                "Redis errors seen by this node's cluster threads.",
                "counter",
                load(&m.link_errors),
            ),
        ];
        for (name, help, kind, value) in rows {
            crate::metrics::write_metric(&mut out, name, help, kind, value);
        }
        out
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

/// `url` without its password, for messages and logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Reads the data set's epoch and head, creating the epoch when Redis has
/// none, or replacing it when it is `known` and behind `g`.
fn ensure_epoch(
    conn: &mut redis::Connection,
    keys: &link::Keys,
    scripts: &link::Scripts,
    known: Option<&str>,
    g: u64,
) -> Result<(String, u64), redis::RedisError> {
    let fresh = crate::clock::epoch_seed();
    let (epoch, head): (String, u64) = scripts
        .epoch
        .key(&keys.meta)
        .key(&keys.bus)
        .key(&keys.inbox)
        .arg(known.unwrap_or(""))
        .arg(fresh)
        .arg(g)
        .invoke(conn)?;
    Ok((epoch, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("redis://:hunter2@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(redacted("redis://user:pw@host/1"), "redis://***@host/1");
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn an_unreachable_redis_is_a_clear_error_at_start() {
        let cluster = Cluster::connect(
            ClusterConfig {
                redis_url: "redis://127.0.0.1:1/0".into(),
                node_id: "n".into(),
                log_len: 100,
                max_waiting: 10,
            },
            Duration::ZERO,
        );
        let Err(error) = cluster else {
            panic!("nothing listens on port 1");
        };
        assert!(error.to_string().contains("cannot reach Redis"), "{error}");
    }
}
