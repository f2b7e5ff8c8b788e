//! What clients parse: the `data` of each topic's events, and the read models
//! the HTTP API and the dashboard's first paint return. The engines build
//! these; they are defined here so the wire format has one home.

use serde::{Deserialize, Serialize};

use crate::model::{Candle, CandleInterval, Counts, EngagementKind, Post, TimestampMs};

/// Payload of `posts` events: a post with its current engagement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedPost {
    #[serde(flatten)]
    pub post: Post,
    pub engagement: Counts,
}

/// Aggregate of the posts in a rolling sentiment window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SentimentStats {
    pub posts: u64,
    /// Mean compound score; 0 when there are no posts.
    pub mean_compound: f64,
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
}

/// Payload of `sentiment` events, sent whenever a post changes a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentimentUpdate {
    /// `"overall"` or a symbol.
    pub scope: String,
    pub ts: TimestampMs,
    pub stats: SentimentStats,
}

/// Payload of `engagement` events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngagementEvent {
    pub post_id: u64,
    pub kind: EngagementKind,
    pub delta: i64,
    pub ts: TimestampMs,
    pub totals: Counts,
}

/// What an accepted engagement event changed: the engine's answer, and the
/// body of `POST /api/engagement`'s reply.
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

/// Payload of `candles:<SYMBOL>` events: a candle that changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandleUpdate {
    pub candle: Candle,
    /// `true` once the candle's interval is over; a closed candle may still be
    /// revised by a late tick within the tolerance.
    pub closed: bool,
}

/// Everything the dashboard shows about one symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolSummary {
    pub symbol: String,
    pub last: f64,
    /// Timestamp of the newest tick (or newest seeded candle's start).
    pub last_ts: TimestampMs,
    /// Session open: the price of the session's earliest tick (or the first
    /// seeded candle's open).
    pub open: f64,
    pub change: f64,
    /// Percent change versus `open`; `None` if `open` is 0.
    pub change_pct: Option<f64>,
    pub high: f64,
    pub low: f64,
    /// Session VWAP; `None` while the session volume is 0.
    pub vwap: Option<f64>,
    pub volume: f64,
    pub indicator_interval: CandleInterval,
    /// `None` until enough candles exist.
    pub sma: Option<f64>,
    pub ema: Option<f64>,
    pub volatility: Option<f64>,
    /// Ticks applied this session (seeded sessions start at 0).
    pub tick_count: u64,
    /// Ticks that arrived too far behind the live edge to move it, and
    /// went into the candles of their time only (a backfill).
    pub backfilled: u64,
    pub ignored_duplicate: u64,
}

/// Net counts of one interval. Flat on the wire (`start`, `likes`, `shares`,
/// `comments`); [`RateBucket::counts`] gives them as [`Counts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBucket {
    pub start: TimestampMs,
    pub likes: i64,
    pub shares: i64,
    pub comments: i64,
}

impl RateBucket {
    pub fn new(start: TimestampMs, counts: Counts) -> Self {
        Self {
            start,
            likes: counts.likes,
            shares: counts.shares,
            comments: counts.comments,
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            likes: self.likes,
            shares: self.shares,
            comments: self.comments,
        }
    }

    /// Adds `delta` to the count of `kind`, like [`Counts::add`].
    pub fn add(&mut self, kind: EngagementKind, delta: i64) {
        let mut counts = self.counts();
        counts.add(kind, delta);
        *self = Self::new(self.start, counts);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_buckets_are_flat_on_the_wire_and_add_by_kind() {
        let mut bucket = RateBucket::new(
            10_000,
            Counts {
                likes: 1,
                shares: 2,
                comments: 3,
            },
        );
        bucket.add(EngagementKind::Comment, -3);
        bucket.add(EngagementKind::Like, 4);
        assert_eq!(
            serde_json::to_string(&bucket).unwrap(),
            r#"{"start":10000,"likes":5,"shares":2,"comments":0}"#
        );
        assert_eq!(bucket.counts().score(), 5 + 2 * 3);
    }

    #[test]
    fn payloads_keep_their_field_names() {
        let update = CandleUpdate {
            candle: Candle {
                symbol: "A".into(),
                interval: CandleInterval::OneSecond,
                start: 0,
                open: 1.0,
                high: 2.0,
                low: 1.0,
                close: 2.0,
                volume: 3.0,
            },
            closed: false,
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"candle":{"symbol":"A","interval":"1s","start":0,"open":1.0,"high":2.0,"low":1.0,"close":2.0,"volume":3.0},"closed":false}"#
        );
        let stats = serde_json::to_value(SentimentStats::default()).unwrap();
        assert_eq!(
            stats,
            serde_json::json!({"posts": 0, "mean_compound": 0.0, "positive": 0, "neutral": 0, "negative": 0})
        );
    }
}
