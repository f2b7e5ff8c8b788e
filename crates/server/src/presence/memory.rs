//! The single-node presence store: sessions counted in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use pulse_core::model::Presence;

use super::PresenceStore;
use crate::sync::lock;

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

pub struct MemoryPresence {
    max_sessions_per_ip: u32,
    counts: Mutex<Counts>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        Self::new(8)
    }
}

impl MemoryPresence {
    /// One address counts as at most `max_sessions_per_ip` active users.
    pub fn new(max_sessions_per_ip: u32) -> Self {
        Self {
            max_sessions_per_ip,
            counts: Mutex::default(),
        }
    }

    /// The sessions counted here and the connections open, for a cluster
    /// that counts sessions across nodes.
    pub fn snapshot(&self) -> (Vec<String>, u64) {
        let counts = self.counts();
        (
            counts.sessions.keys().cloned().collect(),
            counts.connections,
        )
    }

    /// Plain counters with no invariant a panic could break half-way, so a
    /// poisoned lock is still safe to use.
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        lock(&self.counts)
    }
}

impl PresenceStore for MemoryPresence {
    fn enter(&self, session: Option<String>, ip: IpAddr) -> Option<String> {
        let mut counts = self.counts();
        counts.connections += 1;
        counts.dirty = true;
        session.filter(|session| {
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
        })
    }

    fn leave(&self, session: Option<&str>) {
        let mut counts = self.counts();
        counts.connections = counts.connections.saturating_sub(1);
        counts.dirty = true;
        let Some(session) = session else {
            return;
        };
        let mut left = None;
        if let Some((n, ip)) = counts.sessions.get_mut(session) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                left = Some(*ip);
            }
        }
        if let Some(ip) = left {
            counts.sessions.remove(session);
            if let Some(n) = counts.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_ip.remove(&ip);
                }
            }
        }
    }

    fn current(&self) -> Presence {
        let counts = self.counts();
        Presence {
            sessions: counts.sessions.len() as u64,
            connections: counts.connections,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::presence::{join, PresenceStore};

    #[test]
    fn one_address_counts_as_at_most_its_limit_of_users() {
        let tracker: Arc<dyn PresenceStore> = Arc::new(MemoryPresence::new(3));
        let (one, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let guards: Vec<_> = (0..300)
            .map(|i| join(&tracker, Some(format!("made-up-{i}")), one))
            .collect();
        assert_eq!(tracker.current().sessions, 3);
        assert_eq!(tracker.current().connections, 300);
        let real = join(&tracker, Some("real".into()), other);
        assert_eq!(tracker.current().sessions, 4, "other addresses still count");
        drop(guards);
        assert_eq!(tracker.current().sessions, 1);
        // The address's slots are free again.
        let again = join(&tracker, Some("later".into()), one);
        assert_eq!(tracker.current().sessions, 2);
        drop((real, again));
        assert_eq!(tracker.current(), Presence::default());
    }

    #[test]
    fn sessions_count_once_and_leave_on_drop() {
        let tracker: Arc<dyn PresenceStore> = Arc::new(MemoryPresence::default());
        let ip = IpAddr::from([127, 0, 0, 1]);
        let a1 = join(&tracker, Some("a".into()), ip);
        let a2 = join(&tracker, Some("a".into()), ip);
        let b = join(&tracker, Some("b".into()), ip);
        let bot = join(&tracker, None, ip);
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
