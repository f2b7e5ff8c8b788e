//! What the price chart shows: a candle interval, a time range and, when
//! travelling in time, the moment it ends at. All three live in the URL
//! (`?interval=1h&range=1w&at=…`), like the symbol, so a view can be
//! bookmarked and shared.

use serde::{Deserialize, Serialize};

use crate::format::{civil_from_days, days_from_civil};
use pulse_core::model::{CandleInterval, TimestampMs};

/// Candles the live range shows: the newest this many intervals.
pub const LIVE_CANDLES: usize = 120;
/// Candles the chart draws at most; a range that holds more shows its newest
/// ones and says so (pick a longer interval to see all of it).
pub const MAX_CHART_CANDLES: usize = 2_000;

/// How far back the chart reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChartRange {
    /// The newest [`LIVE_CANDLES`] intervals.
    #[default]
    Live,
    FifteenMinutes,
    OneHour,
    OneDay,
    OneWeek,
    OneYear,
    /// Everything kept (the newest [`MAX_CHART_CANDLES`]).
    All,
}

impl ChartRange {
    pub const ALL: [ChartRange; 7] = [
        Self::Live,
        Self::FifteenMinutes,
        Self::OneHour,
        Self::OneDay,
        Self::OneWeek,
        Self::OneYear,
        Self::All,
    ];

    /// Its `range=` URL value.
    pub fn param(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::FifteenMinutes => "15m",
            Self::OneHour => "1h",
            Self::OneDay => "1d",
            Self::OneWeek => "1w",
            Self::OneYear => "1y",
            Self::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Live => "Live",
            Self::FifteenMinutes => "15 min",
            Self::OneHour => "1 h",
            Self::OneDay => "1 day",
            Self::OneWeek => "1 week",
            Self::OneYear => "1 year",
            Self::All => "All",
        }
    }

    /// Its length; `None` for [`ChartRange::All`] (no lower bound).
    pub fn millis(self, interval: CandleInterval) -> Option<TimestampMs> {
        const MINUTE: TimestampMs = 60_000;
        const DAY: TimestampMs = 24 * 60 * MINUTE;
        match self {
            Self::Live => Some(interval.millis() * LIVE_CANDLES as TimestampMs),
            Self::FifteenMinutes => Some(15 * MINUTE),
            Self::OneHour => Some(60 * MINUTE),
            Self::OneDay => Some(DAY),
            Self::OneWeek => Some(7 * DAY),
            Self::OneYear => Some(365 * DAY),
            Self::All => None,
        }
    }

    fn parse(param: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.param() == param)
    }
}

/// The chart's interval, range and (time travel) end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChartView {
    pub interval: CandleInterval,
    pub range: ChartRange,
    /// Show the dashboard as it was at this time (Unix ms); `None`: live.
    pub at: Option<TimestampMs>,
}

/// 1 s candles, live.
impl Default for ChartView {
    fn default() -> Self {
        Self {
            interval: CandleInterval::OneSecond,
            range: ChartRange::Live,
            at: None,
        }
    }
}

impl ChartView {
    /// From the URL parameters; missing or unknown values mean the default
    /// (1 s, live range, now).
    pub fn from_params(interval: Option<&str>, range: Option<&str>, at: Option<&str>) -> Self {
        Self {
            interval: interval
                .and_then(|i| i.parse().ok())
                .unwrap_or(Self::default().interval),
            range: range.and_then(ChartRange::parse).unwrap_or_default(),
            at: at.and_then(parse_time),
        }
    }

    /// Candles starting in `[from, to]` and at most how many: the query that
    /// loads this view. `now` is the wall time of a live view.
    pub fn window(&self, now: TimestampMs) -> (Option<TimestampMs>, TimestampMs, usize) {
        let to = self.at.unwrap_or(now);
        let from = self
            .range
            .millis(self.interval)
            .map(|length| to.saturating_sub(length));
        (from, to, self.limit())
    }

    /// Candles this view shows at most.
    pub fn limit(&self) -> usize {
        match self.range {
            ChartRange::Live => LIVE_CANDLES,
            _ => MAX_CHART_CANDLES,
        }
    }

    /// The URL query of this view for `symbol` (defaults left out).
    pub fn query(&self, symbol: &str) -> String {
        let mut query = format!("?symbol={symbol}&interval={}", self.interval.as_str());
        if self.range != ChartRange::Live {
            query.push_str("&range=");
            query.push_str(self.range.param());
        }
        if let Some(at) = self.at {
            query.push_str(&format!("&at={at}"));
        }
        query
    }
}

/// A time in the URL: Unix milliseconds, or an ISO date or date-time in UTC
/// (`2020-03-16`, `2020-03-16T14:30`, `2020-03-16T14:30:00Z`).
pub fn parse_time(raw: &str) -> Option<TimestampMs> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return Some(ms);
    }
    let raw = raw.strip_suffix('Z').unwrap_or(raw);
    let (date, time) = raw.split_once('T').unwrap_or((raw, "00:00"));
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let mut time_parts = time.splitn(3, ':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next().unwrap_or("0").parse().ok()?;
    let second: f64 = time_parts.next().unwrap_or("0").parse().ok()?;
    // A date that survives the round trip through its day number exists.
    let days = days_from_civil(year, month, day);
    let valid = civil_from_days(days) == (year, month, day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..60.0).contains(&second)
        && (1..=9999).contains(&year);
    if !valid {
        return None;
    }
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + (second * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_round_trip_through_the_url() {
        for interval in CandleInterval::ALL {
            for range in ChartRange::ALL {
                for at in [None, Some(1_584_368_400_000)] {
                    let view = ChartView {
                        interval,
                        range,
                        at,
                    };
                    let query = view.query("AAPL");
                    let param = |name: &str| {
                        query
                            .trim_start_matches('?')
                            .split('&')
                            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    };
                    let back =
                        ChartView::from_params(param("interval"), param("range"), param("at"));
                    assert_eq!(back, view, "{query}");
                }
            }
        }
        assert_eq!(
            ChartView::from_params(Some("5h"), Some("2y"), Some("soon")),
            ChartView::default()
        );
    }

    #[test]
    fn times_parse_as_milliseconds_or_utc_dates() {
        assert_eq!(parse_time("1584368400000"), Some(1_584_368_400_000));
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2020-03-16T14:20"), Some(1_584_368_400_000));
        assert_eq!(parse_time("2020-03-16T14:20:00Z"), Some(1_584_368_400_000));
        assert_eq!(parse_time("2020-02-29"), Some(1_582_934_400_000));
        for bad in [
            "2019-02-29",
            "2020-13-01",
            "2020-03-16T24:00",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_view_loads_its_range_back_from_its_end() {
        let now = 10_000_000_000;
        let live = ChartView::default();
        assert_eq!(live.window(now), (Some(now - 120_000), now, LIVE_CANDLES));
        let past = ChartView {
            interval: CandleInterval::OneDay,
            range: ChartRange::OneYear,
            at: Some(now / 2),
        };
        assert_eq!(
            past.window(now),
            (Some(now / 2 - 365 * 86_400_000), now / 2, MAX_CHART_CANDLES)
        );
        let all = ChartView {
            range: ChartRange::All,
            ..live
        };
        assert_eq!(all.window(now).0, None);
    }
}
