//! Presence across nodes: each node publishes its session ids to a set of
//! its own (with a TTL, so a dead node's sessions leave within
//! [`PRESENCE_TTL`]); the leader counts the union and commits a
//! `presence` event to the log when it changed. A session connected to
//! two nodes counts once.

use std::sync::Arc;
use std::time::Duration;

use redis::Connection;

use pulse_core::model::Presence;

use super::link;
use super::{Cluster, COMMAND_TIMEOUT, PRESENCE_TTL};
use crate::clock::now_ms;
use crate::ingest::Ingest;
use crate::presence::memory::MemoryPresence;

const EVERY: Duration = Duration::from_secs(1);

pub fn run(
    cluster: Arc<Cluster>,
    ingest: Arc<Ingest>,
    presence: Arc<MemoryPresence>,
    share_limits: Box<dyn Fn(u32) + Send>,
) {
    let mut conn: Option<Connection> = None;
    let mut published: Option<Presence> = None;
    while !cluster.stopping() {
        std::thread::sleep(EVERY);
        if conn.is_none() {
            conn = link::connect(&cluster.client, COMMAND_TIMEOUT).ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        match round(&cluster, &ingest, &presence, c, &mut published) {
            Ok(live) => {
                let live = u32::try_from(live).unwrap_or(u32::MAX).max(1);
                if cluster
                    .live_nodes
                    .swap(live, std::sync::atomic::Ordering::Relaxed)
                    != live
                {
                    tracing::info!(
                        nodes = live,
                        "cluster size changed; per-client rates split among the nodes"
                    );
                }
                share_limits(live);
            }
            Err(error) => {
                tracing::warn!(%error, "presence round failed");
                conn = None;
            }
        }
    }
}

fn round(
    cluster: &Cluster,
    ingest: &Ingest,
    presence: &MemoryPresence,
    conn: &mut Connection,
    published: &mut Option<Presence>,
) -> Result<u64, redis::RedisError> {
    let node = cluster.node_id();
    let keys = &cluster.keys;
    let (sessions, connections) = presence.snapshot();
    let ttl = PRESENCE_TTL.as_secs();
    let now = now_ms();
    let mut pipe = redis::pipe();
    pipe.atomic().del(keys.sessions(node)).ignore();
    if !sessions.is_empty() {
        pipe.sadd(keys.sessions(node), &sessions).ignore();
    }
    pipe.expire(keys.sessions(node), ttl as i64)
        .ignore()
        .set_ex(keys.connections(node), connections, ttl)
        .ignore()
        .zadd(&keys.nodes, node, now)
        .ignore()
        .zrembyscore(&keys.nodes, "-inf", now - PRESENCE_TTL.as_millis() as i64)
        .ignore()
        .zcard(&keys.nodes);
    let (live,): (u64,) = pipe.query(conn)?;

    if cluster.leader_token().is_none() {
        *published = None;
        return Ok(live);
    }
    let nodes: Vec<String> = redis::cmd("ZRANGE")
        .arg(&keys.nodes)
        .arg(0)
        .arg(-1)
        .query(conn)?;
    let session_keys: Vec<String> = nodes.iter().map(|n| keys.sessions(n)).collect();
    let connection_keys: Vec<String> = nodes.iter().map(|n| keys.connections(n)).collect();
    let union = format!("pulse:{{p}}:pres-union:{node}");
    let (count, counts): (u64, Vec<Option<u64>>) = redis::pipe()
        .cmd("SUNIONSTORE")
        .arg(&union)
        .arg(&session_keys)
        .ignore()
        .scard(&union)
        .cmd("MGET")
        .arg(&connection_keys)
        .del(&union)
        .ignore()
        .query(conn)?;
    let now = Presence {
        sessions: count,
        connections: counts.into_iter().flatten().sum(),
    };
    if published.as_ref() != Some(&now) {
        match ingest.publish_presence(&now) {
            Ok(()) => *published = Some(now),
            Err(error) => tracing::warn!(%error, "presence update not published"),
        }
    }
    Ok(live)
}
