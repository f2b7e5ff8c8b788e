//! A sparse, bounded ring of time buckets, generic over what a bucket holds.

use std::collections::VecDeque;

use crate::model::{Counts, TimestampMs};
use crate::protocol::payload::RateBucket;
use crate::time::bucket_start;

/// Sparse ring of time buckets sorted by start: only buckets with events
/// exist, and only those within `len` buckets of the newest are kept.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Ring<T> {
    width: TimestampMs,
    len: usize,
    pub(super) buckets: VecDeque<(TimestampMs, T)>,
}

impl<T: Default> Ring<T> {
    pub(super) fn new(width: TimestampMs, len: usize) -> Self {
        Self {
            width,
            len,
            buckets: VecDeque::new(),
        }
    }

    fn span(&self, buckets: usize) -> TimestampMs {
        i64::try_from(buckets)
            .unwrap_or(i64::MAX)
            .saturating_mul(self.width)
    }

    /// The bucket starting at `start` (aligned), created if it is within the
    /// retained range; `None` if it is too old.
    pub(super) fn entry(&mut self, start: TimestampMs) -> Option<&mut T> {
        if self.len == 0 {
            return None;
        }
        let newest = self.buckets.back().map(|(s, _)| *s);
        match newest {
            Some(newest) if start <= newest => {
                if start <= newest.saturating_sub(self.span(self.len)) {
                    return None;
                }
                let i = match self.buckets.binary_search_by_key(&start, |(s, _)| *s) {
                    Ok(i) => i,
                    Err(i) => {
                        self.buckets.insert(i, (start, T::default()));
                        i
                    }
                };
                self.buckets.get_mut(i).map(|(_, t)| t)
            }
            _ => {
                let cutoff = start.saturating_sub(self.span(self.len));
                while self.buckets.front().is_some_and(|(s, _)| *s <= cutoff) {
                    self.buckets.pop_front();
                }
                self.buckets.push_back((start, T::default()));
                self.buckets.back_mut().map(|(_, t)| t)
            }
        }
    }

    /// Start of the first of the `count` buckets ending with the one holding
    /// `now`, and that last start.
    fn range(&self, now: TimestampMs, count: usize) -> Option<(TimestampMs, TimestampMs)> {
        if count == 0 {
            return None;
        }
        let last = bucket_start(now, self.width)?;
        Some((last.saturating_sub(self.span(count - 1)), last))
    }

    /// Buckets among the `count` ending with the one holding `now`.
    pub(super) fn window(&self, now: TimestampMs, count: usize) -> impl Iterator<Item = &T> {
        let range = self.range(now, count);
        self.buckets
            .iter()
            .filter(move |(s, _)| range.is_some_and(|(from, to)| (from..=to).contains(s)))
            .map(|(_, t)| t)
    }

    /// Dense series of `count` buckets ending with the one holding `now`.
    pub(super) fn dense(
        &self,
        now: TimestampMs,
        count: usize,
        counts: impl Fn(&T) -> Counts,
    ) -> Vec<RateBucket> {
        let Some((from, _)) = self.range(now, count) else {
            return Vec::new();
        };
        let mut out: Vec<RateBucket> = (0..count)
            .map(|i| RateBucket::new(from.saturating_add(self.span(i)), Counts::default()))
            .collect();
        for (start, t) in &self.buckets {
            let Some(offset) = start.checked_sub(from) else {
                continue;
            };
            if offset < 0 {
                continue;
            }
            let Ok(i) = usize::try_from(offset / self.width) else {
                continue;
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = RateBucket::new(slot.start, counts(t));
            }
        }
        out
    }
}
