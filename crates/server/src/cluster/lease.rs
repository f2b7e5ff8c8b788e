//! The sequencer lease: `SET NX PX` to take it, a compare-and-`PEXPIRE`
//! script to renew it, every [`RENEW_EVERY`]. The token is fresh per term
//! and is checked by every append, so a deposed leader cannot write.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Connection;

use super::link;
use super::{Cluster, Role, COMMAND_TIMEOUT, LEASE, RENEW_EVERY};
use crate::sync::lock;

pub fn run(cluster: Arc<Cluster>) {
    let mut conn: Option<Connection> = None;
    while !cluster.stopping() {
        let candidate = matches!(cluster.role(), Role::Candidate { .. });
        std::thread::sleep(if candidate {
            Duration::from_millis(50)
        } else {
            RENEW_EVERY
        });
        if cluster.stopping() {
            break;
        }
        if conn.is_none() {
            conn = link::connect(&cluster.client, COMMAND_TIMEOUT).ok();
        }
        let Some(c) = conn.as_mut() else {
            give_up_if_lapsed(&cluster);
            continue;
        };
        if let Err(error) = round(&cluster, c) {
            tracing::warn!(%error, "lease round failed");
            conn = None;
            give_up_if_lapsed(&cluster);
        }
    }
}

/// A leader that could not renew for most of the lease stops writing
/// before Redis lets another node take over.
fn give_up_if_lapsed(cluster: &Cluster) {
    let since = lock(&cluster.last_renewal).elapsed();
    if cluster.held_token().is_some() && since > LEASE * 2 / 3 {
        cluster.step_down("could not renew the lease");
    }
}

fn round(cluster: &Cluster, conn: &mut Connection) -> Result<(), redis::RedisError> {
    match cluster.role() {
        Role::Leader { token } | Role::Candidate { token } => {
            let renewed: i64 = cluster
                .scripts
                .renew
                .key(&cluster.keys.leader)
                .arg(&token)
                .arg(LEASE.as_millis() as u64)
                .invoke(conn)?;
            if renewed != 1 {
                cluster.step_down("the lease was lost");
                return Ok(());
            }
            *lock(&cluster.last_renewal) = Instant::now();
            if matches!(cluster.role(), Role::Candidate { .. }) {
                take_over(cluster, conn, token)?;
            }
        }
        Role::Follower => {
            // Only a node that has applied the whole log may lead.
            if !cluster.is_linked() || cluster.lag() > 0 {
                return Ok(());
            }
            let token = format!("{}:{}", cluster.node_id(), crate::clock::epoch_seed());
            let taken: Option<String> = redis::cmd("SET")
                .arg(&cluster.keys.leader)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LEASE.as_millis() as u64)
                .query(conn)?;
            if taken.is_some() {
                tracing::info!(node = %cluster.node_id(), "took the lease; applying the rest of the log");
                *lock(&cluster.last_renewal) = Instant::now();
                *lock(&cluster.role) = Role::Candidate { token };
            }
        }
    }
    Ok(())
}

/// A candidate leads once it has applied every group in the log (nobody
/// can append while it holds the lease) and knows where the inbox stands.
fn take_over(
    cluster: &Cluster,
    conn: &mut Connection,
    token: String,
) -> Result<(), redis::RedisError> {
    let (head, inbox): (Option<u64>, Option<String>) = redis::cmd("HMGET")
        .arg(&cluster.keys.meta)
        .arg("g")
        .arg("in")
        .query(conn)?;
    let head = head.unwrap_or(0);
    cluster.head.fetch_max(head, Ordering::AcqRel);
    if cluster.applied() < head {
        return Ok(());
    }
    *lock(&cluster.inbox_cursor) = inbox.unwrap_or_else(|| "0-0".into());
    let mut role = lock(&cluster.role);
    if *role
        == (Role::Candidate {
            token: token.clone(),
        })
    {
        *role = Role::Leader { token };
        cluster.metrics.failovers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(node = %cluster.node_id(), g = head, "leading the cluster");
    }
    Ok(())
}
