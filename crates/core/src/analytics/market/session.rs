//! Session statistics of one symbol: open, last, high, low, volume, VWAP.

use std::collections::VecDeque;

use super::candles::Bar;
use crate::model::TimestampMs;

/// Session statistics of one symbol.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Session {
    pub(super) first_price: f64,
    pub(super) first_ts: TimestampMs,
    pub(super) last: f64,
    pub(super) last_ts: TimestampMs,
    pub(super) high: f64,
    pub(super) low: f64,
    pub(super) volume: f64,
    /// Σ price × volume, for VWAP.
    pub(super) turnover: f64,
    pub(super) tick_count: u64,
}

impl Session {
    pub(super) fn new(price: f64, volume: f64, ts: TimestampMs) -> Self {
        Self {
            first_price: price,
            first_ts: ts,
            last: price,
            last_ts: ts,
            high: price,
            low: price,
            volume,
            turnover: price * volume,
            tick_count: 1,
        }
    }

    /// Returns `true` if the tick moved `last` (it is not older than the newest).
    pub(super) fn apply(&mut self, price: f64, volume: f64, ts: TimestampMs) -> bool {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += volume;
        self.turnover += price * volume;
        self.tick_count += 1;
        if ts < self.first_ts {
            self.first_price = price;
            self.first_ts = ts;
        }
        if ts >= self.last_ts {
            self.last = price;
            self.last_ts = ts;
            true
        } else {
            false
        }
    }

    /// Approximates a session from stored candles (VWAP from typical price).
    pub(super) fn from_bars(bars: &VecDeque<Bar>) -> Option<Self> {
        let (first, last) = (bars.front()?, bars.back()?);
        let mut s = Self {
            first_price: first.open,
            first_ts: first.start,
            last: last.close,
            last_ts: last.start,
            high: first.high,
            low: first.low,
            volume: 0.0,
            turnover: 0.0,
            tick_count: 0,
        };
        for b in bars {
            s.high = s.high.max(b.high);
            s.low = s.low.min(b.low);
            s.volume += b.volume;
            s.turnover += (b.high + b.low + b.close) / 3.0 * b.volume;
        }
        Some(s)
    }
}
