//! Shared data model, compiled for both the server and the browser.
//!
//! Validation lives beside the types so that every entry point (HTTP ingest,
//! WebSocket publish, server functions, the simulator, replay) applies the
//! same rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type TimestampMs = i64;

/// Earliest accepted timestamp: 2000-01-01T00:00:00Z. Older data is almost
/// certainly a unit mistake (seconds instead of milliseconds).
pub const MIN_TS_MS: TimestampMs = 946_684_800_000;
/// How far into the future a timestamp may lie (clock skew allowance).
pub const MAX_FUTURE_SKEW_MS: TimestampMs = 5 * 60 * 1000;
pub const MAX_SYMBOL_LEN: usize = 12;
pub const MAX_AUTHOR_CHARS: usize = 40;
pub const MAX_POST_CHARS: usize = 1_000;
/// Highest accepted price. Bounded inputs keep every sum the engines build
/// (session volume, turnover, VWAP) finite for any realistic number of ticks.
pub const MAX_PRICE: f64 = 1e9;
/// Highest accepted volume of one tick.
pub const MAX_VOLUME: f64 = 1e12;

/// One trade/quote of a symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub symbol: String,
    pub price: f64,
    pub volume: f64,
    /// Unix ms; carried unchanged from the producer so clients can measure latency.
    pub ts: TimestampMs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

impl SentimentLabel {
    /// VADER's conventional thresholds.
    pub fn from_compound(compound: f64) -> Self {
        if compound >= 0.05 {
            Self::Positive
        } else if compound <= -0.05 {
            Self::Negative
        } else {
            Self::Neutral
        }
    }

    /// The name it has on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "positive",
            Self::Neutral => "neutral",
            Self::Negative => "negative",
        }
    }
}

/// A sentiment label name that is not `positive`, `neutral` or `negative`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sentiment label must be positive, neutral or negative, got '{0}'")]
pub struct UnknownLabel(pub String);

impl FromStr for SentimentLabel {
    type Err = UnknownLabel;

    /// The inverse of [`SentimentLabel::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Positive, Self::Neutral, Self::Negative]
            .into_iter()
            .find(|label| label.as_str() == s)
            .ok_or_else(|| UnknownLabel(s.to_owned()))
    }
}

/// Sentiment scores of one text. `compound` is in [-1, 1]; `pos + neu + neg ≈ 1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    pub compound: f64,
    pub pos: f64,
    pub neu: f64,
    pub neg: f64,
    pub label: SentimentLabel,
}

impl Sentiment {
    pub const NEUTRAL: Sentiment = Sentiment {
        compound: 0.0,
        pos: 0.0,
        neu: 1.0,
        neg: 0.0,
        label: SentimentLabel::Neutral,
    };
}

/// A social-media post, scored for sentiment when it enters the system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: u64,
    pub author: String,
    pub text: String,
    pub ts: TimestampMs,
    pub sentiment: Sentiment,
    /// Symbols the post mentions (cashtags or known tickers), upper case.
    #[serde(default)]
    pub symbols: Vec<String>,
}

/// A post as submitted by a producer, before it gets an id and scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewPost {
    pub author: String,
    pub text: String,
    #[serde(default)]
    pub ts: Option<TimestampMs>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngagementKind {
    Like,
    Share,
    Comment,
}

impl EngagementKind {
    /// The name it has on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "like",
            Self::Share => "share",
            Self::Comment => "comment",
        }
    }

    /// The kind named `name` ([`EngagementKind::as_str`]'s inverse).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Like, Self::Share, Self::Comment]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Score weight of one engagement of this kind: a comment costs the user
    /// more effort than a like, and a share pushes the post to a new audience.
    pub fn weight(self) -> i64 {
        match self {
            Self::Like => 1,
            Self::Comment => 2,
            Self::Share => 3,
        }
    }
}

/// Likes, shares and comments: a post's totals, or net changes in a time
/// bucket or window. A domain type rather than a payload: storage keeps it
/// per post, the engines add to it and several payloads carry it.
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

    /// The count of `kind`: the one place a kind maps to its field.
    pub(crate) fn slot(&mut self, kind: EngagementKind) -> &mut i64 {
        match kind {
            EngagementKind::Like => &mut self.likes,
            EngagementKind::Share => &mut self.shares,
            EngagementKind::Comment => &mut self.comments,
        }
    }

    /// Adds `delta` (negative for an unlike) to the count of `kind`, saturating.
    pub fn add(&mut self, kind: EngagementKind, delta: i64) {
        let slot = self.slot(kind);
        *slot = slot.saturating_add(delta);
    }

    /// Adds every count of `other`, saturating.
    pub(crate) fn add_all(&mut self, other: &Counts) {
        self.likes = self.likes.saturating_add(other.likes);
        self.shares = self.shares.saturating_add(other.shares);
        self.comments = self.comments.saturating_add(other.comments);
    }

    /// `likes × 1 + comments × 2 + shares × 3` (see [`EngagementKind::weight`]).
    pub fn score(&self) -> i64 {
        [
            EngagementKind::Like,
            EngagementKind::Comment,
            EngagementKind::Share,
        ]
        .into_iter()
        .fold(0i64, |score, kind| {
            score.saturating_add(self.get(kind).saturating_mul(kind.weight()))
        })
    }

    /// Every count at least 0.
    pub fn clamped(self) -> Self {
        Self {
            likes: self.likes.max(0),
            shares: self.shares.max(0),
            comments: self.comments.max(0),
        }
    }
}

/// A change to a post's engagement counters (delta may be negative: an unlike).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    pub post_id: u64,
    pub kind: EngagementKind,
    pub delta: i64,
    pub ts: TimestampMs,
}

/// A candle width. The market engine and storage keep 1 s and 1 min candles
/// ([`CandleInterval::STORED`]); the longer ones are rolled up from 1 min
/// candles when read ([`crate::analytics::market::rollup`]), on the server
/// and in the browser alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CandleInterval {
    #[serde(rename = "1s")]
    OneSecond,
    #[serde(rename = "1m")]
    OneMinute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "1d")]
    OneDay,
}

impl CandleInterval {
    /// Every interval, finest first.
    pub const ALL: [CandleInterval; 5] = [
        Self::OneSecond,
        Self::OneMinute,
        Self::FiveMinutes,
        Self::OneHour,
        Self::OneDay,
    ];
    /// The intervals the engine builds from ticks and storage keeps.
    pub const STORED: [CandleInterval; 2] = [Self::OneSecond, Self::OneMinute];

    pub fn millis(self) -> TimestampMs {
        match self {
            Self::OneSecond => 1_000,
            Self::OneMinute => 60_000,
            Self::FiveMinutes => 300_000,
            Self::OneHour => 3_600_000,
            Self::OneDay => 86_400_000,
        }
    }

    /// The name it has on the wire, in URLs and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneSecond => "1s",
            Self::OneMinute => "1m",
            Self::FiveMinutes => "5m",
            Self::OneHour => "1h",
            Self::OneDay => "1d",
        }
    }

    /// How people read it (`1 s`, `5 min`, `1 day`).
    pub fn label(self) -> &'static str {
        match self {
            Self::OneSecond => "1 s",
            Self::OneMinute => "1 min",
            Self::FiveMinutes => "5 min",
            Self::OneHour => "1 h",
            Self::OneDay => "1 day",
        }
    }

    /// The stored interval its candles are made from: itself for 1 s and
    /// 1 min, 1 min for the longer ones.
    pub fn source(self) -> CandleInterval {
        match self {
            Self::OneSecond => Self::OneSecond,
            _ => Self::OneMinute,
        }
    }

    pub fn is_stored(self) -> bool {
        self.source() == self
    }
}

impl fmt::Display for CandleInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An interval name that is not one of [`CandleInterval::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interval must be one of 1s, 1m, 5m, 1h, 1d, got '{0}'")]
pub struct UnknownInterval(pub String);

impl FromStr for CandleInterval {
    type Err = UnknownInterval;

    /// The inverse of [`CandleInterval::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|interval| interval.as_str() == s)
            .ok_or_else(|| UnknownInterval(s.to_owned()))
    }
}

/// OHLCV bar. `start` is the interval's opening time in Unix ms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub symbol: String,
    pub interval: CandleInterval,
    pub start: TimestampMs,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Active dashboard users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Distinct dashboard sessions connected now.
    pub sessions: u64,
    /// WebSocket connections of any kind.
    pub connections: u64,
}

/// Why an item was rejected; `field` names the offending field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// `[A-Z0-9][A-Z0-9.-]{0,11}`: a symbol starts with a letter or digit (so
/// `-` or `.` cannot sort before every real symbol).
pub fn validate_symbol(symbol: &str) -> Result<(), ValidationError> {
    if symbol.is_empty() || symbol.len() > MAX_SYMBOL_LEN {
        return Err(ValidationError::new(
            "symbol",
            format!("must be 1 to {MAX_SYMBOL_LEN} characters"),
        ));
    }
    if !symbol
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(ValidationError::new(
            "symbol",
            "may contain only A-Z, 0-9, '.' and '-'",
        ));
    }
    if !symbol
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(ValidationError::new(
            "symbol",
            "must start with a letter or a digit",
        ));
    }
    Ok(())
}

/// Timestamps must be after 2000-01-01 and at most five minutes in the future.
pub fn validate_ts(ts: TimestampMs, now_ms: TimestampMs) -> Result<(), ValidationError> {
    if ts < MIN_TS_MS {
        return Err(ValidationError::new(
            "ts",
            "must be Unix milliseconds after 2000-01-01",
        ));
    }
    if ts > now_ms + MAX_FUTURE_SKEW_MS {
        return Err(ValidationError::new(
            "ts",
            "lies more than five minutes in the future",
        ));
    }
    Ok(())
}

fn validate_text(field: &'static str, text: &str, max_chars: usize) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl Tick {
    pub fn validate(&self, now_ms: TimestampMs) -> Result<(), ValidationError> {
        validate_symbol(&self.symbol)?;
        if !(self.price > 0.0 && self.price <= MAX_PRICE) {
            return Err(ValidationError::new(
                "price",
                format!("must be a number greater than 0 and at most {MAX_PRICE:e}"),
            ));
        }
        if !(self.volume >= 0.0 && self.volume <= MAX_VOLUME) {
            return Err(ValidationError::new(
                "volume",
                format!("must be a number from 0 to {MAX_VOLUME:e}"),
            ));
        }
        validate_ts(self.ts, now_ms)
    }
}

impl NewPost {
    pub fn validate(&self, now_ms: TimestampMs) -> Result<(), ValidationError> {
        validate_text("author", &self.author, MAX_AUTHOR_CHARS)?;
        validate_text("text", &self.text, MAX_POST_CHARS)?;
        match self.ts {
            Some(ts) => validate_ts(ts, now_ms),
            None => Ok(()),
        }
    }
}

impl Engagement {
    pub fn validate(&self, now_ms: TimestampMs) -> Result<(), ValidationError> {
        if self.delta == 0 {
            return Err(ValidationError::new("delta", "must not be 0"));
        }
        if self.delta.unsigned_abs() > 1_000_000 {
            return Err(ValidationError::new(
                "delta",
                "must be between -1000000 and 1000000",
            ));
        }
        validate_ts(self.ts, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: TimestampMs = 1_780_000_000_000;

    #[test]
    fn engagement_kinds_are_stored_under_their_wire_names() {
        for kind in [
            EngagementKind::Like,
            EngagementKind::Share,
            EngagementKind::Comment,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    fn tick(symbol: &str, price: f64, volume: f64) -> Tick {
        Tick {
            symbol: symbol.into(),
            price,
            volume,
            ts: NOW,
        }
    }

    #[test]
    fn symbols_follow_the_documented_pattern() {
        for ok in ["AAPL", "BRK.B", "BTC-USD", "A", "X1234567890Y"] {
            assert_eq!(validate_symbol(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "aapl",
            "TOO_LONG",
            "ABCDEFGHIJKLM",
            "A B",
            "ÄPFEL",
            "$AAPL",
            "-",
            ".A",
            "-AAPL",
        ] {
            assert_eq!(validate_symbol(bad).unwrap_err().field, "symbol", "{bad}");
        }
    }

    #[test]
    fn tick_prices_must_be_finite_and_positive() {
        assert!(tick("AAPL", 1.5, 0.0).validate(NOW).is_ok());
        assert!(tick("AAPL", MAX_PRICE, MAX_VOLUME).validate(NOW).is_ok());
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            MAX_PRICE * 1.01,
            1.6e308,
        ] {
            assert_eq!(
                tick("AAPL", bad, 1.0).validate(NOW).unwrap_err().field,
                "price"
            );
        }
        for bad in [-0.5, f64::NAN, f64::INFINITY, 1.6e308, MAX_VOLUME * 2.0] {
            assert_eq!(
                tick("AAPL", 1.0, bad).validate(NOW).unwrap_err().field,
                "volume"
            );
        }
    }

    #[test]
    fn timestamps_must_be_in_a_sane_window() {
        assert!(validate_ts(NOW, NOW).is_ok());
        assert!(validate_ts(NOW + MAX_FUTURE_SKEW_MS, NOW).is_ok());
        assert!(validate_ts(NOW + MAX_FUTURE_SKEW_MS + 1, NOW).is_err());
        // Seconds instead of milliseconds.
        assert!(validate_ts(1_780_000_000, NOW).is_err());
    }

    #[test]
    fn posts_need_author_and_bounded_text() {
        let post = |author: &str, text: &str| NewPost {
            author: author.into(),
            text: text.into(),
            ts: None,
        };
        assert!(post("ann", "hello $AAPL").validate(NOW).is_ok());
        assert_eq!(post("", "x").validate(NOW).unwrap_err().field, "author");
        assert_eq!(post("ann", "   ").validate(NOW).unwrap_err().field, "text");
        let long = "é".repeat(MAX_POST_CHARS + 1);
        assert_eq!(post("ann", &long).validate(NOW).unwrap_err().field, "text");
        assert_eq!(
            post("ann", "a\u{0}b").validate(NOW).unwrap_err().field,
            "text"
        );
    }

    #[test]
    fn engagement_delta_must_be_nonzero_and_bounded() {
        let e = |delta| Engagement {
            post_id: 1,
            kind: EngagementKind::Like,
            delta,
            ts: NOW,
        };
        assert!(e(1).validate(NOW).is_ok());
        assert!(e(-1).validate(NOW).is_ok());
        assert_eq!(e(0).validate(NOW).unwrap_err().field, "delta");
        assert_eq!(e(i64::MIN).validate(NOW).unwrap_err().field, "delta");
    }

    #[test]
    fn interval_and_label_names_match_serde_and_parse_back() {
        for interval in CandleInterval::ALL {
            assert_eq!(serde_json::to_value(interval).unwrap(), interval.as_str());
            assert_eq!(interval.as_str().parse(), Ok(interval));
            assert_eq!(interval.to_string(), interval.as_str());
        }
        assert_eq!(
            "5h".parse::<CandleInterval>().unwrap_err().to_string(),
            "interval must be one of 1s, 1m, 5m, 1h, 1d, got '5h'"
        );
        for label in [
            SentimentLabel::Positive,
            SentimentLabel::Neutral,
            SentimentLabel::Negative,
        ] {
            assert_eq!(serde_json::to_value(label).unwrap(), label.as_str());
            assert_eq!(label.as_str().parse(), Ok(label));
        }
        assert!("Positive".parse::<SentimentLabel>().is_err());
    }

    #[test]
    fn counts_add_by_kind_and_score_by_weight() {
        let mut counts = Counts::default();
        counts.add(EngagementKind::Like, 4);
        counts.add(EngagementKind::Comment, 2);
        counts.add(EngagementKind::Share, 1);
        counts.add(EngagementKind::Like, -1);
        assert_eq!(
            counts,
            Counts {
                likes: 3,
                shares: 1,
                comments: 2
            }
        );
        assert_eq!(counts.get(EngagementKind::Comment), 2);
        // 3·1 + 2·2 + 1·3 = 10.
        assert_eq!(counts.score(), 10);
        counts.add(EngagementKind::Share, i64::MAX);
        assert_eq!(counts.shares, i64::MAX, "saturates");
        assert_eq!(counts.score(), i64::MAX);
        let negative = Counts {
            likes: -2,
            ..Counts::default()
        };
        assert_eq!(negative.clamped(), Counts::default());
    }

    #[test]
    fn wire_names_are_lowercase() {
        let json = serde_json::to_string(&EngagementKind::Share).unwrap();
        assert_eq!(json, "\"share\"");
        let json = serde_json::to_string(&CandleInterval::OneMinute).unwrap();
        assert_eq!(json, "\"1m\"");
        assert_eq!(
            SentimentLabel::from_compound(0.05),
            SentimentLabel::Positive
        );
        assert_eq!(
            SentimentLabel::from_compound(-0.05),
            SentimentLabel::Negative
        );
        assert_eq!(SentimentLabel::from_compound(0.0), SentimentLabel::Neutral);
    }
}
