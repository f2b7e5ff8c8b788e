//! The log reader: every node applies the log's commit groups in order,
//! from the last one it applied, on a connection of its own whose timeout
//! exceeds the blocking read. A dropped link resumes at the same group, so
//! nothing is skipped; a trimmed stretch of the log (this node was away
//! longer than the log keeps) is counted and the topics it touched refuse
//! recovery across it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::{Connection, RedisError, Value};

use super::link::{self, group_of, stream_entries};
use super::wire::GroupIn;
use super::{ensure_epoch, Cluster};
use crate::ingest::Ingest;
use crate::storage::LogPosition;

/// How long one `XREAD` blocks; the connection's timeout is longer.
const BLOCK: Duration = Duration::from_millis(1_000);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Groups read per round trip.
const READ_COUNT: usize = 256;

pub fn run(cluster: Arc<Cluster>, ingest: Arc<Ingest>) {
    let mut pause = Duration::from_millis(100);
    while !cluster.stopping() {
        if let Err(error) = follow(&cluster, &ingest, &mut pause) {
            cluster.linked.store(false, Ordering::Release);
            cluster.metrics.link_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, ?pause, "lost the link to the cluster log; reconnecting");
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

fn follow(cluster: &Cluster, ingest: &Ingest, pause: &mut Duration) -> Result<(), RedisError> {
    let mut conn = link::connect(&cluster.client, READ_TIMEOUT)?;
    reconcile(cluster, ingest, &mut conn)?;
    cluster.linked.store(true, Ordering::Release);
    *pause = Duration::from_millis(100);
    while !cluster.stopping() {
        let from = format!("{}-0", cluster.applied());
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&cluster.keys.bus)
            .arg(&from)
            .query(&mut conn)?;
        let entries = stream_entries(&reply);
        if entries.is_empty() {
            // Quiet log: a cheap check that Redis still has our history.
            reconcile(cluster, ingest, &mut conn)?;
            continue;
        }
        apply_entries(cluster, ingest, entries, &mut conn)?;
    }
    Ok(())
}

fn apply_entries(
    cluster: &Cluster,
    ingest: &Ingest,
    entries: Vec<(String, String)>,
    conn: &mut Connection,
) -> Result<(), RedisError> {
    let mut applied = Vec::new();
    for (id, data) in entries {
        let Some(g) = group_of(&id) else { continue };
        if g <= cluster.applied() {
            continue;
        }
        let group: GroupIn = match serde_json::from_str(&data) {
            Ok(group) => group,
            Err(error) => {
                tracing::error!(%error, g, "a log entry does not parse; skipped");
                cluster.metrics.log_gaps.fetch_add(1, Ordering::Relaxed);
                cluster.applied.fetch_max(g, Ordering::AcqRel);
                continue;
            }
        };
        if cluster.held_token().as_deref() == Some(group.token.as_str()) {
            // Our own group, appended by this node's writer.
            cluster.applied.fetch_max(g, Ordering::AcqRel);
            continue;
        }
        if *group.epoch != *cluster.epoch() {
            reconcile(cluster, ingest, conn)?;
            break;
        }
        if g > cluster.applied() + 1 {
            cluster.metrics.log_gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                from = cluster.applied() + 1,
                to = g - 1,
                "commit groups trimmed from the log before this node read them"
            );
        }
        let position = LogPosition {
            epoch: cluster.epoch(),
            g,
        };
        applied.push(ingest.apply_replicated(&position, group.batches));
        cluster.applied.store(g, Ordering::Release);
        cluster.head.fetch_max(g, Ordering::AcqRel);
        cluster
            .metrics
            .applied_groups
            .fetch_add(1, Ordering::Relaxed);
    }
    // The archive commits them in order; only then are waiting requests
    // answered, so a write acknowledged here is readable here.
    for done in applied {
        let stored = match done.commit {
            Some(commit) => matches!(commit.blocking_recv(), Ok(Ok(()))),
            None => true,
        };
        if !stored {
            tracing::error!(
                "this node's archive refused a commit group; following on from what it holds"
            );
            let position = ingest
                .storage()
                .and_then(|storage| storage.log_position().ok().flatten());
            cluster
                .applied
                .store(position.map_or(0, |p| p.g), Ordering::Release);
            // The writer refuses until its probe finds the disk writable.
            std::thread::sleep(Duration::from_millis(500));
            return Ok(());
        }
        for answer in done.answers {
            cluster.complete(answer);
        }
    }
    Ok(())
}

/// Checks the log against what this node has applied: a missing or other
/// epoch, or a head behind us (Redis lost groups), means the history
/// clients recover from changed; this node then adopts the new epoch.
fn reconcile(cluster: &Cluster, ingest: &Ingest, conn: &mut Connection) -> Result<(), RedisError> {
    let (epoch, head): (Option<String>, Option<u64>) = redis::cmd("HMGET")
        .arg(&cluster.keys.meta)
        .arg("epoch")
        .arg("g")
        .query(conn)?;
    let ours = cluster.epoch();
    let applied = cluster.applied();
    let adopted = match epoch {
        None => Some(ensure_epoch(
            conn,
            &cluster.keys,
            &cluster.scripts,
            None,
            applied,
        )?),
        Some(epoch) if *epoch != *ours => Some((epoch, head.unwrap_or(0))),
        Some(epoch) if head.unwrap_or(0) < applied => {
            let (now, head) =
                ensure_epoch(conn, &cluster.keys, &cluster.scripts, Some(&epoch), applied)?;
            (now != epoch).then_some((now, head))
        }
        Some(_) => {
            cluster.head.fetch_max(head.unwrap_or(0), Ordering::AcqRel);
            None
        }
    };
    if let Some((epoch, head)) = adopted {
        cluster.step_down("the cluster's epoch changed");
        cluster.switch_epoch(ingest, &epoch);
        cluster.applied.store(head, Ordering::Release);
        cluster.head.store(head, Ordering::Release);
    }
    Ok(())
}
