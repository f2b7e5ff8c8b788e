//! The leader's inbox reader: writes forwarded by other nodes, applied in
//! inbox order. Where it resumes after a failover is the inbox id the log
//! last committed (`meta.in`), so nothing is lost or applied twice.

use std::sync::Arc;
use std::time::Duration;

use redis::{Connection, RedisError, Value};

use super::link::{self, id_ms, stream_entries};
use super::wire::InboxEntry;
use super::{Cluster, FORWARD_DEADLINE};
use crate::clock::now_ms;
use crate::ingest::forward::AnswerTo;
use crate::ingest::Ingest;
use crate::storage::StorageError;
use crate::sync::lock;

const BLOCK: Duration = Duration::from_millis(500);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// An entry older than this (by Redis's clock, which also dated it) is
/// refused rather than applied: its requester gives up at
/// [`FORWARD_DEADLINE`] and must not be told "unknown" about a write that
/// then lands.
const APPLY_DEADLINE: Duration = Duration::from_secs(7);

pub fn run(cluster: Arc<Cluster>, ingest: Arc<Ingest>) {
    debug_assert!(APPLY_DEADLINE < FORWARD_DEADLINE);
    let mut conn: Option<Connection> = None;
    while !cluster.stopping() {
        if cluster.leader_token().is_none() {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if conn.is_none() {
            conn = link::connect(&cluster.client, READ_TIMEOUT).ok();
        }
        let Some(c) = conn.as_mut() else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        if let Err(error) = round(&cluster, &ingest, c) {
            tracing::warn!(%error, "inbox read failed; reconnecting");
            conn = None;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn round(cluster: &Cluster, ingest: &Ingest, conn: &mut Connection) -> Result<(), RedisError> {
    let cursor = lock(&cluster.inbox_cursor).clone();
    let reply: Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(256)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS")
        .arg(&cluster.keys.inbox)
        .arg(&cursor)
        .query(conn)?;
    let entries = stream_entries(&reply);
    if entries.is_empty() {
        return Ok(());
    }
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query(conn)?;
    let redis_now = seconds * 1_000 + micros / 1_000;
    for (id, data) in entries {
        // Leadership may end mid-way; the next leader resumes at `meta.in`.
        if cluster.leader_token().is_none() {
            return Ok(());
        }
        *lock(&cluster.inbox_cursor) = id.clone();
        let entry: InboxEntry = match serde_json::from_str(&data) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::error!(%error, %id, "an inbox entry does not parse; skipped");
                continue;
            }
        };
        let to = AnswerTo {
            inbox_id: id.clone(),
            node: entry.node,
            request: entry.request,
        };
        let age = redis_now - id_ms(&id).unwrap_or(redis_now);
        if age > APPLY_DEADLINE.as_millis() as i64 {
            ingest.refuse_forwarded(
                to,
                &crate::ingest::IngestError::Storage(StorageError::Unavailable(format!(
                    "the write waited {age} ms for a leader and was dropped; nothing was accepted"
                ))),
            );
            continue;
        }
        ingest.apply_forwarded(to, entry.write, now_ms());
    }
    Ok(())
}
