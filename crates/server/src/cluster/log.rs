//! The leader's side of the log: each storage commit group is appended by
//! `commit.lua` before it is written to SQLite, from the writer thread.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Connection, RedisError, Value};

use super::link::{self, stream_entries};
use super::wire::{BatchOut, GroupIn, GroupOut};
use super::Cluster;
use crate::storage::{Answer, CommitLog, CommitLogError, LogPosition, WriteBatch};

/// How long one append may take before the outcome is looked up instead.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisLog {
    cluster: Arc<Cluster>,
    conn: Option<Connection>,
}

impl RedisLog {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            conn: None,
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, RedisError> {
        if self.conn.is_none() {
            self.conn = Some(link::connect(&self.cluster.client, APPEND_TIMEOUT)?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// After a lost reply: did group `g` with our token make it into the log?
    fn appended(&mut self, g: u64, token: &str) -> Result<bool, RedisError> {
        self.conn = None;
        let bus = self.cluster.keys.bus.clone();
        let conn = self.conn()?;
        let id = format!("{g}-0");
        let reply: Value = redis::cmd("XRANGE")
            .arg(&bus)
            .arg(&id)
            .arg(&id)
            .query(conn)?;
        Ok(stream_entries(&reply).into_iter().any(|(_, data)| {
            serde_json::from_str::<GroupIn>(&data).is_ok_and(|group| group.token == token)
        }))
    }
}

/// `commit.lua`'s arguments after the entry: each topic's offset range,
/// then the epochs of topics removed (see the script).
pub(super) fn offset_args(invocation: &mut redis::ScriptInvocation<'_>, batches: &[&WriteBatch]) {
    let ranges = topic_ranges(batches);
    invocation.arg(ranges.len());
    for (topic, (before, last)) in &ranges {
        invocation.arg(*topic).arg(*before).arg(*last);
    }
    let retired: Vec<&str> = batches
        .iter()
        .flat_map(|batch| &batch.replay.retired_epochs)
        .map(String::as_str)
        .collect();
    invocation.arg(retired.len());
    for epoch in retired {
        invocation.arg(epoch);
    }
}

/// Per topic epoch: the offset before the group and its last offset.
fn topic_ranges<'a>(batches: &[&'a WriteBatch]) -> BTreeMap<&'a str, (u64, u64)> {
    let mut ranges: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for batch in batches {
        for pending in &batch.events {
            let offset = pending.event().offset;
            let range = ranges
                .entry(pending.epoch())
                .or_insert((offset.saturating_sub(1), offset));
            range.1 = range.1.max(offset);
        }
    }
    ranges
}

impl CommitLog for RedisLog {
    fn not_stored(&mut self, position: &LogPosition) {
        let cluster = &self.cluster;
        cluster.step_down("this node's archive could not store a committed group");
        // Whatever this node appended is in the log; it reads it back from
        // there once its disk takes writes again.
        let stored = position.g.saturating_sub(1);
        if cluster.applied() >= position.g {
            cluster.applied.store(stored, Ordering::Release);
        }
    }

    fn append(&mut self, batches: &[&WriteBatch]) -> Result<LogPosition, CommitLogError> {
        let cluster = Arc::clone(&self.cluster);
        let Some(token) = cluster.leader_token() else {
            return Err(CommitLogError::Refused(
                "this node is no longer the leader".into(),
            ));
        };
        let epoch = cluster.epoch();
        let expected = cluster.applied();
        let g = expected + 1;
        let entry = serde_json::to_string(&GroupOut {
            epoch: &epoch,
            token: &token,
            g,
            batches: batches.iter().map(|batch| BatchOut::of(batch)).collect(),
        })
        .map_err(|error| CommitLogError::Refused(format!("group did not serialize: {error}")))?;
        let inbox = batches
            .iter()
            .filter_map(|batch| batch.replay.answers.as_ref())
            .map(|answer| answer.inbox_id.clone())
            .next_back()
            .unwrap_or_default();
        let started = Instant::now();
        let mut invocation = cluster.scripts.commit.prepare_invoke();
        invocation
            .key(&cluster.keys.meta)
            .key(&cluster.keys.leader)
            .key(&cluster.keys.bus)
            .arg(&token)
            .arg(&*epoch)
            .arg(expected)
            .arg(cluster.config.log_len)
            .arg(&inbox)
            .arg(&entry);
        offset_args(&mut invocation, batches);
        let result: Result<u64, RedisError> = self.conn().and_then(|conn| invocation.invoke(conn));
        let outcome = match result {
            Ok(appended) => Ok(appended),
            // The script ran and refused: a definite no.
            Err(error)
                if !(error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()) =>
            {
                Err(error.to_string())
            }
            // The reply was lost: look the outcome up before deciding.
            Err(error) => {
                cluster.metrics.link_errors.fetch_add(1, Ordering::Relaxed);
                match self.appended(g, &token) {
                    Ok(true) => Ok(g),
                    // Not there: once more on the fresh connection. Safe, as
                    // the script only appends at `expected + 1`, so a first
                    // attempt that lands late cannot make it twice.
                    Ok(false) => self
                        .conn()
                        .and_then(|conn| invocation.invoke::<u64>(conn))
                        .map_err(|again| format!("{error}; again: {again}")),
                    Err(lookup) => Err(format!(
                        "{error}; the outcome could not be looked up: {lookup}"
                    )),
                }
            }
        };
        match outcome {
            Ok(appended) => {
                cluster.applied.fetch_max(appended, Ordering::AcqRel);
                cluster.head.fetch_max(appended, Ordering::AcqRel);
                cluster.metrics.commits.fetch_add(1, Ordering::Relaxed);
                // This node's own forwarded writes, sent while it followed.
                for batch in batches {
                    if let Some(answer) = &batch.replay.answers {
                        cluster.complete(Answer::clone(answer));
                    }
                }
                cluster.metrics.commit_micros.fetch_add(
                    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                Ok(LogPosition { epoch, g: appended })
            }
            Err(message) => {
                self.conn = None;
                cluster
                    .metrics
                    .commit_refusals
                    .fetch_add(1, Ordering::Relaxed);
                cluster.step_down(&message);
                Err(CommitLogError::Refused(message))
            }
        }
    }
}
