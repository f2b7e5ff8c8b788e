//! Market analytics: OHLCV candles, session statistics and indicators, built
//! incrementally from [`Tick`]s.
//!
//! The engine is pure: no I/O, no clock, no threads. Wall time only enters
//! through the `now_ms` argument of [`MarketEngine::close_due`], so the same
//! code runs on the server and in the browser (wasm32).
//!
//! # Candles
//!
//! Every tick is bucketed into a 1 s and a 1 min candle. A bucket starts at
//! `ts - ts.rem_euclid(interval)`, so a tick exactly on a boundary belongs to
//! the *new* candle and negative timestamps bucket consistently. Each symbol
//! keeps at most [`MarketConfig::history_1s`] / [`MarketConfig::history_1m`]
//! candles (oldest dropped first). Intervals without ticks produce **no**
//! candle: there is no gap filling, so the ring may span more wall time than
//! `history × interval`.
//!
//! A candle is reported `closed` when a tick for a later interval arrives, or
//! when [`MarketEngine::close_due`] sees that its interval has ended by wall
//! time (so a quiet symbol's last candle still closes).
//!
//! # Out-of-order and duplicate ticks
//!
//! * **Duplicates:** a tick with the same `ts`, `price` and `volume` as the
//!   last tick applied to its symbol is ignored ([`IgnoreReason::Duplicate`]);
//!   producers that retry a publish must not double-count volume.
//! * **Late ticks:** a late tick within [`MarketConfig::late_tolerance_ms`]
//!   of the newest tick of its symbol is applied ([`TickStatus::AppliedLate`]):
//!   it counts towards the session volume, VWAP, high and low, and it updates
//!   the candle its `ts` falls in if that candle is still retained (or inserts
//!   it in time order if that interval had no candle yet and the ring has
//!   room). Such revisions of a past candle are published with `closed: true`.
//! * **Backfill:** a tick older than that is history being filled in
//!   ([`TickStatus::Backfilled`]): it changes neither `last` nor the session,
//!   only candles. Candles the rings still hold are revised as for a late
//!   tick; for each interval whose ring no longer reaches that far the
//!   outcome names the interval in [`TickOutcome::detached`], and the caller
//!   merges the tick into its stored candle instead.
//! * **Open / close:** a candle's `open` is the price of its earliest tick by
//!   `ts` and its `close` the price of its latest tick by `ts` (equal `ts`:
//!   the later arrival wins the close, the earlier keeps the open). The
//!   session open follows the same rule. The `last` price only moves for ticks
//!   that are not older than the newest tick seen.
//! * **Invalid values** (non-finite or non-positive price, non-finite or
//!   negative volume) are validated upstream; if one slips through it is
//!   ignored ([`IgnoreReason::InvalidValue`]) instead of poisoning the state.
//!
//! # Indicators
//!
//! SMA, EMA and volatility are computed on demand (in
//! [`MarketEngine::summary`]) over the closes of the retained candles of
//! [`MarketConfig::indicator_interval`], *including the still-open candle*, so
//! they move live with each tick. The EMA is seeded with the SMA of the first
//! `period` retained closes, so keep the history several times longer than
//! the period for it to converge. Volatility is the sample standard deviation
//! (n − 1 denominator) of the natural-log returns between the last
//! `volatility_window` closes (that is, `volatility_window − 1` returns), per
//! candle interval and not annualised.
//!
//! # Memory
//!
//! Per symbol the engine holds two bounded candle rings and a few numbers; at
//! most [`MarketConfig::max_symbols`] symbols are tracked (ticks for further
//! symbols are ignored with [`IgnoreReason::TooManySymbols`]).

mod candles;
mod indicators;
mod rollup;
mod session;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Candle, CandleInterval, Tick, TimestampMs};
use crate::time::bucket_start;
use candles::{Bar, Series};
use session::Session;

// The wire payloads the engine produces, defined in the protocol.
use crate::protocol::payload::{CandleUpdate, SymbolSummary};
use indicators::last_value;
pub use indicators::{ema, log_returns, rolling_volatility, sma, volatility};
pub use rollup::{rollup, Rollup};

/// The candle intervals the engine maintains, finest first; the longer ones
/// are rolled up from its 1 min candles.
pub const INTERVALS: [CandleInterval; 2] = CandleInterval::STORED;

/// Tuning knobs of [`MarketEngine`].
#[derive(Clone, Debug, PartialEq)]
pub struct MarketConfig {
    /// 1 s candles retained per symbol (5 minutes of busy trading by default).
    pub history_1s: usize,
    /// 1 min candles retained per symbol (4 hours by default).
    pub history_1m: usize,
    /// Candle interval whose closes feed SMA, EMA and volatility.
    pub indicator_interval: CandleInterval,
    pub sma_period: usize,
    pub ema_period: usize,
    /// Number of closes (not returns) the volatility is computed over.
    pub volatility_window: usize,
    /// How far behind the newest tick of a symbol a tick may lie and still be
    /// applied. Negative values behave like 0.
    pub late_tolerance_ms: i64,
    /// Upper bound on tracked symbols, protecting memory.
    pub max_symbols: usize,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            history_1s: 300,
            history_1m: 240,
            indicator_interval: CandleInterval::OneMinute,
            sma_period: 20,
            ema_period: 20,
            volatility_window: 20,
            late_tolerance_ms: 5_000,
            max_symbols: 1_000,
        }
    }
}

impl MarketConfig {
    fn history(&self, interval: CandleInterval) -> usize {
        match interval {
            CandleInterval::OneSecond => self.history_1s,
            _ => self.history_1m,
        }
    }
}

/// Why a tick was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Same ts, price and volume as the last applied tick of the symbol.
    Duplicate,
    /// Non-finite or non-positive price, or non-finite or negative volume.
    InvalidValue,
    /// Timestamp so close to `i64::MIN` that its bucket cannot be computed.
    TimestampOutOfRange,
    /// A new symbol while `max_symbols` are already tracked.
    TooManySymbols,
}

/// What happened to a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickStatus {
    /// Applied; it is the newest tick of its symbol and moved `last`.
    Applied,
    /// Applied, but older than the newest tick, so `last` did not move.
    AppliedLate,
    /// Older than the newest tick by more than `late_tolerance_ms`: applied
    /// to candles only (see [`TickOutcome::detached`]).
    Backfilled,
    Ignored(IgnoreReason),
}

/// Result of [`MarketEngine::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct TickOutcome {
    pub status: TickStatus,
    /// Candles that changed, including ones that closed because this tick
    /// opened a later interval. Empty when the tick was ignored.
    pub updates: Vec<CandleUpdate>,
    /// Intervals whose candle for this (backfilled) tick is no longer
    /// retained: the tick belongs in the stored candle of that interval.
    pub detached: Vec<CandleInterval>,
}

impl TickOutcome {
    fn ignored(reason: IgnoreReason) -> Self {
        Self {
            status: TickStatus::Ignored(reason),
            updates: Vec::new(),
            detached: Vec::new(),
        }
    }

    pub fn is_applied(&self) -> bool {
        !matches!(self.status, TickStatus::Ignored(_))
    }
}

/// Everything the engine keeps about one symbol.
#[derive(Clone, Debug, Default, PartialEq)]
struct SymbolState {
    s1: Series,
    m1: Series,
    session: Option<Session>,
    /// (ts, price, volume) of the last applied tick, for duplicate detection.
    last_applied: Option<(TimestampMs, f64, f64)>,
    backfilled: u64,
    ignored_duplicate: u64,
}

impl SymbolState {
    /// The series `interval` is built from (the 1 min one for longer intervals).
    fn series(&self, interval: CandleInterval) -> &Series {
        match interval.source() {
            CandleInterval::OneSecond => &self.s1,
            _ => &self.m1,
        }
    }

    fn series_mut(&mut self, interval: CandleInterval) -> &mut Series {
        match interval.source() {
            CandleInterval::OneSecond => &mut self.s1,
            _ => &mut self.m1,
        }
    }
}

/// Incremental market analytics for many symbols.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MarketEngine {
    cfg: MarketConfig,
    symbols: BTreeMap<String, SymbolState>,
}

impl MarketEngine {
    pub fn new(cfg: MarketConfig) -> Self {
        Self {
            cfg,
            symbols: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &MarketConfig {
        &self.cfg
    }

    /// Applies one tick; returns its status and the candles that changed so
    /// the caller can publish them. See the module docs for the policy.
    pub fn apply(&mut self, tick: &Tick) -> TickOutcome {
        let (price, volume, ts) = (tick.price, tick.volume, tick.ts);
        if !(price.is_finite() && price > 0.0 && volume.is_finite() && volume >= 0.0) {
            return TickOutcome::ignored(IgnoreReason::InvalidValue);
        }
        let mut starts = [0; INTERVALS.len()];
        for (start, interval) in starts.iter_mut().zip(INTERVALS) {
            match bucket_start(ts, interval.millis()) {
                Some(s) => *start = s,
                None => {
                    return TickOutcome::ignored(IgnoreReason::TimestampOutOfRange);
                }
            }
        }
        if !self.symbols.contains_key(&tick.symbol) {
            if self.symbols.len() >= self.cfg.max_symbols {
                return TickOutcome::ignored(IgnoreReason::TooManySymbols);
            }
            self.symbols
                .insert(tick.symbol.clone(), SymbolState::default());
        }
        let Some(state) = self.symbols.get_mut(&tick.symbol) else {
            return TickOutcome::ignored(IgnoreReason::TooManySymbols);
        };

        if state.last_applied == Some((ts, price, volume)) {
            state.ignored_duplicate += 1;
            return TickOutcome::ignored(IgnoreReason::Duplicate);
        }
        let tolerance = self.cfg.late_tolerance_ms.max(0);
        let moved_last = match &mut state.session {
            Some(session) => {
                if ts < session.last_ts.saturating_sub(tolerance) {
                    state.backfilled += 1;
                    return Self::backfill(
                        &self.cfg,
                        state,
                        &tick.symbol,
                        starts,
                        price,
                        volume,
                        ts,
                    );
                }
                session.apply(price, volume, ts)
            }
            None => {
                state.session = Some(Session::new(price, volume, ts));
                true
            }
        };
        state.last_applied = Some((ts, price, volume));

        let mut updates = Vec::with_capacity(4);
        for (start, interval) in starts.into_iter().zip(INTERVALS) {
            let cap = self.cfg.history(interval);
            state.series_mut(interval).apply(
                start,
                price,
                volume,
                ts,
                cap,
                &tick.symbol,
                interval,
                &mut updates,
            );
        }
        TickOutcome {
            status: if moved_last {
                TickStatus::Applied
            } else {
                TickStatus::AppliedLate
            },
            updates,
            detached: Vec::new(),
        }
    }

    /// A tick far behind the live edge: into the retained candles it falls
    /// in, and the other intervals named as detached.
    fn backfill(
        cfg: &MarketConfig,
        state: &mut SymbolState,
        symbol: &str,
        starts: [TimestampMs; INTERVALS.len()],
        price: f64,
        volume: f64,
        ts: TimestampMs,
    ) -> TickOutcome {
        let mut updates = Vec::new();
        let mut detached = Vec::new();
        for (start, interval) in starts.into_iter().zip(INTERVALS) {
            let cap = cfg.history(interval);
            let series = state.series_mut(interval);
            if series.holds(start, cap) {
                series.apply(
                    start,
                    price,
                    volume,
                    ts,
                    cap,
                    symbol,
                    interval,
                    &mut updates,
                );
            } else {
                detached.push(interval);
            }
        }
        TickOutcome {
            status: TickStatus::Backfilled,
            updates,
            detached,
        }
    }

    /// Why the ticks of a batch, applied in order, would not all be applied:
    /// the index of the first one that would be ignored and the reason.
    /// Nothing is changed, so a caller can refuse a batch whole instead of
    /// acknowledging ticks the engine then silently drops.
    pub fn check_batch<'t>(
        &self,
        ticks: impl IntoIterator<Item = &'t Tick>,
    ) -> Result<(), (usize, IgnoreReason)> {
        /// What earlier ticks of the batch will have changed for a symbol.
        struct Pending {
            newest_ts: Option<TimestampMs>,
            last_applied: Option<(TimestampMs, f64, f64)>,
        }
        let mut pending: BTreeMap<&str, Pending> = BTreeMap::new();
        let mut new_symbols = 0usize;
        let tolerance = self.cfg.late_tolerance_ms.max(0);
        for (index, tick) in ticks.into_iter().enumerate() {
            let (price, volume, ts) = (tick.price, tick.volume, tick.ts);
            let refuse = |reason| Err((index, reason));
            if !(price.is_finite() && price > 0.0 && volume.is_finite() && volume >= 0.0) {
                return refuse(IgnoreReason::InvalidValue);
            }
            if INTERVALS
                .iter()
                .any(|interval| bucket_start(ts, interval.millis()).is_none())
            {
                return refuse(IgnoreReason::TimestampOutOfRange);
            }
            let state = self.symbols.get(&tick.symbol);
            let entry = match pending.entry(tick.symbol.as_str()) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    if state.is_none() {
                        if self.symbols.len() + new_symbols >= self.cfg.max_symbols {
                            return refuse(IgnoreReason::TooManySymbols);
                        }
                        new_symbols += 1;
                    }
                    entry.insert(Pending {
                        newest_ts: state.and_then(|s| s.session.as_ref()).map(|s| s.last_ts),
                        last_applied: state.and_then(|s| s.last_applied),
                    })
                }
            };
            if entry.last_applied == Some((ts, price, volume)) {
                return refuse(IgnoreReason::Duplicate);
            }
            let backfill = entry
                .newest_ts
                .is_some_and(|newest| ts < newest.saturating_sub(tolerance));
            if !backfill {
                entry.newest_ts = Some(entry.newest_ts.map_or(ts, |newest| newest.max(ts)));
                entry.last_applied = Some((ts, price, volume));
            }
        }
        Ok(())
    }

    /// Whether `symbol` is tracked (has ticks or seeded candles).
    pub fn tracks(&self, symbol: &str) -> bool {
        self.symbols.contains_key(symbol)
    }

    /// Number of tracked symbols.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// Stops tracking `symbol`, freeing its slot; `true` if it was tracked.
    pub fn forget(&mut self, symbol: &str) -> bool {
        self.symbols.remove(symbol).is_some()
    }

    /// Closes every symbol's newest candle whose interval has ended by
    /// `now_ms` (end is exclusive: a 1 s candle starting at 0 is due at 1000).
    /// Each candle is reported once.
    pub fn close_due(&mut self, now_ms: TimestampMs) -> Vec<CandleUpdate> {
        let mut out = Vec::new();
        for (symbol, state) in &mut self.symbols {
            for interval in INTERVALS {
                if let Some(bar) = state.series_mut(interval).bars.back_mut() {
                    if !bar.closed && bar.start.saturating_add(interval.millis()) <= now_ms {
                        bar.closed = true;
                        out.push(bar.update(symbol, interval));
                    }
                }
            }
        }
        out
    }

    /// Restores candles from storage after a restart. Candles for intervals
    /// that already have a (live) candle are skipped, as are candles with
    /// non-finite or non-positive prices; `start` is aligned down to its
    /// interval. For symbols without any live tick, the session statistics
    /// are then rebuilt from their 1 min candles (or 1 s if there are none):
    /// open = first open, last = last close, high/low/volume over all, VWAP
    /// approximated with the typical price (H+L+C)/3. Returns how many
    /// candles were inserted.
    pub fn seed_candles<I>(&mut self, candles: I) -> usize
    where
        I: IntoIterator<Item = Candle>,
    {
        let mut inserted = 0;
        let mut touched = BTreeSet::new();
        for c in candles {
            let prices_ok = [c.open, c.high, c.low, c.close]
                .iter()
                .all(|p| p.is_finite() && *p > 0.0);
            if !prices_ok || !c.volume.is_finite() || c.volume < 0.0 {
                continue;
            }
            if !c.interval.is_stored() {
                continue;
            }
            let Some(start) = bucket_start(c.start, c.interval.millis()) else {
                continue;
            };
            if !self.symbols.contains_key(&c.symbol) {
                if self.symbols.len() >= self.cfg.max_symbols {
                    continue;
                }
                self.symbols
                    .insert(c.symbol.clone(), SymbolState::default());
            }
            let cap = self.cfg.history(c.interval);
            let Some(state) = self.symbols.get_mut(&c.symbol) else {
                continue;
            };
            let bar = Bar::seeded(start, &c);
            if state.series_mut(c.interval).seed(bar, cap) {
                inserted += 1;
                touched.insert(c.symbol);
            }
        }
        for symbol in touched {
            if let Some(state) = self.symbols.get_mut(&symbol) {
                if state.session.is_none() {
                    let bars = if state.m1.bars.is_empty() {
                        &state.s1.bars
                    } else {
                        &state.m1.bars
                    };
                    state.session = Session::from_bars(bars);
                }
            }
        }
        inserted
    }

    /// Summary of one symbol; `None` if it has no ticks or seeded candles.
    pub fn summary(&self, symbol: &str) -> Option<SymbolSummary> {
        let state = self.symbols.get(symbol)?;
        let s = state.session.as_ref()?;
        let open = s.first_price;
        let change = s.last - open;
        let closes = state.series(self.cfg.indicator_interval).closes();
        Some(SymbolSummary {
            symbol: symbol.to_owned(),
            last: s.last,
            last_ts: s.last_ts,
            open,
            change,
            change_pct: (open != 0.0).then(|| change / open * 100.0),
            high: s.high,
            low: s.low,
            vwap: (s.volume > 0.0).then(|| s.turnover / s.volume),
            volume: s.volume,
            indicator_interval: self.cfg.indicator_interval,
            sma: last_value(&sma(&closes, self.cfg.sma_period)),
            ema: last_value(&ema(&closes, self.cfg.ema_period)),
            volatility: volatility(&closes, self.cfg.volatility_window),
            tick_count: s.tick_count,
            backfilled: state.backfilled,
            ignored_duplicate: state.ignored_duplicate,
        })
    }

    /// Summaries of all symbols with data, ordered by symbol.
    pub fn summaries(&self) -> Vec<SymbolSummary> {
        self.symbols
            .keys()
            .filter_map(|symbol| self.summary(symbol))
            .collect()
    }

    /// Retained candles of `symbol`, oldest first (empty if unknown); the
    /// longer intervals rolled up from the retained 1 min candles.
    pub fn candles(&self, symbol: &str, interval: CandleInterval) -> Vec<Candle> {
        let source = interval.source();
        let candles: Vec<Candle> = self
            .symbols
            .get(symbol)
            .map(|state| {
                state
                    .series(source)
                    .bars
                    .iter()
                    .map(|b| b.candle(symbol, source))
                    .collect()
            })
            .unwrap_or_default();
        if source == interval {
            candles
        } else {
            rollup(&candles, interval)
        }
    }

    /// Tracked symbols, sorted.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.symbols.keys().map(String::as_str)
    }
}
