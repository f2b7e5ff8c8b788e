//! Active users: distinct dashboard sessions with an open WebSocket.
//!
//! Counts change on every connect and disconnect, but the `presence` topic
//! gets at most one update per second (the latest count), so a reconnect
//! storm cannot flood subscribers. Where sessions are counted is a
//! [`PresenceStore`]: [`memory::MemoryPresence`] on one node; a store
//! shared by several nodes counts a session once wherever it connects.

pub mod memory;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pulse_core::model::Presence;
use pulse_core::protocol::Topic;

use super::broker::Broker;

/// Where connections and sessions are counted.
pub trait PresenceStore: Send + Sync + 'static {
    /// Counts a connection from `ip`; `session` identifies a dashboard page
    /// (several connections of one page count once). Returns the session if
    /// it counts: a new session from an address that already brought its
    /// limit counts as a connection only.
    fn enter(&self, session: Option<String>, ip: IpAddr) -> Option<String>;
    /// Undoes one [`PresenceStore::enter`] (with the session it returned).
    fn leave(&self, session: Option<&str>);
    fn current(&self) -> Presence;
    /// The current counts if they changed since the last call.
    fn take_change(&self) -> Option<Presence>;
}

/// Unregisters its connection when dropped, however the connection ends.
pub struct PresenceGuard {
    store: Arc<dyn PresenceStore>,
    session: Option<String>,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.store.leave(self.session.as_deref());
    }
}

/// Registers a connection for as long as the guard lives.
pub fn join(store: &Arc<dyn PresenceStore>, session: Option<String>, ip: IpAddr) -> PresenceGuard {
    PresenceGuard {
        session: store.enter(session, ip),
        store: Arc::clone(store),
    }
}

/// Publishes presence changes on `presence`, at most once per `every`.
pub async fn run_publisher(
    store: Arc<dyn PresenceStore>,
    broker: Arc<dyn Broker>,
    every: Duration,
) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Presence> = None;
    loop {
        timer.tick().await;
        if let Some(now) = store.take_change() {
            if last != Some(now) {
                if let Err(error) = broker.publish_now(&Topic::Presence, &now, None, None) {
                    tracing::warn!(%error, "presence update not published");
                }
                last = Some(now);
            }
        }
    }
}
