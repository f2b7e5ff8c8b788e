//! The candle ring of one symbol and interval: bars sorted by start, bounded,
//! revised in place by late ticks.

use std::collections::VecDeque;

use crate::model::{Candle, CandleInterval, TimestampMs};
use crate::protocol::payload::CandleUpdate;

/// Internal candle: no symbol string per bar, plus the bookkeeping needed for
/// out-of-order ticks.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Bar {
    pub(super) start: TimestampMs,
    pub(super) open: f64,
    pub(super) high: f64,
    pub(super) low: f64,
    pub(super) close: f64,
    pub(super) volume: f64,
    /// `ts` of the tick that set `open` / `close`.
    pub(super) first_ts: TimestampMs,
    pub(super) last_ts: TimestampMs,
    pub(super) closed: bool,
}

impl Bar {
    pub(super) fn new(
        start: TimestampMs,
        price: f64,
        volume: f64,
        ts: TimestampMs,
        closed: bool,
    ) -> Self {
        Self {
            start,
            open: price,
            high: price,
            low: price,
            close: price,
            volume,
            first_ts: ts,
            last_ts: ts,
            closed,
        }
    }

    /// A closed bar from a stored candle (the caller checked its prices).
    pub(super) fn seeded(start: TimestampMs, c: &Candle) -> Self {
        Self {
            start,
            open: c.open,
            high: c.high.max(c.low),
            low: c.low.min(c.high),
            close: c.close,
            volume: c.volume,
            first_ts: start,
            last_ts: start,
            closed: true,
        }
    }

    pub(super) fn apply(&mut self, price: f64, volume: f64, ts: TimestampMs) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += volume;
        if ts < self.first_ts {
            self.open = price;
            self.first_ts = ts;
        }
        if ts >= self.last_ts {
            self.close = price;
            self.last_ts = ts;
        }
    }

    pub(super) fn candle(&self, symbol: &str, interval: CandleInterval) -> Candle {
        Candle {
            symbol: symbol.to_owned(),
            interval,
            start: self.start,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
        }
    }

    pub(super) fn update(&self, symbol: &str, interval: CandleInterval) -> CandleUpdate {
        CandleUpdate {
            candle: self.candle(symbol, interval),
            closed: self.closed,
        }
    }
}

/// Candles of one interval, sorted by `start`, without duplicates.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Series {
    pub(super) bars: VecDeque<Bar>,
}

impl Series {
    /// Applies a tick that falls in the bucket starting at `start`, pushing
    /// the changed candles to `out`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply(
        &mut self,
        start: TimestampMs,
        price: f64,
        volume: f64,
        ts: TimestampMs,
        cap: usize,
        symbol: &str,
        interval: CandleInterval,
        out: &mut Vec<CandleUpdate>,
    ) {
        if cap == 0 {
            return;
        }
        let newest = self.bars.back().map(|b| b.start);
        match newest {
            Some(newest) if start == newest => {
                if let Some(bar) = self.bars.back_mut() {
                    bar.apply(price, volume, ts);
                    out.push(bar.update(symbol, interval));
                }
            }
            Some(newest) if start < newest => {
                match self.bars.binary_search_by_key(&start, |b| b.start) {
                    Ok(i) => {
                        if let Some(bar) = self.bars.get_mut(i) {
                            bar.apply(price, volume, ts);
                            out.push(bar.update(symbol, interval));
                        }
                    }
                    // Older than everything retained in a full ring: gone.
                    Err(0) if self.bars.len() >= cap => {}
                    Err(i) => {
                        // A later interval already has ticks, so this one is over.
                        let bar = Bar::new(start, price, volume, ts, true);
                        out.push(bar.update(symbol, interval));
                        self.bars.insert(i, bar);
                        self.trim(cap);
                    }
                }
            }
            _ => {
                if let Some(prev) = self.bars.back_mut() {
                    if !prev.closed {
                        prev.closed = true;
                        out.push(prev.update(symbol, interval));
                    }
                }
                let bar = Bar::new(start, price, volume, ts, false);
                out.push(bar.update(symbol, interval));
                self.bars.push_back(bar);
                self.trim(cap);
            }
        }
    }

    /// Whether a backfilled tick of the bucket at `start` belongs in this
    /// ring: its candle is held, or falls in a gap between held ones. Not
    /// when the ring does not reach that far back (or not that far
    /// forward): that candle lives in storage only.
    pub(super) fn holds(&self, start: TimestampMs, cap: usize) -> bool {
        match (self.bars.front(), self.bars.back()) {
            (Some(oldest), Some(newest)) => {
                start <= newest.start && (start >= oldest.start || self.bars.len() < cap)
            }
            _ => false,
        }
    }

    /// Inserts a stored candle unless a candle for that interval exists
    /// (live data wins). Returns whether it was inserted.
    pub(super) fn seed(&mut self, bar: Bar, cap: usize) -> bool {
        if cap == 0 {
            return false;
        }
        match self.bars.binary_search_by_key(&bar.start, |b| b.start) {
            Ok(_) => false,
            Err(0) if self.bars.len() >= cap => false,
            Err(i) => {
                let at_back = i == self.bars.len();
                let mut bar = bar;
                // Only the newest seeded candle may still be in progress; it
                // closes like a live one (next interval or `close_due`).
                bar.closed = !at_back;
                if at_back {
                    if let Some(prev) = self.bars.back_mut() {
                        prev.closed = true;
                    }
                }
                self.bars.insert(i, bar);
                self.trim(cap);
                true
            }
        }
    }

    pub(super) fn trim(&mut self, cap: usize) {
        while self.bars.len() > cap {
            self.bars.pop_front();
        }
    }

    pub(super) fn closes(&self) -> Vec<f64> {
        self.bars.iter().map(|b| b.close).collect()
    }
}
