//! Active users: distinct dashboard sessions with an open WebSocket.
//!
//! Counts change on every connect and disconnect, but the `presence` topic
//! gets at most one update per second (the latest count), so a reconnect
//! storm cannot flood subscribers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::Presence;
use crate::protocol::Topic;

use super::hub::Hub;

#[derive(Default)]
struct Counts {
    sessions: HashMap<String, u32>,
    connections: u64,
    dirty: bool,
}

#[derive(Default)]
pub struct PresenceTracker {
    counts: Mutex<Counts>,
}

/// Unregisters its connection when dropped, however the connection ends.
pub struct PresenceGuard {
    tracker: Arc<PresenceTracker>,
    session: Option<String>,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let mut counts = self.tracker.counts();
        counts.connections = counts.connections.saturating_sub(1);
        if let Some(session) = self.session.take() {
            if let Some(n) = counts.sessions.get_mut(&session) {
                *n -= 1;
                if *n == 0 {
                    counts.sessions.remove(&session);
                }
            }
        }
        counts.dirty = true;
    }
}

impl PresenceTracker {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection; `session` identifies a dashboard page (several
    /// connections of one page count once).
    pub fn join(self: &Arc<Self>, session: Option<String>) -> PresenceGuard {
        let mut counts = self.counts();
        counts.connections += 1;
        if let Some(session) = &session {
            *counts.sessions.entry(session.clone()).or_default() += 1;
        }
        counts.dirty = true;
        PresenceGuard {
            tracker: Arc::clone(self),
            session,
        }
    }

    pub fn current(&self) -> Presence {
        let counts = self.counts();
        Presence {
            sessions: counts.sessions.len() as u64,
            connections: counts.connections,
        }
    }

    /// The current counts if they changed since the last call.
    fn take_change(&self) -> Option<Presence> {
        let mut counts = self.counts();
        if !counts.dirty {
            return None;
        }
        counts.dirty = false;
        Some(Presence {
            sessions: counts.sessions.len() as u64,
            connections: counts.connections,
        })
    }
}

/// Publishes presence changes on `presence`, at most once per `every`.
pub async fn run_publisher(tracker: Arc<PresenceTracker>, hub: Arc<Hub>, every: Duration) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Presence> = None;
    loop {
        timer.tick().await;
        if let Some(now) = tracker.take_change() {
            if last != Some(now) {
                if let Err(error) = hub.publish(&Topic::Presence, &now, None, None) {
                    tracing::warn!(%error, "presence update not published");
                }
                last = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_count_once_and_leave_on_drop() {
        let tracker = Arc::new(PresenceTracker::default());
        let a1 = tracker.join(Some("a".into()));
        let a2 = tracker.join(Some("a".into()));
        let b = tracker.join(Some("b".into()));
        let bot = tracker.join(None);
        assert_eq!(
            tracker.current(),
            Presence {
                sessions: 2,
                connections: 4
            }
        );
        drop(a1);
        assert_eq!(tracker.current().sessions, 2);
        drop(a2);
        drop(bot);
        assert_eq!(
            tracker.current(),
            Presence {
                sessions: 1,
                connections: 1
            }
        );
        assert!(tracker.take_change().is_some());
        assert!(tracker.take_change().is_none(), "no change since");
        drop(b);
        assert_eq!(
            tracker.take_change(),
            Some(Presence {
                sessions: 0,
                connections: 0
            })
        );
    }
}
