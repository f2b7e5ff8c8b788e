//! When each sequence number was sent. Ticks carry their sequence number in
//! `volume` (`ts` has only ms resolution), so a subscriber can look up the
//! send instant of every event it receives. The table is pre-allocated for
//! the whole run so publishers and subscribers share it without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub struct SendTable {
    t0: Instant,
    /// Send time of every sequence number, ns since `t0` (0 = not sent).
    sent_ns: Vec<AtomicU64>,
    next_seq: AtomicU64,
}

impl SendTable {
    /// A table for sequence numbers `0..len`.
    pub fn new(len: u64) -> Self {
        Self {
            t0: Instant::now(),
            sent_ns: (0..len).map(|_| AtomicU64::new(0)).collect(),
            next_seq: AtomicU64::new(0),
        }
    }

    /// The run's clock: ns since the table was made.
    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// The next sequence number to publish, or `None` once all are taken
    /// (publishers share one counter so the numbers are globally unique).
    pub fn claim(&self) -> Option<u64> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.slot(seq).map(|_| seq)
    }

    /// Records that `seq` is being sent now.
    pub fn mark_sent(&self, seq: u64) {
        if let Some(slot) = self.slot(seq) {
            // 1 ns rather than 0, which means "not sent".
            slot.store(self.now_ns().max(1), Ordering::Release);
        }
    }

    /// Send time of `seq` if this run published it.
    pub fn sent_at(&self, seq: u64) -> Option<u64> {
        match self.slot(seq)?.load(Ordering::Acquire) {
            0 => None,
            ns => Some(ns),
        }
    }

    /// Sequence numbers handed out so far, for the progress line.
    pub fn claimed(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed).min(self.len())
    }

    /// Sequence numbers actually sent (a failed publisher may have sent some).
    pub fn recorded(&self) -> u64 {
        let sent = self.sent_ns.iter();
        sent.filter(|s| s.load(Ordering::Relaxed) != 0).count() as u64
    }

    fn len(&self) -> u64 {
        self.sent_ns.len() as u64
    }

    fn slot(&self, seq: u64) -> Option<&AtomicU64> {
        self.sent_ns.get(usize::try_from(seq).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_each_sequence_number_once_then_none() {
        let table = SendTable::new(3);
        let claims: Vec<_> = (0..5).map(|_| table.claim()).collect();
        assert_eq!(claims, [Some(0), Some(1), Some(2), None, None]);
        assert_eq!(table.claimed(), 3);
    }

    #[test]
    fn only_sent_numbers_have_a_send_time() {
        let table = SendTable::new(4);
        assert_eq!(table.sent_at(1), None);
        table.mark_sent(1);
        table.mark_sent(3);
        assert!(table.sent_at(1).is_some_and(|ns| ns > 0));
        assert_eq!(table.sent_at(0), None);
        assert_eq!(table.recorded(), 2);
        // Foreign events carry numbers outside the table.
        assert_eq!(table.sent_at(4), None);
        assert_eq!(table.sent_at(u64::MAX), None);
        table.mark_sent(99);
        assert_eq!(table.recorded(), 2);
    }

    #[test]
    fn send_times_follow_the_run_clock() {
        let table = SendTable::new(1);
        std::thread::sleep(std::time::Duration::from_millis(2));
        table.mark_sent(0);
        let sent = table.sent_at(0).unwrap_or(0);
        assert!(sent >= 2_000_000, "{sent} ns");
        assert!(table.now_ns() >= sent);
    }
}
