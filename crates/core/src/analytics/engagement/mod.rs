//! Engagement analytics: per-post totals, rates and top posts, from
//! [`Engagement`] events.
//!
//! Pure and deterministic: no I/O, no clock (queries take `now_ms`), no
//! threads, so it also compiles to wasm32.
//!
//! # Weights
//!
//! Engagement is scored `likes × 1 + comments × 2 + shares × 3`
//! ([`crate::model::EngagementKind::weight`], [`Counts::score`]): a comment
//! costs the user more effort than a like, and a share pushes the post to a
//! new audience.
//!
//! # Totals and unlikes
//!
//! Totals never drop below zero: a negative delta is clamped so that the
//! total ends at 0 at worst. The *applied* delta (after clamping) is what the
//! rates and windows see, so they always agree with the totals. Windowed
//! counts are net changes and may therefore be negative (an unlike of an
//! older like).
//!
//! # Time buckets and windows
//!
//! Events are bucketed by their own `ts` into 10 s buckets (the last
//! [`EngagementConfig::ten_second_buckets`], 15 minutes by default) and 1 min
//! buckets (the last [`EngagementConfig::minute_buckets`]). Buckets are
//! retained relative to the newest event; an event older than the retained
//! range still updates the totals but no window. A window of `window_ms`
//! covers the `ceil(window_ms / 10 s)` ten-second buckets ending with the one
//! that contains `now_ms`, so windows are 10 s-granular and at most as long
//! as the retained range. Buckets after `now_ms` are not counted.
//!
//! # Memory
//!
//! At most [`EngagementConfig::max_posts`] posts are known (the most recently
//! *registered*; re-registering keeps a post's place). When the limit is
//! exceeded the oldest registration is evicted and becomes unknown: its
//! events are rejected with [`EngagementError::UnknownPost`] and it no longer
//! appears in top posts. Bucket rings are bounded by count, and each bucket
//! only holds posts that had events in it.

mod ring;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use crate::model::{Engagement, Post, TimestampMs};
use crate::time::bucket_start;
use ring::Ring;

// The counts type and the wire payloads the engine produces, defined in the
// model and the protocol.
use crate::model::Counts;
use crate::protocol::payload::{EngagementUpdate, Rates, TopPost};

/// Width of the fine buckets used for rates and windows; the dashboard's
/// engagement chart uses the same buckets.
pub const TEN_SECONDS_MS: TimestampMs = 10_000;
pub const MINUTE_MS: TimestampMs = 60_000;

/// Tuning knobs of [`EngagementEngine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngagementConfig {
    /// Posts kept; older registrations are evicted.
    pub max_posts: usize,
    /// 10 s buckets retained; also the longest window (90 = 15 minutes).
    pub ten_second_buckets: usize,
    /// 1 min buckets retained (60 = one hour of per-minute rates).
    pub minute_buckets: usize,
}

impl Default for EngagementConfig {
    fn default() -> Self {
        Self {
            max_posts: 10_000,
            ten_second_buckets: 90,
            minute_buckets: 60,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngagementError {
    /// Never registered, or evicted.
    #[error("unknown post {0}")]
    UnknownPost(u64),
    /// So close to `i64::MIN` that its bucket cannot be computed.
    #[error("timestamp {0} out of range")]
    TimestampOutOfRange(TimestampMs),
}

/// One 10 s bucket: the net counts overall and per post.
#[derive(Clone, Debug, Default, PartialEq)]
struct FineBucket {
    counts: Counts,
    posts: BTreeMap<u64, Counts>,
}

/// Number of 10 s buckets a window of `window_ms` covers (rounded up).
fn window_buckets(window_ms: TimestampMs) -> usize {
    if window_ms <= 0 {
        return 0;
    }
    let n = window_ms / TEN_SECONDS_MS + i64::from(window_ms % TEN_SECONDS_MS != 0);
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Incremental engagement analytics.
#[derive(Clone, Debug, PartialEq)]
pub struct EngagementEngine {
    cfg: EngagementConfig,
    /// Totals of every known post.
    posts: BTreeMap<u64, Counts>,
    /// Registration order, oldest first, for eviction.
    order: VecDeque<u64>,
    fine: Ring<FineBucket>,
    minutes: Ring<Counts>,
}

impl Default for EngagementEngine {
    fn default() -> Self {
        Self::new(EngagementConfig::default())
    }
}

impl EngagementEngine {
    pub fn new(cfg: EngagementConfig) -> Self {
        Self {
            fine: Ring::new(TEN_SECONDS_MS, cfg.ten_second_buckets),
            minutes: Ring::new(MINUTE_MS, cfg.minute_buckets),
            posts: BTreeMap::new(),
            order: VecDeque::new(),
            cfg,
        }
    }

    /// Makes a post known so its events are accepted. Re-registering keeps
    /// its totals and its place in the eviction order.
    pub fn register_post(&mut self, post_id: u64) {
        self.upsert(post_id, None);
    }

    /// Like [`Self::register_post`], but sets the totals (e.g. restored from
    /// storage). Negative totals are clamped to 0.
    pub fn register_post_with_totals(&mut self, post_id: u64, totals: Counts) {
        self.upsert(post_id, Some(totals.clamped()));
    }

    /// Registers a scored [`Post`].
    pub fn register(&mut self, post: &Post) {
        self.register_post(post.id);
    }

    fn upsert(&mut self, post_id: u64, totals: Option<Counts>) {
        if self.cfg.max_posts == 0 {
            return;
        }
        match self.posts.get_mut(&post_id) {
            Some(post) => {
                if let Some(totals) = totals {
                    *post = totals;
                }
            }
            None => {
                self.posts.insert(post_id, totals.unwrap_or_default());
                self.order.push_back(post_id);
                while self.posts.len() > self.cfg.max_posts {
                    let Some(oldest) = self.order.pop_front() else {
                        break;
                    };
                    self.posts.remove(&oldest);
                }
            }
        }
    }

    /// Applies one event to its post. Fails for unknown (or evicted) posts.
    pub fn apply(&mut self, event: &Engagement) -> Result<EngagementUpdate, EngagementError> {
        let totals = self
            .posts
            .get_mut(&event.post_id)
            .ok_or(EngagementError::UnknownPost(event.post_id))?;
        let (Some(fine_start), Some(minute_start)) = (
            bucket_start(event.ts, TEN_SECONDS_MS),
            bucket_start(event.ts, MINUTE_MS),
        ) else {
            return Err(EngagementError::TimestampOutOfRange(event.ts));
        };

        let kind = event.kind;
        let before = totals.get(kind);
        let after = before.saturating_add(event.delta).max(0);
        let applied = after - before; // both are ≥ 0: cannot overflow
        *totals.slot(kind) = after;

        let mut windowed = false;
        if applied != 0 {
            if let Some(bucket) = self.fine.entry(fine_start) {
                windowed = true;
                bucket.counts.add(kind, applied);
                bucket
                    .posts
                    .entry(event.post_id)
                    .or_default()
                    .add(kind, applied);
            }
            if let Some(counts) = self.minutes.entry(minute_start) {
                windowed = true;
                counts.add(kind, applied);
            }
        }
        Ok(EngagementUpdate {
            post_id: event.post_id,
            kind,
            applied_delta: applied,
            totals: *totals,
            windowed,
        })
    }

    /// Totals of a known post.
    pub fn totals(&self, post_id: u64) -> Option<Counts> {
        self.posts.get(&post_id).copied()
    }

    pub fn is_known(&self, post_id: u64) -> bool {
        self.posts.contains_key(&post_id)
    }

    /// Net counts per 10 s (the last `ten_second_buckets`) and per minute
    /// (the last `minute_buckets`), dense, ending with the bucket of `now_ms`.
    pub fn rates(&self, now_ms: TimestampMs) -> Rates {
        Rates {
            per_10s: self
                .fine
                .dense(now_ms, self.cfg.ten_second_buckets, |b| b.counts),
            per_minute: self.minutes.dense(now_ms, self.cfg.minute_buckets, |c| *c),
        }
    }

    /// The `n` known posts with the highest positive score within the window,
    /// best first; ties go to the lower post id.
    pub fn top_posts(&self, now_ms: TimestampMs, window_ms: TimestampMs, n: usize) -> Vec<TopPost> {
        let mut window: BTreeMap<u64, Counts> = BTreeMap::new();
        for bucket in self.fine.window(now_ms, window_buckets(window_ms)) {
            for (id, counts) in &bucket.posts {
                window.entry(*id).or_default().add_all(counts);
            }
        }
        let mut top: Vec<TopPost> = window
            .into_iter()
            .filter_map(|(post_id, window)| {
                let totals = *self.posts.get(&post_id)?;
                let score = window.score();
                (score > 0).then_some(TopPost {
                    post_id,
                    score,
                    window,
                    totals,
                })
            })
            .collect();
        top.sort_by(|a, b| b.score.cmp(&a.score).then(a.post_id.cmp(&b.post_id)));
        top.truncate(n);
        top
    }
}
