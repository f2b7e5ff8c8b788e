//! State every task shares: the send table and the live counters the
//! progress line and the drain phase read while subscribers run.

use std::sync::atomic::{AtomicU64, AtomicUsize};

use crate::send_table::SendTable;

pub struct Shared {
    pub sends: SendTable,
    /// Events with a known sequence number received by all subscribers.
    pub delivered: AtomicU64,
    /// Events received that this run did not publish (e.g. the simulator's).
    pub foreign: AtomicU64,
    /// Subscribers currently connected.
    pub connected: AtomicUsize,
}

impl Shared {
    /// Shared state for a run publishing `events` events.
    pub fn new(events: u64) -> Self {
        Self {
            sends: SendTable::new(events),
            delivered: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
        }
    }
}
