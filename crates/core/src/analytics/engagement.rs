//! Engagement analytics: per-post totals, rates, top posts and
//! sentiment-weighted attention per symbol, from [`Engagement`] events.
//!
//! Pure and deterministic: no I/O, no clock (queries take `now_ms`), no
//! threads, so it also compiles to wasm32.
//!
//! # Weights
//!
//! Engagement is scored `likes × 1 + comments × 2 + shares × 3`
//! ([`LIKE_WEIGHT`], [`COMMENT_WEIGHT`], [`SHARE_WEIGHT`]): a comment costs the
//! user more effort than a like, and a share pushes the post to a new
//! audience.
//!
//! # Totals and unlikes
//!
//! Totals never drop below zero: a negative delta is clamped so that the
//! total ends at 0 at worst. The *applied* delta (after clamping) is what the
//! rates, windows and attention see, so they always agree with the totals.
//! Windowed counts are net changes and may therefore be negative (an unlike
//! of an older like).
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
//! # Attention
//!
//! Each applied event adds `weight × applied delta × compound` of its post to
//! every symbol the post mentions: to `positive` if `compound > 0`, to
//! `negative` (as a magnitude, `× |compound|`) if `compound < 0`; neutral
//! posts (`compound == 0`) add nothing. `net = positive − negative`.
//!
//! # Memory
//!
//! At most [`EngagementConfig::max_posts`] posts are known (the most recently
//! *registered*; re-registering keeps a post's place). When the limit is
//! exceeded the oldest registration is evicted and becomes unknown: its
//! events are rejected with [`EngagementError::UnknownPost`] and it no longer
//! appears in top posts. Each post keeps at most [`MAX_SYMBOLS_PER_POST`]
//! symbols. Bucket rings are bounded by count, and each bucket only holds
//! known posts and their symbols.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{Engagement, EngagementKind, Post, TimestampMs};

pub const LIKE_WEIGHT: i64 = 1;
pub const COMMENT_WEIGHT: i64 = 2;
pub const SHARE_WEIGHT: i64 = 3;
/// Width of the fine buckets used for rates and windows.
pub const TEN_SECONDS_MS: TimestampMs = 10_000;
pub const MINUTE_MS: TimestampMs = 60_000;
/// Symbols kept per post; more are dropped at registration.
pub const MAX_SYMBOLS_PER_POST: usize = 16;

/// Score weight of one engagement of `kind`.
pub fn weight(kind: EngagementKind) -> i64 {
    match kind {
        EngagementKind::Like => LIKE_WEIGHT,
        EngagementKind::Comment => COMMENT_WEIGHT,
        EngagementKind::Share => SHARE_WEIGHT,
    }
}

/// Tuning knobs of [`EngagementEngine`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Likes, shares and comments: totals of a post, or net changes in a bucket
/// or window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub likes: i64,
    pub shares: i64,
    pub comments: i64,
}

impl Counts {
    pub fn get(&self, kind: EngagementKind) -> i64 {
        match kind {
            EngagementKind::Like => self.likes,
            EngagementKind::Share => self.shares,
            EngagementKind::Comment => self.comments,
        }
    }

    fn slot(&mut self, kind: EngagementKind) -> &mut i64 {
        match kind {
            EngagementKind::Like => &mut self.likes,
            EngagementKind::Share => &mut self.shares,
            EngagementKind::Comment => &mut self.comments,
        }
    }

    fn add(&mut self, kind: EngagementKind, delta: i64) {
        let slot = self.slot(kind);
        *slot = slot.saturating_add(delta);
    }

    fn add_all(&mut self, other: &Counts) {
        self.likes = self.likes.saturating_add(other.likes);
        self.shares = self.shares.saturating_add(other.shares);
        self.comments = self.comments.saturating_add(other.comments);
    }

    /// `likes × 1 + comments × 2 + shares × 3`.
    pub fn score(&self) -> i64 {
        self.likes
            .saturating_mul(LIKE_WEIGHT)
            .saturating_add(self.comments.saturating_mul(COMMENT_WEIGHT))
            .saturating_add(self.shares.saturating_mul(SHARE_WEIGHT))
    }

    fn clamped(self) -> Self {
        Self {
            likes: self.likes.max(0),
            shares: self.shares.max(0),
            comments: self.comments.max(0),
        }
    }
}

/// Sentiment-weighted engagement of a symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attention {
    /// Σ weight × delta × compound over posts with compound > 0.
    pub positive: f64,
    /// Σ weight × delta × |compound| over posts with compound < 0.
    pub negative: f64,
}

impl Attention {
    pub fn net(&self) -> f64 {
        self.positive - self.negative
    }

    fn add_all(&mut self, other: &Attention) {
        self.positive += other.positive;
        self.negative += other.negative;
    }
}

/// One symbol's attention over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolAttention {
    pub symbol: String,
    pub positive: f64,
    pub negative: f64,
    pub net: f64,
}

/// What an accepted event changed, for publishing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementUpdate {
    pub post_id: u64,
    pub kind: EngagementKind,
    /// The delta after clamping (0 if an unlike hit a zero total).
    pub applied_delta: i64,
    /// The post's totals after the event.
    pub totals: Counts,
    /// `false` if the event was older than the retained buckets and so only
    /// changed the totals.
    pub windowed: bool,
}

/// Net counts of one interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBucket {
    pub start: TimestampMs,
    pub likes: i64,
    pub shares: i64,
    pub comments: i64,
}

/// Dense rate series, oldest first, ending with the bucket containing `now`;
/// intervals without events have zero counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub per_10s: Vec<RateBucket>,
    pub per_minute: Vec<RateBucket>,
}

/// A post ranked by its score within a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopPost {
    pub post_id: u64,
    /// Weighted score of the window counts.
    pub score: i64,
    /// Net counts within the window.
    pub window: Counts,
    pub totals: Counts,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PostState {
    ts: TimestampMs,
    symbols: Vec<String>,
    compound: f64,
    totals: Counts,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct FineBucket {
    counts: Counts,
    posts: BTreeMap<u64, Counts>,
    symbols: BTreeMap<String, Attention>,
}

fn bucket_start(ts: TimestampMs, width: TimestampMs) -> Option<TimestampMs> {
    ts.checked_sub(ts.rem_euclid(width))
}

/// Sparse ring of time buckets sorted by start: only buckets with events
/// exist, and only those within `len` buckets of the newest are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ring<T> {
    width: TimestampMs,
    len: usize,
    buckets: VecDeque<(TimestampMs, T)>,
}

impl<T: Default> Ring<T> {
    fn new(width: TimestampMs, len: usize) -> Self {
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
    fn entry(&mut self, start: TimestampMs) -> Option<&mut T> {
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
    fn window(&self, now: TimestampMs, count: usize) -> impl Iterator<Item = &T> {
        let range = self.range(now, count);
        self.buckets
            .iter()
            .filter(move |(s, _)| range.is_some_and(|(from, to)| (from..=to).contains(s)))
            .map(|(_, t)| t)
    }

    /// Dense series of `count` buckets ending with the one holding `now`.
    fn dense(
        &self,
        now: TimestampMs,
        count: usize,
        counts: impl Fn(&T) -> Counts,
    ) -> Vec<RateBucket> {
        let Some((from, _)) = self.range(now, count) else {
            return Vec::new();
        };
        let mut out: Vec<RateBucket> = (0..count)
            .map(|i| RateBucket {
                start: from.saturating_add(self.span(i)),
                likes: 0,
                shares: 0,
                comments: 0,
            })
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
                let c = counts(t);
                slot.likes = c.likes;
                slot.shares = c.shares;
                slot.comments = c.comments;
            }
        }
        out
    }
}

/// Number of 10 s buckets a window of `window_ms` covers (rounded up).
fn window_buckets(window_ms: TimestampMs) -> usize {
    if window_ms <= 0 {
        return 0;
    }
    let n = window_ms / TEN_SECONDS_MS + i64::from(window_ms % TEN_SECONDS_MS != 0);
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Incremental engagement analytics. Serializable so the state can be
/// snapshotted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngagementEngine {
    cfg: EngagementConfig,
    posts: BTreeMap<u64, PostState>,
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

    pub fn config(&self) -> &EngagementConfig {
        &self.cfg
    }

    /// Makes a post known so its events can be attributed to `symbols` with
    /// its sentiment `compound` (non-finite values count as neutral).
    /// Re-registering updates the metadata and keeps the totals.
    pub fn register_post(
        &mut self,
        post_id: u64,
        ts: TimestampMs,
        symbols: &[String],
        compound: f64,
    ) {
        self.upsert(post_id, ts, symbols, compound, None);
    }

    /// Like [`Self::register_post`], but sets the totals (e.g. restored from
    /// storage). Negative totals are clamped to 0.
    pub fn register_post_with_totals(
        &mut self,
        post_id: u64,
        ts: TimestampMs,
        symbols: &[String],
        compound: f64,
        totals: Counts,
    ) {
        self.upsert(post_id, ts, symbols, compound, Some(totals.clamped()));
    }

    /// Registers a scored [`Post`].
    pub fn register(&mut self, post: &Post) {
        self.register_post(post.id, post.ts, &post.symbols, post.sentiment.compound);
    }

    fn upsert(
        &mut self,
        post_id: u64,
        ts: TimestampMs,
        symbols: &[String],
        compound: f64,
        totals: Option<Counts>,
    ) {
        if self.cfg.max_posts == 0 {
            return;
        }
        let mut symbols: Vec<String> = symbols.to_vec();
        symbols.sort();
        symbols.dedup();
        symbols.truncate(MAX_SYMBOLS_PER_POST);
        let compound = if compound.is_finite() { compound } else { 0.0 };
        match self.posts.get_mut(&post_id) {
            Some(post) => {
                post.ts = ts;
                post.symbols = symbols;
                post.compound = compound;
                if let Some(totals) = totals {
                    post.totals = totals;
                }
            }
            None => {
                let state = PostState {
                    ts,
                    symbols,
                    compound,
                    totals: totals.unwrap_or_default(),
                };
                self.posts.insert(post_id, state);
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
        let post = self
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
        let before = post.totals.get(kind);
        let after = before.saturating_add(event.delta).max(0);
        let applied = after - before; // both are ≥ 0: cannot overflow
        *post.totals.slot(kind) = after;

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
                let amount = weight(kind).saturating_mul(applied) as f64 * post.compound;
                if amount != 0.0 {
                    for symbol in &post.symbols {
                        // Avoids cloning the key when the symbol is already present.
                        if !bucket.symbols.contains_key(symbol) {
                            bucket.symbols.insert(symbol.clone(), Attention::default());
                        }
                        let Some(attention) = bucket.symbols.get_mut(symbol) else {
                            continue;
                        };
                        if post.compound > 0.0 {
                            attention.positive += amount;
                        } else {
                            attention.negative -= amount;
                        }
                    }
                }
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
            totals: post.totals,
            windowed,
        })
    }

    /// Totals of a known post.
    pub fn totals(&self, post_id: u64) -> Option<Counts> {
        self.posts.get(&post_id).map(|p| p.totals)
    }

    pub fn is_known(&self, post_id: u64) -> bool {
        self.posts.contains_key(&post_id)
    }

    pub fn post_count(&self) -> usize {
        self.posts.len()
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
                let post = self.posts.get(&post_id)?;
                let score = window.score();
                (score > 0).then_some(TopPost {
                    post_id,
                    score,
                    window,
                    totals: post.totals,
                })
            })
            .collect();
        top.sort_by(|a, b| b.score.cmp(&a.score).then(a.post_id.cmp(&b.post_id)));
        top.truncate(n);
        top
    }

    /// Attention of every symbol with engagement in the window, by symbol.
    pub fn symbol_attention(
        &self,
        now_ms: TimestampMs,
        window_ms: TimestampMs,
    ) -> Vec<SymbolAttention> {
        let mut sums: BTreeMap<&str, Attention> = BTreeMap::new();
        for bucket in self.fine.window(now_ms, window_buckets(window_ms)) {
            for (symbol, attention) in &bucket.symbols {
                sums.entry(symbol).or_default().add_all(attention);
            }
        }
        sums.into_iter()
            .map(|(symbol, a)| SymbolAttention {
                symbol: symbol.to_owned(),
                positive: a.positive,
                negative: a.negative,
                net: a.net(),
            })
            .collect()
    }

    /// Attention of one symbol in the window (zero if none).
    pub fn attention(
        &self,
        symbol: &str,
        now_ms: TimestampMs,
        window_ms: TimestampMs,
    ) -> Attention {
        let mut sum = Attention::default();
        for bucket in self.fine.window(now_ms, window_buckets(window_ms)) {
            if let Some(a) = bucket.symbols.get(symbol) {
                sum.add_all(a);
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: TimestampMs = 1_780_000_020_000; // minute-aligned

    fn ev(post_id: u64, kind: EngagementKind, delta: i64, ts: TimestampMs) -> Engagement {
        Engagement {
            post_id,
            kind,
            delta,
            ts,
        }
    }

    fn syms(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    use EngagementKind::{Comment, Like, Share};

    #[test]
    fn totals_clamp_at_zero() {
        let mut e = EngagementEngine::default();
        e.register_post(1, T0, &[], 0.0);
        assert_eq!(e.apply(&ev(1, Like, 3, T0)).unwrap().applied_delta, 3);
        // 3 - 5 would be -2: clamped to 0, so only -3 is applied.
        let u = e.apply(&ev(1, Like, -5, T0)).unwrap();
        assert_eq!((u.applied_delta, u.totals.likes), (-3, 0));
        let u = e.apply(&ev(1, Like, -1, T0)).unwrap();
        assert_eq!((u.applied_delta, u.totals.likes, u.windowed), (0, 0, false));
        e.apply(&ev(1, Share, 2, T0)).unwrap();
        e.apply(&ev(1, Comment, 1, T0)).unwrap();
        let t = e.totals(1).unwrap();
        assert_eq!((t.likes, t.shares, t.comments), (0, 2, 1));
        // Score = 0·1 + 1·2 + 2·3 = 8.
        assert_eq!(t.score(), 8);
        // Extreme deltas saturate instead of overflowing.
        e.apply(&ev(1, Like, i64::MAX, T0)).unwrap();
        e.apply(&ev(1, Like, i64::MAX, T0)).unwrap();
        assert_eq!(e.totals(1).unwrap().likes, i64::MAX);
        e.apply(&ev(1, Like, i64::MIN, T0)).unwrap();
        assert_eq!(e.totals(1).unwrap().likes, 0);
    }

    #[test]
    fn unknown_posts_are_rejected() {
        let mut e = EngagementEngine::default();
        assert_eq!(
            e.apply(&ev(7, Like, 1, T0)),
            Err(EngagementError::UnknownPost(7))
        );
        assert_eq!(
            EngagementError::UnknownPost(7).to_string(),
            "unknown post 7"
        );
    }

    #[test]
    fn rates_are_dense_and_net() {
        let mut e = EngagementEngine::new(EngagementConfig {
            max_posts: 10,
            ten_second_buckets: 3,
            minute_buckets: 2,
        });
        e.register_post(1, T0, &[], 0.0);
        e.apply(&ev(1, Like, 2, T0 + 1_000)).unwrap(); // bucket T0
        e.apply(&ev(1, Share, 1, T0 + 9_999)).unwrap(); // bucket T0
        e.apply(&ev(1, Like, -1, T0 + 20_000)).unwrap(); // bucket T0+20s, boundary

        // now = T0+25s: 10 s buckets T0, T0+10s, T0+20s.
        let r = e.rates(T0 + 25_000);
        let fine: Vec<_> = r
            .per_10s
            .iter()
            .map(|b| (b.start, b.likes, b.shares, b.comments))
            .collect();
        assert_eq!(
            fine,
            [
                (T0, 2, 1, 0),
                (T0 + 10_000, 0, 0, 0),
                (T0 + 20_000, -1, 0, 0)
            ]
        );
        // Minutes T0-60s (empty) and T0: likes 2-1 = 1, shares 1.
        let minutes: Vec<_> = r
            .per_minute
            .iter()
            .map(|b| (b.start, b.likes, b.shares, b.comments))
            .collect();
        assert_eq!(minutes, [(T0 - 60_000, 0, 0, 0), (T0, 1, 1, 0)]);

        e.apply(&ev(1, Comment, 4, T0 + 61_000)).unwrap(); // next minute
                                                           // now = T0+61s: the fine ring kept only buckets within 3 of T0+60s.
        let r = e.rates(T0 + 61_000);
        assert_eq!(
            r.per_10s.iter().map(|b| b.start).collect::<Vec<_>>(),
            [T0 + 40_000, T0 + 50_000, T0 + 60_000]
        );
        assert_eq!(r.per_10s[2].comments, 4);
        assert_eq!((r.per_minute[0].likes, r.per_minute[1].comments), (1, 4));
        assert_eq!(e.fine.buckets.len(), 1, "old fine buckets evicted");
    }

    #[test]
    fn top_posts_rank_by_weighted_window_score() {
        let mut e = EngagementEngine::default();
        for id in 1..=4 {
            e.register_post(id, T0, &[], 0.0);
        }
        let now = T0 + 600_000; // 10 minutes later
                                // Post 1: 5 likes now → 5. Post 2: 1 share + 1 comment → 3 + 2 = 5.
                                // Post 3: 3 shares, but 6 minutes ago → 9 in the 15 min window only.
                                // Post 4: 1 like then unliked → 0, never listed.
        e.apply(&ev(1, Like, 5, now - 1_000)).unwrap();
        e.apply(&ev(2, Share, 1, now - 2_000)).unwrap();
        e.apply(&ev(2, Comment, 1, now - 3_000)).unwrap();
        e.apply(&ev(3, Share, 3, now - 360_000)).unwrap();
        e.apply(&ev(4, Like, 1, now)).unwrap();
        e.apply(&ev(4, Like, -1, now)).unwrap();

        let top5 = e.top_posts(now, 5 * 60_000, 10);
        let ranked: Vec<_> = top5.iter().map(|t| (t.post_id, t.score)).collect();
        assert_eq!(ranked, [(1, 5), (2, 5)], "tie → lower id first");
        assert_eq!(top5[1].window.shares, 1);

        let top15 = e.top_posts(now, 15 * 60_000, 2);
        let ranked: Vec<_> = top15.iter().map(|t| (t.post_id, t.score)).collect();
        assert_eq!(ranked, [(3, 9), (1, 5)]);
        assert_eq!(top15[0].totals.shares, 3);

        assert!(e.top_posts(now, 0, 10).is_empty());
        assert!(e.top_posts(now, 60_000, 0).is_empty());
        // Events after `now` are not counted.
        assert!(e.top_posts(now - 20_000, 10_000, 10).is_empty());
    }

    #[test]
    fn window_boundaries_are_bucket_aligned() {
        let mut e = EngagementEngine::default();
        e.register_post(1, T0, &[], 0.0);
        e.apply(&ev(1, Like, 1, T0)).unwrap(); // bucket T0
                                               // now = T0+19_999 lies in bucket T0+10s. A 10 s window is just that
                                               // bucket; an 11 s window rounds up to 2 buckets and includes T0.
        assert!(e.top_posts(T0 + 19_999, 10_000, 1).is_empty());
        assert_eq!(e.top_posts(T0 + 19_999, 11_000, 1).len(), 1);
        assert_eq!(window_buckets(1), 1);
        assert_eq!(window_buckets(10_000), 1);
        assert_eq!(window_buckets(10_001), 2);
        assert_eq!(window_buckets(-5), 0);
    }

    #[test]
    fn attention_is_sentiment_weighted_per_symbol() {
        let mut e = EngagementEngine::default();
        e.register_post(1, T0, &syms(&["AAPL", "TSLA", "AAPL"]), 0.5);
        e.register_post(2, T0, &syms(&["AAPL"]), -0.8);
        e.register_post(3, T0, &syms(&["AAPL"]), 0.0);
        // Post 1: 2 shares → weight 3·2 = 6, × 0.5 = 3 to AAPL and TSLA
        // (AAPL listed twice but deduplicated).
        e.apply(&ev(1, Share, 2, T0)).unwrap();
        // Post 2: 1 comment → 2, × 0.8 = 1.6 negative for AAPL.
        e.apply(&ev(2, Comment, 1, T0 + 1)).unwrap();
        // Post 3 is neutral: adds nothing.
        e.apply(&ev(3, Like, 10, T0 + 2)).unwrap();
        // Post 1 unlike of nothing: clamped to 0, adds nothing.
        e.apply(&ev(1, Like, -4, T0 + 3)).unwrap();

        let all = e.symbol_attention(T0 + 5_000, 60_000);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].symbol, "AAPL");
        assert!(approx(all[0].positive, 3.0));
        assert!(approx(all[0].negative, 1.6));
        assert!(approx(all[0].net, 1.4)); // 3 - 1.6
        assert_eq!(all[1].symbol, "TSLA");
        assert!(approx(all[1].net, 3.0));

        // Post 2 loses its comment: -2 × 0.8 = -1.6 → AAPL negative back to 0.
        e.apply(&ev(2, Comment, -1, T0 + 4)).unwrap();
        let a = e.attention("AAPL", T0 + 5_000, 60_000);
        assert!(approx(a.negative, 0.0) && approx(a.net(), 3.0));
        assert_eq!(e.attention("NONE", T0, 60_000), Attention::default());
        // Outside the window.
        assert!(e.symbol_attention(T0 + 120_000, 60_000).is_empty());
    }

    #[test]
    fn oldest_registrations_are_evicted() {
        let mut e = EngagementEngine::new(EngagementConfig {
            max_posts: 2,
            ..EngagementConfig::default()
        });
        e.register_post(1, T0, &[], 0.0);
        e.register_post(2, T0, &[], 0.0);
        e.apply(&ev(1, Like, 5, T0)).unwrap();
        e.register_post(1, T0, &[], 0.3); // re-register: keeps place and totals
        assert_eq!(e.totals(1).unwrap().likes, 5);
        e.register_post(3, T0, &[], 0.0);
        assert_eq!(e.post_count(), 2);
        assert!(!e.is_known(1));
        assert_eq!(
            e.apply(&ev(1, Like, 1, T0)),
            Err(EngagementError::UnknownPost(1))
        );
        // Evicted posts vanish from the top list even though buckets remember them.
        assert!(e.top_posts(T0, 60_000, 10).is_empty());
        assert!(e.is_known(2) && e.is_known(3));

        let mut none = EngagementEngine::new(EngagementConfig {
            max_posts: 0,
            ..EngagementConfig::default()
        });
        none.register_post(1, T0, &[], 0.0);
        assert_eq!(none.post_count(), 0);
    }

    #[test]
    fn seeded_totals_are_the_starting_point() {
        let mut e = EngagementEngine::default();
        let totals = Counts {
            likes: 10,
            shares: -3,
            comments: 2,
        };
        e.register_post_with_totals(9, T0, &syms(&["BTC-USD"]), 0.2, totals);
        assert_eq!(e.totals(9).unwrap().shares, 0, "negative seed clamped");
        let u = e.apply(&ev(9, Like, -4, T0)).unwrap();
        assert_eq!((u.applied_delta, u.totals.likes), (-4, 6));
        // The seed is not engagement within any window: only the -4 is.
        assert!(e.top_posts(T0, 60_000, 1).is_empty());
        let a = e.attention("BTC-USD", T0, 60_000);
        assert!(approx(a.positive, -0.8)); // 1 × -4 × 0.2
    }

    #[test]
    fn register_from_post_uses_its_symbols_and_compound() {
        use crate::model::{Sentiment, SentimentLabel};
        let mut e = EngagementEngine::default();
        let post = Post {
            id: 5,
            author: "ann".into(),
            text: "$AAPL".into(),
            ts: T0,
            sentiment: Sentiment {
                compound: -0.5,
                pos: 0.0,
                neu: 0.5,
                neg: 0.5,
                label: SentimentLabel::Negative,
            },
            symbols: syms(&["AAPL"]),
        };
        e.register(&post);
        e.apply(&ev(5, Like, 2, T0)).unwrap();
        assert!(approx(e.attention("AAPL", T0, 10_000).negative, 1.0)); // 1·2·0.5
    }

    #[test]
    fn old_events_update_totals_only_and_odd_timestamps_are_safe() {
        let mut e = EngagementEngine::new(EngagementConfig {
            max_posts: 10,
            ten_second_buckets: 2,
            minute_buckets: 1,
        });
        e.register_post(1, T0, &syms(&["X"]), f64::NAN);
        e.apply(&ev(1, Like, 1, T0 + 120_000)).unwrap();
        let u = e.apply(&ev(1, Like, 1, T0)).unwrap();
        assert_eq!((u.totals.likes, u.windowed), (2, false));
        assert!(
            e.attention("X", T0 + 120_000, 60_000).net() == 0.0,
            "NaN compound is neutral"
        );

        assert_eq!(
            e.apply(&ev(1, Like, 1, i64::MIN)),
            Err(EngagementError::TimestampOutOfRange(i64::MIN))
        );
        assert!(e.apply(&ev(1, Like, 1, i64::MAX)).is_ok());
        assert!(e.apply(&ev(1, Like, 1, -1)).is_ok());
        let _ = e.rates(i64::MIN);
        let _ = e.rates(i64::MAX);
        let _ = e.top_posts(i64::MAX, i64::MAX, usize::MAX);
        let _ = e.top_posts(i64::MIN, i64::MAX, 1);
        let _ = e.symbol_attention(i64::MIN + 1, i64::MAX);
        assert!(e.fine.buckets.len() <= 2 && e.minutes.buckets.len() <= 1);
        // -1 ms lies in the 10 s bucket [-10000, 0).
        assert_eq!(bucket_start(-1, TEN_SECONDS_MS), Some(-10_000));
    }

    #[test]
    fn rings_stay_bounded_under_load() {
        let mut e = EngagementEngine::default();
        for id in 0..20_000u64 {
            e.register_post(id, T0, &syms(&["A", "B"]), 0.1);
            e.apply(&ev(id, Comment, 1, T0 + id as i64 * 1_000))
                .unwrap();
        }
        assert_eq!(e.post_count(), 10_000);
        assert!(e.fine.buckets.len() <= 90);
        assert!(e.minutes.buckets.len() <= 60);
        let now = T0 + 19_999_000;
        let rates = e.rates(now);
        assert_eq!((rates.per_10s.len(), rates.per_minute.len()), (90, 60));
        // Each full 10 s bucket holds 10 events, each worth one comment.
        assert_eq!(rates.per_10s[88].comments, 10);
        // 15 min window = 90 buckets: events from now-899s..now → 900 comments,
        // and 900 × 2 × 0.1 = 180 attention per symbol.
        let a = e.attention("A", now, 15 * 60_000);
        assert!(approx(a.positive, 180.0), "{}", a.positive);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut e = EngagementEngine::default();
        e.register_post(1, T0, &syms(&["A"]), 0.5);
        e.apply(&ev(1, Like, 1, T0)).unwrap();
        let json = serde_json::to_string(&e).unwrap();
        let back: EngagementEngine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let rates = serde_json::to_value(e.rates(T0)).unwrap();
        assert_eq!(rates["per_10s"][89]["likes"], 1);
    }
}
