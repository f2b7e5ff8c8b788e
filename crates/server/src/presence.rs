//! Active users: distinct dashboard sessions with an open WebSocket.
//!
//! Counts change on every connect and disconnect, but the `presence` topic
//! gets at most one update per second (the latest count), so a reconnect
//! storm cannot flood subscribers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_core::model::Presence;
use pulse_core::protocol::Topic;

use super::hub::Hub;
use super::sync::lock;

#[derive(Default)]
struct Counts {
    /// Connections per session, and the address that brought the session.
    sessions: HashMap<String, (u32, IpAddr)>,
    /// Sessions each address brought, so one address counts as at most
    /// `max_sessions_per_ip` users however many ids it makes up.
    per_ip: HashMap<IpAddr, u32>,
    connections: u64,
    dirty: bool,
}

pub struct PresenceTracker {
    max_sessions_per_ip: u32,
    counts: Mutex<Counts>,
}

impl Default for PresenceTracker {
    fn default() -> Self {
        Self::new(8)
    }
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
            let mut left = None;
            if let Some((n, ip)) = counts.sessions.get_mut(&session) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    left = Some(*ip);
                }
            }
            if let Some(ip) = left {
                counts.sessions.remove(&session);
                if let Some(n) = counts.per_ip.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.per_ip.remove(&ip);
                    }
                }
            }
        }
        counts.dirty = true;
    }
}

impl PresenceTracker {
    /// One address counts as at most `max_sessions_per_ip` active users.
    pub fn new(max_sessions_per_ip: u32) -> Self {
        Self {
            max_sessions_per_ip,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        lock(&self.counts)
    }

    /// Registers a connection from `ip`; `session` identifies a dashboard
    /// page (several connections of one page count once). A new session
    /// from an address that already brought its limit counts as a
    /// connection only.
    pub fn join(self: &Arc<Self>, session: Option<String>, ip: IpAddr) -> PresenceGuard {
        let mut counts = self.counts();
        counts.connections += 1;
        let session = session.filter(|session| {
            if let Some((n, _)) = counts.sessions.get_mut(session) {
                *n += 1;
                return true;
            }
            let brought = counts.per_ip.get(&ip).copied().unwrap_or(0);
            if brought >= self.max_sessions_per_ip {
                return false;
            }
            counts.per_ip.insert(ip, brought + 1);
            counts.sessions.insert(session.clone(), (1, ip));
            true
        });
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
    fn one_address_counts_as_at_most_its_limit_of_users() {
        let tracker = Arc::new(PresenceTracker::new(3));
        let (one, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let guards: Vec<_> = (0..300)
            .map(|i| tracker.join(Some(format!("made-up-{i}")), one))
            .collect();
        assert_eq!(tracker.current().sessions, 3);
        assert_eq!(tracker.current().connections, 300);
        let real = tracker.join(Some("real".into()), other);
        assert_eq!(tracker.current().sessions, 4, "other addresses still count");
        drop(guards);
        assert_eq!(tracker.current().sessions, 1);
        // The address's slots are free again.
        let again = tracker.join(Some("later".into()), one);
        assert_eq!(tracker.current().sessions, 2);
        drop((real, again));
        assert_eq!(tracker.current(), Presence::default());
    }

    #[test]
    fn sessions_count_once_and_leave_on_drop() {
        let tracker = Arc::new(PresenceTracker::default());
        let ip = IpAddr::from([127, 0, 0, 1]);
        let a1 = tracker.join(Some("a".into()), ip);
        let a2 = tracker.join(Some("a".into()), ip);
        let b = tracker.join(Some("b".into()), ip);
        let bot = tracker.join(None, ip);
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
