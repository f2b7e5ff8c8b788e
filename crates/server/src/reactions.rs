//! Which session has liked or shared which post, so that a second click
//! undoes the first (one like and one share per session per post).
//!
//! A session is the dashboard's `pulse_sid` cookie. A client that drops its
//! cookie gets a new session each time, so reactions are also counted per
//! network address: at most [`ReactionLimits::per_address`] sessions of one
//! address (an IPv6 /64) can have the same reaction on the same post.
//!
//! Everything is in memory and bounded: at most
//! [`ReactionLimits::max_entries`] reactions in all and
//! [`ReactionLimits::per_session`] per session; beyond either the oldest are
//! forgotten, and a session whose reaction was forgotten (or any session
//! after a restart) can react to that post once more.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use pulse_core::model::EngagementKind;

use super::rate_limit::client_key;
use super::sync::lock;

/// A dashboard session (the random value of its cookie).
pub type SessionId = u128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReactionLimits {
    /// Reactions remembered in all (about 200 bytes each).
    pub max_entries: usize,
    /// Reactions remembered per session.
    pub per_session: usize,
    /// Sessions of one address that can hold the same reaction on one post.
    pub per_address: u32,
}

impl Default for ReactionLimits {
    /// 100,000 reactions (~20 MB at most), 1,000 per session, 8 per address
    /// (as many people as share a household or office network).
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            per_session: 1_000,
            per_address: 8,
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReactionError {
    #[error("only likes and shares can be toggled")]
    NotAToggle,
    #[error("your previous click on this post is still being saved; try again")]
    InFlight,
    #[error("at most {0} people on one network can {1} the same post")]
    AddressLimit(u32, &'static str),
}

type Key = (SessionId, u64, EngagementKind);

/// A reaction turned on or off, as a cluster's leader commits it with the
/// engagement event, so every node remembers the same reactions and a
/// second click undoes the first whichever node it reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReactionChange {
    pub session: SessionId,
    /// The address the session clicked from, normalized (an IPv6 /64).
    pub address: IpAddr,
    pub post_id: u64,
    pub kind: EngagementKind,
    pub on: bool,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    address: IpAddr,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Every entry by age (oldest first).
    order: BTreeMap<u64, Key>,
    /// Each session's entries by age (ascending `seq`).
    sessions: HashMap<SessionId, Vec<u64>>,
    /// Live entries per (address, post, kind).
    per_address: HashMap<(IpAddr, u64, EngagementKind), u32>,
    /// Keys with a change being saved.
    pending: HashSet<Key>,
    next_seq: u64,
}

impl Inner {
    fn insert(&mut self, key: Key, address: IpAddr, limits: &ReactionLimits) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(key, Entry { seq, address });
        self.order.insert(seq, key);
        self.sessions.entry(key.0).or_default().push(seq);
        *self.per_address.entry((address, key.1, key.2)).or_default() += 1;
        if self.sessions.get(&key.0).map_or(0, Vec::len) > limits.per_session {
            if let Some(&oldest) = self.sessions.get(&key.0).and_then(|s| s.first()) {
                self.remove_seq(oldest);
            }
        }
        while self.entries.len() > limits.max_entries {
            let Some((&oldest, _)) = self.order.first_key_value() else {
                break;
            };
            self.remove_seq(oldest);
        }
    }

    fn remove_seq(&mut self, seq: u64) {
        if let Some(key) = self.order.get(&seq).copied() {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: Key) {
        let Some(entry) = self.entries.remove(&key) else {
            return;
        };
        self.order.remove(&entry.seq);
        if let Some(seqs) = self.sessions.get_mut(&key.0) {
            if let Ok(index) = seqs.binary_search(&entry.seq) {
                seqs.remove(index);
            }
            if seqs.is_empty() {
                self.sessions.remove(&key.0);
            }
        }
        let counter = (entry.address, key.1, key.2);
        if let Some(count) = self.per_address.get_mut(&counter) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&counter);
            }
        }
    }
}

/// The reactions every session has on.
#[derive(Default)]
pub struct Reactions {
    limits: ReactionLimits,
    inner: Mutex<Inner>,
}

impl Reactions {
    pub fn new(limits: ReactionLimits) -> Self {
        Self {
            limits,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Starts a click of `session` (from `address`) on `kind` of `post_id`:
    /// it turns the reaction on if the session does not have it, off if it
    /// does. Apply [`Toggle::delta`] to the post, then [`Toggle::commit`];
    /// a toggle dropped without commit changes nothing. While one click of
    /// a session on a post is being saved, another is refused.
    pub fn toggle(
        &self,
        session: SessionId,
        address: IpAddr,
        post_id: u64,
        kind: EngagementKind,
    ) -> Result<Toggle<'_>, ReactionError> {
        let verb = match kind {
            EngagementKind::Like => "like",
            EngagementKind::Share => "share",
            EngagementKind::Comment => return Err(ReactionError::NotAToggle),
        };
        let address = client_key(address);
        let key = (session, post_id, kind);
        let mut inner = self.lock();
        if inner.pending.contains(&key) {
            return Err(ReactionError::InFlight);
        }
        let on = !inner.entries.contains_key(&key);
        let from_address = inner
            .per_address
            .get(&(address, post_id, kind))
            .copied()
            .unwrap_or(0);
        if on && from_address >= self.limits.per_address {
            return Err(ReactionError::AddressLimit(self.limits.per_address, verb));
        }
        inner.pending.insert(key);
        Ok(Toggle {
            reactions: self,
            key,
            address,
            on,
            done: false,
        })
    }

    /// Remembers a change the leader committed (on a follower replaying
    /// its log), with the same bounds as a local click.
    pub fn apply(&self, change: &ReactionChange) {
        let key = (change.session, change.post_id, change.kind);
        let mut inner = self.lock();
        if change.on {
            if !inner.entries.contains_key(&key) {
                inner.insert(key, change.address, &self.limits);
            }
        } else {
            inner.remove(key);
        }
    }

    /// Whether `session` has `kind` on `post_id`.
    pub fn has(&self, session: SessionId, post_id: u64, kind: EngagementKind) -> bool {
        self.lock().entries.contains_key(&(session, post_id, kind))
    }

    /// Reactions remembered now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions with at least one reaction remembered.
    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
    }
}

/// A click being saved (see [`Reactions::toggle`]).
pub struct Toggle<'a> {
    reactions: &'a Reactions,
    key: Key,
    address: IpAddr,
    on: bool,
    done: bool,
}

impl Toggle<'_> {
    /// Whether the click turns the reaction on (or off).
    pub fn on(&self) -> bool {
        self.on
    }

    /// The change as the log carries it.
    pub fn change(&self) -> ReactionChange {
        ReactionChange {
            session: self.key.0,
            address: self.address,
            post_id: self.key.1,
            kind: self.key.2,
            on: self.on,
        }
    }

    /// The change to the post's count: +1 or -1.
    pub fn delta(&self) -> i64 {
        if self.on {
            1
        } else {
            -1
        }
    }

    /// The change was saved: remember it.
    pub fn commit(mut self) {
        let limits = self.reactions.limits;
        let mut inner = self.reactions.lock();
        inner.pending.remove(&self.key);
        if self.on {
            inner.insert(self.key, self.address, &limits);
        } else {
            inner.remove(self.key);
        }
        self.done = true;
    }
}

impl Drop for Toggle<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.reactions.lock().pending.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EngagementKind::{Comment, Like, Share};

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    fn click(r: &Reactions, session: SessionId, post: u64, kind: EngagementKind) -> i64 {
        let toggle = r.toggle(session, HOME, post, kind).expect("allowed");
        let delta = toggle.delta();
        toggle.commit();
        delta
    }

    #[test]
    fn a_second_click_undoes_the_first_and_kinds_are_separate() {
        let r = Reactions::default();
        assert_eq!(click(&r, 1, 7, Like), 1);
        assert!(r.has(1, 7, Like));
        assert_eq!(click(&r, 1, 7, Share), 1);
        assert_eq!(click(&r, 2, 7, Like), 1, "another session");
        assert_eq!(click(&r, 1, 7, Like), -1);
        assert!(!r.has(1, 7, Like) && r.has(1, 7, Share));
        assert_eq!(click(&r, 1, 7, Like), 1);
        assert_eq!(
            r.toggle(1, HOME, 7, Comment).err(),
            Some(ReactionError::NotAToggle)
        );
    }

    #[test]
    fn an_uncommitted_click_changes_nothing_and_blocks_only_while_pending() {
        let r = Reactions::default();
        let first = r.toggle(1, HOME, 7, Like).unwrap();
        assert_eq!(
            r.toggle(1, HOME, 7, Like).err(),
            Some(ReactionError::InFlight)
        );
        drop(first); // e.g. storage refused the write
        assert!(!r.has(1, 7, Like));
        assert_eq!(click(&r, 1, 7, Like), 1);
    }

    #[test]
    fn one_address_holds_a_bounded_number_of_sessions_per_post() {
        let r = Reactions::new(ReactionLimits {
            per_address: 3,
            ..ReactionLimits::default()
        });
        for session in 0..3 {
            assert_eq!(click(&r, session, 7, Like), 1);
        }
        assert_eq!(
            r.toggle(99, HOME, 7, Like).err(),
            Some(ReactionError::AddressLimit(3, "like"))
        );
        // Other posts, other kinds and other addresses are not affected...
        assert_eq!(click(&r, 99, 8, Like), 1);
        assert_eq!(click(&r, 99, 7, Share), 1);
        let elsewhere: IpAddr = [10, 0, 0, 2].into();
        assert!(r.toggle(99, elsewhere, 7, Like).is_ok());
        // ...and undoing one frees a place.
        assert_eq!(click(&r, 0, 7, Like), -1);
        assert_eq!(click(&r, 99, 7, Like), 1);
    }

    #[test]
    fn memory_is_bounded_in_all_and_per_session_oldest_first() {
        let limits = ReactionLimits {
            max_entries: 50,
            per_session: 10,
            per_address: u32::MAX,
        };
        let r = Reactions::new(limits);
        for post in 0..1_000 {
            click(&r, 1, post, Like);
            assert!(r.len() <= 10);
        }
        assert!(r.has(1, 999, Like) && r.has(1, 990, Like));
        assert!(!r.has(1, 989, Like), "the session's oldest went first");
        for session in 2..1_000u128 {
            click(&r, session, 5, Share);
            assert!(r.len() <= 50);
        }
        assert_eq!(r.len(), 50);
        assert_eq!(r.sessions(), 50);
        assert!(r.has(999, 5, Share) && !r.has(2, 5, Share));
        // The bookkeeping shrinks with the entries.
        let inner = r.lock();
        assert_eq!(inner.order.len(), 50);
        assert_eq!(inner.per_address.values().sum::<u32>(), 50);
        assert!(inner.pending.is_empty());
    }
}
