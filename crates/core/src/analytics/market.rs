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
//! * **Late ticks:** a tick older than the newest tick of its symbol by more
//!   than [`MarketConfig::late_tolerance_ms`] is ignored
//!   ([`IgnoreReason::TooLate`]) and counted. A late tick within the
//!   tolerance is applied ([`TickStatus::AppliedLate`]): it counts towards the
//!   session volume, VWAP, high and low, and it updates the candle its `ts`
//!   falls in if that candle is still retained (or inserts it in time order
//!   if that interval had no candle yet and the ring has room). Such revisions
//!   of a past candle are published with `closed: true`.
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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{Candle, CandleInterval, Tick, TimestampMs};

/// Both candle intervals the engine maintains, finest first.
pub const INTERVALS: [CandleInterval; 2] = [CandleInterval::OneSecond, CandleInterval::OneMinute];

/// Tuning knobs of [`MarketEngine`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
            CandleInterval::OneMinute => self.history_1m,
        }
    }
}

/// A candle that changed, for publishing on `candles:<SYMBOL>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandleUpdate {
    pub candle: Candle,
    /// `true` once the candle's interval is over; a closed candle may still be
    /// revised by a late tick within the tolerance.
    pub closed: bool,
}

/// Why a tick was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// Same ts, price and volume as the last applied tick of the symbol.
    Duplicate,
    /// Older than the newest tick by more than `late_tolerance_ms`.
    TooLate,
    /// Non-finite or non-positive price, or non-finite or negative volume.
    InvalidValue,
    /// Timestamp so close to `i64::MIN` that its bucket cannot be computed.
    TimestampOutOfRange,
    /// A new symbol while `max_symbols` are already tracked.
    TooManySymbols,
}

/// What happened to a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TickStatus {
    /// Applied; it is the newest tick of its symbol and moved `last`.
    Applied,
    /// Applied, but older than the newest tick, so `last` did not move.
    AppliedLate,
    Ignored(IgnoreReason),
}

/// Result of [`MarketEngine::apply`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickOutcome {
    pub status: TickStatus,
    /// Candles that changed, including ones that closed because this tick
    /// opened a later interval. Empty when the tick was ignored.
    pub updates: Vec<CandleUpdate>,
}

impl TickOutcome {
    fn ignored(reason: IgnoreReason) -> Self {
        Self {
            status: TickStatus::Ignored(reason),
            updates: Vec::new(),
        }
    }

    pub fn is_applied(&self) -> bool {
        !matches!(self.status, TickStatus::Ignored(_))
    }
}

/// Engine-wide counts of ignored ticks, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredCounts {
    pub duplicate: u64,
    pub too_late: u64,
    pub invalid_value: u64,
    pub timestamp_out_of_range: u64,
    pub too_many_symbols: u64,
}

/// Everything the dashboard shows about one symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolSummary {
    pub symbol: String,
    pub last: f64,
    /// Timestamp of the newest tick (or newest seeded candle's start).
    pub last_ts: TimestampMs,
    /// Session open: the reference price if one was set, otherwise the price
    /// of the session's earliest tick.
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
    pub ignored_late: u64,
    pub ignored_duplicate: u64,
}

/// Internal candle: no symbol string per bar, plus the bookkeeping needed for
/// out-of-order ticks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Bar {
    start: TimestampMs,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    /// `ts` of the tick that set `open` / `close`.
    first_ts: TimestampMs,
    last_ts: TimestampMs,
    closed: bool,
}

impl Bar {
    fn new(start: TimestampMs, price: f64, volume: f64, ts: TimestampMs, closed: bool) -> Self {
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

    fn apply(&mut self, price: f64, volume: f64, ts: TimestampMs) {
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

    fn candle(&self, symbol: &str, interval: CandleInterval) -> Candle {
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

    fn update(&self, symbol: &str, interval: CandleInterval) -> CandleUpdate {
        CandleUpdate {
            candle: self.candle(symbol, interval),
            closed: self.closed,
        }
    }
}

/// Candles of one interval, sorted by `start`, without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Series {
    bars: VecDeque<Bar>,
}

impl Series {
    /// Applies a tick that falls in the bucket starting at `start`, pushing
    /// the changed candles to `out`.
    #[allow(clippy::too_many_arguments)]
    fn apply(
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

    /// Inserts a stored candle unless a candle for that interval exists
    /// (live data wins). Returns whether it was inserted.
    fn seed(&mut self, bar: Bar, cap: usize) -> bool {
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

    fn trim(&mut self, cap: usize) {
        while self.bars.len() > cap {
            self.bars.pop_front();
        }
    }

    fn closes(&self) -> Vec<f64> {
        self.bars.iter().map(|b| b.close).collect()
    }
}

/// Session statistics of one symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    first_price: f64,
    first_ts: TimestampMs,
    last: f64,
    last_ts: TimestampMs,
    high: f64,
    low: f64,
    volume: f64,
    /// Σ price × volume, for VWAP.
    turnover: f64,
    tick_count: u64,
}

impl Session {
    fn new(price: f64, volume: f64, ts: TimestampMs) -> Self {
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
    fn apply(&mut self, price: f64, volume: f64, ts: TimestampMs) -> bool {
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
    fn from_bars(bars: &VecDeque<Bar>) -> Option<Self> {
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct SymbolState {
    s1: Series,
    m1: Series,
    session: Option<Session>,
    reference_price: Option<f64>,
    /// (ts, price, volume) of the last applied tick, for duplicate detection.
    last_applied: Option<(TimestampMs, f64, f64)>,
    ignored_late: u64,
    ignored_duplicate: u64,
}

impl SymbolState {
    fn series(&self, interval: CandleInterval) -> &Series {
        match interval {
            CandleInterval::OneSecond => &self.s1,
            CandleInterval::OneMinute => &self.m1,
        }
    }

    fn series_mut(&mut self, interval: CandleInterval) -> &mut Series {
        match interval {
            CandleInterval::OneSecond => &mut self.s1,
            CandleInterval::OneMinute => &mut self.m1,
        }
    }
}

/// Start of the bucket of width `width` (> 0) containing `ts`; `None` if it
/// would underflow `i64`.
fn bucket_start(ts: TimestampMs, width: TimestampMs) -> Option<TimestampMs> {
    ts.checked_sub(ts.rem_euclid(width))
}

/// Incremental market analytics for many symbols. Serializable so the whole
/// state can be snapshotted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MarketEngine {
    cfg: MarketConfig,
    symbols: BTreeMap<String, SymbolState>,
    ignored: IgnoredCounts,
}

impl MarketEngine {
    pub fn new(cfg: MarketConfig) -> Self {
        Self {
            cfg,
            symbols: BTreeMap::new(),
            ignored: IgnoredCounts::default(),
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
            self.ignored.invalid_value += 1;
            return TickOutcome::ignored(IgnoreReason::InvalidValue);
        }
        let mut starts = [0; INTERVALS.len()];
        for (start, interval) in starts.iter_mut().zip(INTERVALS) {
            match bucket_start(ts, interval.millis()) {
                Some(s) => *start = s,
                None => {
                    self.ignored.timestamp_out_of_range += 1;
                    return TickOutcome::ignored(IgnoreReason::TimestampOutOfRange);
                }
            }
        }
        if !self.symbols.contains_key(&tick.symbol) {
            if self.symbols.len() >= self.cfg.max_symbols {
                self.ignored.too_many_symbols += 1;
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
            self.ignored.duplicate += 1;
            return TickOutcome::ignored(IgnoreReason::Duplicate);
        }
        let tolerance = self.cfg.late_tolerance_ms.max(0);
        let moved_last = match &mut state.session {
            Some(session) => {
                if ts < session.last_ts.saturating_sub(tolerance) {
                    state.ignored_late += 1;
                    self.ignored.too_late += 1;
                    return TickOutcome::ignored(IgnoreReason::TooLate);
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
            if entry
                .newest_ts
                .is_some_and(|newest| ts < newest.saturating_sub(tolerance))
            {
                return refuse(IgnoreReason::TooLate);
            }
            entry.newest_ts = Some(entry.newest_ts.map_or(ts, |newest| newest.max(ts)));
            entry.last_applied = Some((ts, price, volume));
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

    /// Uses `price` as the session open of `symbol` (e.g. the previous
    /// close) instead of its first tick. Non-finite or non-positive prices
    /// clear the reference.
    pub fn set_reference_price(&mut self, symbol: &str, price: f64) {
        let valid = price.is_finite() && price > 0.0;
        if let Some(state) = self.symbols.get_mut(symbol) {
            state.reference_price = valid.then_some(price);
        } else if valid && self.symbols.len() < self.cfg.max_symbols {
            let state = SymbolState {
                reference_price: Some(price),
                ..SymbolState::default()
            };
            self.symbols.insert(symbol.to_owned(), state);
        }
    }

    /// Starts a new trading session for every symbol: session statistics and
    /// counters are cleared, candles and reference prices are kept.
    pub fn start_new_session(&mut self) {
        for state in self.symbols.values_mut() {
            state.session = None;
            state.last_applied = None;
            state.ignored_late = 0;
            state.ignored_duplicate = 0;
        }
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
            let bar = Bar {
                start,
                open: c.open,
                high: c.high.max(c.low),
                low: c.low.min(c.high),
                close: c.close,
                volume: c.volume,
                first_ts: start,
                last_ts: start,
                closed: true,
            };
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
        let open = state.reference_price.unwrap_or(s.first_price);
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
            ignored_late: state.ignored_late,
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

    /// Retained candles of `symbol`, oldest first (empty if unknown).
    pub fn candles(&self, symbol: &str, interval: CandleInterval) -> Vec<Candle> {
        self.symbols
            .get(symbol)
            .map(|state| {
                state
                    .series(interval)
                    .bars
                    .iter()
                    .map(|b| b.candle(symbol, interval))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closes of the retained candles, oldest first, for charting indicators
    /// with [`sma`], [`ema`] and [`rolling_volatility`].
    pub fn closes(&self, symbol: &str, interval: CandleInterval) -> Vec<f64> {
        self.symbols
            .get(symbol)
            .map(|state| state.series(interval).closes())
            .unwrap_or_default()
    }

    /// Tracked symbols, sorted.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.symbols.keys().map(String::as_str)
    }

    pub fn ignored(&self) -> IgnoredCounts {
        self.ignored
    }
}

fn last_value(series: &[Option<f64>]) -> Option<f64> {
    series.last().copied().flatten()
}

/// Simple moving average, aligned with `values`: element `i` is the mean of
/// `values[i + 1 - period ..= i]`, `None` for the first `period - 1` elements
/// (and everywhere if `period` is 0).
pub fn sma(values: &[f64], period: usize) -> Vec<Option<f64>> {
    (0..values.len())
        .map(|i| {
            if period == 0 || i + 1 < period {
                return None;
            }
            let window = &values[i + 1 - period..=i];
            Some(window.iter().sum::<f64>() / period as f64)
        })
        .collect()
}

/// Exponential moving average with `α = 2 / (period + 1)`, aligned with
/// `values`. It starts at index `period - 1` with the SMA of the first
/// `period` values (the usual seeding, so it does not depend on the first
/// value alone); earlier elements are `None`.
pub fn ema(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 || values.len() < period {
        return out;
    }
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut prev = values[..period].iter().sum::<f64>() / period as f64;
    out[period - 1] = Some(prev);
    for (slot, &v) in out.iter_mut().zip(values).skip(period) {
        prev = alpha * v + (1.0 - alpha) * prev;
        *slot = Some(prev);
    }
    out
}

/// Natural-log returns `ln(v[i] / v[i-1])`; one element shorter than `values`.
pub fn log_returns(values: &[f64]) -> Vec<f64> {
    values.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// Sample standard deviation (n − 1) of the log returns between the last
/// `window` values. `None` if `window < 3` (fewer than two returns), if there
/// are fewer than `window` values, or if a value is not finite and positive.
pub fn volatility(values: &[f64], window: usize) -> Option<f64> {
    if window < 3 || values.len() < window {
        return None;
    }
    let tail = &values[values.len() - window..];
    if !tail.iter().all(|v| v.is_finite() && *v > 0.0) {
        return None;
    }
    let returns = log_returns(tail);
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt())
}

/// [`volatility`] at every index, aligned with `values`.
pub fn rolling_volatility(values: &[f64], window: usize) -> Vec<Option<f64>> {
    (0..values.len())
        .map(|i| volatility(&values[..=i], window))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: TimestampMs = 1_780_000_020_000; // a whole minute: 29_666_667 min

    fn tick(symbol: &str, price: f64, volume: f64, ts: TimestampMs) -> Tick {
        Tick {
            symbol: symbol.into(),
            price,
            volume,
            ts,
        }
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn assert_approx(actual: Option<f64>, expected: f64) {
        match actual {
            Some(a) => assert!(approx(a, expected), "{a} != {expected}"),
            None => panic!("None != {expected}"),
        }
    }

    fn engine() -> MarketEngine {
        MarketEngine::new(MarketConfig {
            history_1s: 5,
            history_1m: 5,
            indicator_interval: CandleInterval::OneSecond,
            sma_period: 3,
            ema_period: 3,
            volatility_window: 3,
            late_tolerance_ms: 2_000,
            max_symbols: 3,
        })
    }

    #[test]
    fn check_batch_names_the_first_tick_that_would_be_ignored() {
        let mut e = engine();
        e.apply(&tick("AAPL", 10.0, 1.0, T0 + 10_000));
        // Late by more than the 2 s tolerance.
        let late = [
            tick("AAPL", 10.0, 1.0, T0 + 11_000),
            tick("AAPL", 10.0, 1.0, T0 + 7_000),
        ];
        assert_eq!(e.check_batch(&late), Err((1, IgnoreReason::TooLate)));
        // Late relative to an earlier tick of the same batch.
        let late_in_batch = [
            tick("MSFT", 10.0, 1.0, T0 + 20_000),
            tick("MSFT", 10.0, 2.0, T0 + 1_000),
        ];
        assert_eq!(
            e.check_batch(&late_in_batch),
            Err((1, IgnoreReason::TooLate))
        );
        let duplicate = [tick("AAPL", 10.0, 1.0, T0 + 10_000)];
        assert_eq!(e.check_batch(&duplicate), Err((0, IgnoreReason::Duplicate)));
        // The engine tracks at most 3 symbols: AAPL plus two new ones fit, a third does not.
        let many = [
            tick("B", 1.0, 1.0, T0),
            tick("C", 1.0, 1.0, T0),
            tick("B", 1.0, 2.0, T0),
            tick("D", 1.0, 1.0, T0),
        ];
        assert_eq!(e.check_batch(&many), Err((3, IgnoreReason::TooManySymbols)));
        let fine = [tick("AAPL", 11.0, 1.0, T0 + 9_000), tick("B", 1.0, 1.0, T0)];
        assert_eq!(e.check_batch(&fine), Ok(()));
        // Checking changed nothing; applying what it accepted applies everything.
        assert!(!e.tracks("B"));
        assert!(fine.iter().all(|t| e.apply(t).is_applied()));
    }

    #[test]
    fn forgetting_a_symbol_frees_its_slot() {
        let mut e = engine();
        for s in ["A", "B", "C"] {
            e.apply(&tick(s, 1.0, 1.0, T0));
        }
        assert_eq!(
            e.check_batch(&[tick("D", 1.0, 1.0, T0)]),
            Err((0, IgnoreReason::TooManySymbols))
        );
        assert!(e.forget("A"));
        assert_eq!(e.symbol_count(), 2);
        assert!(e.apply(&tick("D", 1.0, 1.0, T0)).is_applied());
    }

    #[test]
    fn t0_is_minute_aligned() {
        assert_eq!(T0 % 60_000, 0);
    }

    #[test]
    fn sma_matches_hand_computation() {
        // [1,2,3,4,5], period 3: (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+5)/3 = 4.
        let out = sma(&[1.0, 2.0, 3.0, 4.0, 5.0], 3);
        assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(sma(&[1.0, 2.0], 0), vec![None, None]);
        assert_eq!(sma(&[1.0, 2.0], 3), vec![None, None]);
        assert_eq!(sma(&[], 3), Vec::<Option<f64>>::new());
        assert_eq!(sma(&[7.0], 1), vec![Some(7.0)]);
    }

    #[test]
    fn ema_matches_hand_computation() {
        // period 3 → α = 2/4 = 0.5. Seed = SMA(1,2,3) = 2.
        // i=3: 0.5·4 + 0.5·2   = 3
        // i=4: 0.5·5 + 0.5·3   = 4
        // i=5: 0.5·10 + 0.5·4  = 7
        let out = ema(&[1.0, 2.0, 3.0, 4.0, 5.0, 10.0], 3);
        assert_eq!(
            out,
            vec![None, None, Some(2.0), Some(3.0), Some(4.0), Some(7.0)]
        );
        // period 1 → α = 1: the EMA is the series itself.
        assert_eq!(ema(&[3.0, 9.0], 1), vec![Some(3.0), Some(9.0)]);
        assert_eq!(ema(&[1.0, 2.0], 0), vec![None, None]);
        assert_eq!(ema(&[1.0, 2.0], 5), vec![None, None]);
    }

    #[test]
    fn volatility_matches_hand_computation() {
        // closes 100, 110, 99: returns r1 = ln(1.1), r2 = ln(0.9).
        // mean m = (r1 + r2)/2; sample var = ((r1-m)² + (r2-m)²)/(2-1)
        //        = (r1 - r2)²/2, so stddev = |r1 - r2|/√2.
        let r1 = 1.1f64.ln();
        let r2 = 0.9f64.ln();
        let expected = (r1 - r2).abs() / 2f64.sqrt(); // ≈ 0.14190
        assert_approx(volatility(&[100.0, 110.0, 99.0], 3), expected);
        // Only the last `window` closes count: the leading 1.0 is ignored.
        assert_approx(volatility(&[1.0, 100.0, 110.0, 99.0], 3), expected);
        // Constant growth: equal returns, zero deviation.
        assert_approx(volatility(&[1.0, 2.0, 4.0, 8.0], 4), 0.0);
        assert_eq!(volatility(&[1.0, 2.0], 2), None, "one return is not enough");
        assert_eq!(volatility(&[1.0, 2.0], 3), None, "not enough closes");
        assert_eq!(volatility(&[1.0, 0.0, 2.0], 3), None);
        assert_eq!(volatility(&[1.0, f64::NAN, 2.0], 3), None);
        let rolling = rolling_volatility(&[100.0, 110.0, 99.0], 3);
        assert_eq!(rolling[..2], [None, None]);
        assert_approx(rolling[2], expected);
        assert_eq!(log_returns(&[1.0]), Vec::<f64>::new());
    }

    #[test]
    fn session_stats_vwap_and_change() {
        let mut e = engine();
        // prices/volumes: 100×1, 102×3, 99×2 (ts increasing).
        e.apply(&tick("AAPL", 100.0, 1.0, T0));
        e.apply(&tick("AAPL", 102.0, 3.0, T0 + 100));
        e.apply(&tick("AAPL", 99.0, 2.0, T0 + 200));
        let s = e.summary("AAPL").unwrap();
        assert_eq!(s.open, 100.0);
        assert_eq!(s.last, 99.0);
        assert_eq!(s.last_ts, T0 + 200);
        assert_eq!(s.change, -1.0); // 99 - 100
        assert_approx(s.change_pct, -1.0); // -1/100·100
        assert_eq!((s.high, s.low), (102.0, 99.0));
        assert_eq!(s.volume, 6.0);
        // VWAP = (100·1 + 102·3 + 99·2)/6 = (100 + 306 + 198)/6 = 604/6
        assert_approx(s.vwap, 604.0 / 6.0);
        assert_eq!(s.tick_count, 3);

        // A reference price replaces the first tick as the open.
        e.set_reference_price("AAPL", 90.0);
        let s = e.summary("AAPL").unwrap();
        assert_eq!(s.open, 90.0);
        assert_eq!(s.change, 9.0); // 99 - 90
        assert_approx(s.change_pct, 10.0); // 9/90·100

        // Zero volume: no VWAP rather than NaN.
        e.apply(&tick("MSFT", 10.0, 0.0, T0));
        assert_eq!(e.summary("MSFT").unwrap().vwap, None);
        assert_eq!(e.summary("NOPE"), None);
        assert_eq!(
            e.summaries()
                .iter()
                .map(|s| s.symbol.as_str())
                .collect::<Vec<_>>(),
            ["AAPL", "MSFT"]
        );
    }

    #[test]
    fn reference_price_before_first_tick() {
        let mut e = engine();
        e.set_reference_price("AAPL", 50.0);
        assert_eq!(e.summary("AAPL"), None, "no ticks yet");
        e.apply(&tick("AAPL", 55.0, 1.0, T0));
        let s = e.summary("AAPL").unwrap();
        assert_eq!((s.open, s.change), (50.0, 5.0));
        assert_approx(s.change_pct, 10.0);
        e.set_reference_price("AAPL", f64::NAN);
        assert_eq!(e.summary("AAPL").unwrap().open, 55.0, "invalid clears it");
    }

    #[test]
    fn candles_bucket_ohlcv_and_boundary_starts_new_candle() {
        let mut e = engine();
        e.apply(&tick("AAPL", 10.0, 1.0, T0));
        e.apply(&tick("AAPL", 12.0, 2.0, T0 + 400));
        e.apply(&tick("AAPL", 9.0, 1.0, T0 + 999));
        // Exactly on the boundary: belongs to the next 1 s candle.
        let out = e.apply(&tick("AAPL", 11.0, 5.0, T0 + 1_000));
        assert_eq!(out.status, TickStatus::Applied);
        // 1 s candle closed + new 1 s candle + 1 m candle updated.
        let summary: Vec<_> = out
            .updates
            .iter()
            .map(|u| (u.candle.interval, u.candle.start, u.closed))
            .collect();
        assert_eq!(
            summary,
            [
                (CandleInterval::OneSecond, T0, true),
                (CandleInterval::OneSecond, T0 + 1_000, false),
                (CandleInterval::OneMinute, T0, false),
            ]
        );
        let s1 = e.candles("AAPL", CandleInterval::OneSecond);
        assert_eq!(s1.len(), 2);
        let c = &s1[0];
        assert_eq!(
            (c.open, c.high, c.low, c.close, c.volume),
            (10.0, 12.0, 9.0, 9.0, 4.0)
        );
        assert_eq!(c.symbol, "AAPL");
        let m1 = e.candles("AAPL", CandleInterval::OneMinute);
        assert_eq!(m1.len(), 1);
        assert_eq!(
            (m1[0].open, m1[0].high, m1[0].low, m1[0].close, m1[0].volume),
            (10.0, 12.0, 9.0, 11.0, 9.0)
        );
        // The minute boundary also opens a new 1 m candle.
        let out = e.apply(&tick("AAPL", 13.0, 1.0, T0 + 60_000));
        assert!(out
            .updates
            .iter()
            .any(|u| u.candle.interval == CandleInterval::OneMinute
                && u.candle.start == T0
                && u.closed));
        assert_eq!(e.candles("AAPL", CandleInterval::OneMinute).len(), 2);
    }

    #[test]
    fn indicators_in_summary_use_candle_closes() {
        let mut e = engine();
        // One tick per second → 1 s closes 1, 2, 3, 4, 5.
        for (i, p) in [1.0, 2.0, 3.0, 4.0, 5.0].into_iter().enumerate() {
            e.apply(&tick("X", p, 1.0, T0 + i as i64 * 1_000));
        }
        let s = e.summary("X").unwrap();
        // SMA(3) of 3,4,5 = 4; EMA(3): seed 2, then 3, then 4 (see ema test).
        assert_approx(s.sma, 4.0);
        assert_approx(s.ema, 4.0);
        // closes 3,4,5: r1 = ln(4/3), r2 = ln(5/4); stddev = |r1 - r2|/√2.
        let expected = ((4.0f64 / 3.0).ln() - (5.0f64 / 4.0).ln()).abs() / 2f64.sqrt();
        assert_approx(s.volatility, expected);
        assert_eq!(
            e.closes("X", CandleInterval::OneSecond),
            [1.0, 2.0, 3.0, 4.0, 5.0]
        );

        // Too few candles → None.
        e.apply(&tick("Y", 1.0, 1.0, T0));
        let s = e.summary("Y").unwrap();
        assert_eq!((s.sma, s.ema, s.volatility), (None, None, None));
    }

    #[test]
    fn gaps_produce_no_fake_candles() {
        let mut e = engine();
        e.apply(&tick("X", 1.0, 1.0, T0));
        e.apply(&tick("X", 2.0, 1.0, T0 + 10_500));
        let starts: Vec<_> = e
            .candles("X", CandleInterval::OneSecond)
            .iter()
            .map(|c| c.start)
            .collect();
        assert_eq!(starts, [T0, T0 + 10_000]);
    }

    #[test]
    fn rings_are_bounded() {
        let mut e = engine(); // 5 candles per interval
        for i in 0..1_000 {
            e.apply(&tick("X", 1.0 + i as f64, 1.0, T0 + i * 1_000));
        }
        let s1 = e.candles("X", CandleInterval::OneSecond);
        assert_eq!(s1.len(), 5);
        assert_eq!(s1[0].start, T0 + 995_000, "oldest dropped first");
        assert_eq!(s1[4].start, T0 + 999_000);
        // 1000 s span 17 minutes; only the last 5 retained.
        let m1 = e.candles("X", CandleInterval::OneMinute);
        assert_eq!(m1.len(), 5);
        assert_eq!(m1[4].start, T0 + 960_000);
        assert_eq!(e.summary("X").unwrap().tick_count, 1_000);

        // Symbol count is bounded too (max_symbols = 3).
        e.apply(&tick("A", 1.0, 1.0, T0));
        e.apply(&tick("B", 1.0, 1.0, T0));
        let out = e.apply(&tick("C", 1.0, 1.0, T0));
        assert_eq!(
            out.status,
            TickStatus::Ignored(IgnoreReason::TooManySymbols)
        );
        assert_eq!(e.symbols().count(), 3);
        assert_eq!(e.ignored().too_many_symbols, 1);
    }

    #[test]
    fn zero_history_keeps_no_candles() {
        let mut e = MarketEngine::new(MarketConfig {
            history_1s: 0,
            ..MarketConfig::default()
        });
        let out = e.apply(&tick("X", 1.0, 1.0, T0));
        assert_eq!(out.updates.len(), 1, "only the 1 m candle");
        assert!(e.candles("X", CandleInterval::OneSecond).is_empty());
    }

    #[test]
    fn duplicates_are_ignored() {
        let mut e = engine();
        let t = tick("X", 10.0, 2.0, T0);
        assert!(e.apply(&t).is_applied());
        let out = e.apply(&t);
        assert_eq!(out.status, TickStatus::Ignored(IgnoreReason::Duplicate));
        assert!(out.updates.is_empty());
        // Same ts but different volume is a distinct trade.
        assert!(e.apply(&tick("X", 10.0, 3.0, T0)).is_applied());
        let s = e.summary("X").unwrap();
        assert_eq!((s.volume, s.tick_count, s.ignored_duplicate), (5.0, 2, 1));
        assert_eq!(e.ignored().duplicate, 1);
    }

    #[test]
    fn late_ticks_within_tolerance_revise_past_candles() {
        let mut e = engine(); // tolerance 2 s
        e.apply(&tick("X", 10.0, 1.0, T0 + 500));
        e.apply(&tick("X", 11.0, 1.0, T0 + 1_500));
        // 1.2 s behind the newest: applied to the closed T0 candle, and since
        // it is earlier than that candle's first tick it becomes its open.
        let out = e.apply(&tick("X", 20.0, 1.0, T0 + 300));
        assert_eq!(out.status, TickStatus::AppliedLate);
        assert_eq!(out.updates.len(), 2);
        assert!(out.updates[0].closed, "revision of a closed 1 s candle");
        assert!(!out.updates[1].closed, "the 1 m candle is still open");
        let s1 = e.candles("X", CandleInterval::OneSecond);
        let c = &s1[0];
        assert_eq!(
            (c.open, c.high, c.low, c.close, c.volume),
            (20.0, 20.0, 10.0, 10.0, 2.0)
        );
        let s = e.summary("X").unwrap();
        assert_eq!(s.last, 11.0, "last does not move backwards");
        assert_eq!(s.open, 20.0, "session open is the earliest tick");
        assert_eq!((s.high, s.volume), (20.0, 3.0));

        // 2.5 s behind the newest: beyond the tolerance, ignored.
        let out = e.apply(&tick("X", 5.0, 1.0, T0 - 1_000));
        assert_eq!(out.status, TickStatus::Ignored(IgnoreReason::TooLate));
        let s = e.summary("X").unwrap();
        assert_eq!((s.low, s.ignored_late), (10.0, 1));
        assert_eq!(e.ignored().too_late, 1);

        // A late tick at the newest candle but an earlier ts keeps the close.
        e.apply(&tick("X", 30.0, 1.0, T0 + 1_100));
        let s1 = e.candles("X", CandleInterval::OneSecond);
        assert_eq!((s1[1].open, s1[1].close, s1[1].high), (30.0, 11.0, 30.0));
        assert_eq!(e.summary("X").unwrap().last, 11.0);

        // Equal ts: the later arrival sets close and last.
        e.apply(&tick("X", 12.0, 1.0, T0 + 1_500));
        assert_eq!(e.summary("X").unwrap().last, 12.0);
    }

    #[test]
    fn late_tick_into_gap_inserts_closed_candle_in_order() {
        let mut e = engine();
        e.apply(&tick("X", 1.0, 1.0, T0));
        e.apply(&tick("X", 3.0, 1.0, T0 + 2_000));
        let out = e.apply(&tick("X", 2.0, 1.0, T0 + 1_000));
        assert_eq!(out.status, TickStatus::AppliedLate);
        assert_eq!(out.updates[0].candle.start, T0 + 1_000);
        assert!(out.updates[0].closed);
        let starts: Vec<_> = e
            .candles("X", CandleInterval::OneSecond)
            .iter()
            .map(|c| c.start)
            .collect();
        assert_eq!(starts, [T0, T0 + 1_000, T0 + 2_000]);
    }

    #[test]
    fn late_tick_older_than_full_ring_only_updates_session() {
        let mut e = MarketEngine::new(MarketConfig {
            history_1s: 2,
            late_tolerance_ms: 10_000,
            ..MarketConfig::default()
        });
        e.apply(&tick("X", 1.0, 1.0, T0 + 5_000));
        e.apply(&tick("X", 1.0, 1.0, T0 + 6_000));
        let out = e.apply(&tick("X", 2.0, 1.0, T0 + 1_000));
        assert_eq!(out.status, TickStatus::AppliedLate);
        // Only the 1 m candle changes; the 1 s ring is full and newer.
        assert_eq!(out.updates.len(), 1);
        assert_eq!(out.updates[0].candle.interval, CandleInterval::OneMinute);
        assert_eq!(e.candles("X", CandleInterval::OneSecond).len(), 2);
        assert_eq!(e.summary("X").unwrap().volume, 3.0);
    }

    #[test]
    fn close_due_closes_quiet_candles_once() {
        let mut e = engine();
        e.apply(&tick("X", 1.0, 1.0, T0 + 10));
        assert!(e.close_due(T0 + 999).is_empty());
        let closed = e.close_due(T0 + 1_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].candle.interval, CandleInterval::OneSecond);
        assert!(closed[0].closed);
        assert!(e.close_due(T0 + 1_000).is_empty(), "reported once");
        let closed = e.close_due(T0 + 60_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].candle.interval, CandleInterval::OneMinute);
        // The next tick opens a new candle without re-closing the old one.
        let out = e.apply(&tick("X", 2.0, 1.0, T0 + 61_000));
        assert!(out.updates.iter().all(|u| !u.closed));
        assert_eq!(out.updates.len(), 2);
    }

    #[test]
    fn odd_and_negative_timestamps_do_not_panic() {
        let mut e = engine();
        // -1 ms lies in the second [-1000, 0) and the minute [-60000, 0).
        e.apply(&tick("X", 1.0, 1.0, -1));
        let c = e.candles("X", CandleInterval::OneSecond);
        assert_eq!(c[0].start, -1_000);
        assert_eq!(e.candles("X", CandleInterval::OneMinute)[0].start, -60_000);
        e.apply(&tick("X", 1.0, 1.0, 0));
        assert_eq!(e.candles("X", CandleInterval::OneSecond)[1].start, 0);

        let mut e = engine();
        let out = e.apply(&tick("X", 1.0, 1.0, i64::MIN));
        assert_eq!(
            out.status,
            TickStatus::Ignored(IgnoreReason::TimestampOutOfRange)
        );
        e.apply(&tick("X", 1.0, 1.0, i64::MAX));
        e.apply(&tick("X", 2.0, 1.0, i64::MIN + 1_000_000));
        assert!(e.close_due(i64::MAX).len() <= 2);
        e.close_due(i64::MIN);
        assert!(e.summary("X").is_some());
    }

    #[test]
    fn invalid_values_are_ignored_without_state() {
        let mut e = engine();
        for (p, v) in [
            (f64::NAN, 1.0),
            (f64::INFINITY, 1.0),
            (0.0, 1.0),
            (-1.0, 1.0),
            (1.0, f64::NAN),
            (1.0, -1.0),
        ] {
            let out = e.apply(&tick("X", p, v, T0));
            assert_eq!(out.status, TickStatus::Ignored(IgnoreReason::InvalidValue));
        }
        assert_eq!(e.symbols().count(), 0);
        assert_eq!(e.ignored().invalid_value, 6);
    }

    fn candle(
        symbol: &str,
        interval: CandleInterval,
        start: TimestampMs,
        ohlcv: [f64; 5],
    ) -> Candle {
        let [open, high, low, close, volume] = ohlcv;
        Candle {
            symbol: symbol.into(),
            interval,
            start,
            open,
            high,
            low,
            close,
            volume,
        }
    }

    #[test]
    fn seeding_restores_candles_and_session() {
        let mut e = engine();
        let m = CandleInterval::OneMinute;
        let n = e.seed_candles([
            candle("X", m, T0 + 60_000, [11.0, 14.0, 10.0, 13.0, 1.0]),
            candle("X", m, T0 + 5, [10.0, 12.0, 8.0, 11.0, 2.0]), // unaligned start
            candle("X", m, T0, [1.0, 1.0, 1.0, 1.0, 1.0]),        // same interval: skipped
            candle("X", m, T0 + 120_000, [f64::NAN, 1.0, 1.0, 1.0, 1.0]), // invalid
        ]);
        assert_eq!(n, 2);
        let c = e.candles("X", m);
        assert_eq!(
            c.iter().map(|c| c.start).collect::<Vec<_>>(),
            [T0, T0 + 60_000]
        );
        let s = e.summary("X").unwrap();
        assert_eq!(
            (s.open, s.last, s.high, s.low, s.volume),
            (10.0, 13.0, 14.0, 8.0, 3.0)
        );
        assert_eq!((s.tick_count, s.last_ts), (0, T0 + 60_000));
        // Typical prices: (12+8+11)/3 = 31/3 (vol 2), (14+10+13)/3 = 37/3 (vol 1).
        // VWAP = (62/3 + 37/3)/3 = 99/9 = 11.
        assert_approx(s.vwap, 11.0);

        // The newest seeded candle is still open and closes by wall time...
        let closed = e.close_due(T0 + 120_000);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].candle.start, T0 + 60_000);
        // ...and live ticks continue the session.
        let out = e.apply(&tick("X", 15.0, 1.0, T0 + 120_500));
        assert_eq!(out.status, TickStatus::Applied);
        let s = e.summary("X").unwrap();
        assert_eq!(
            (s.open, s.last, s.high, s.tick_count),
            (10.0, 15.0, 15.0, 1)
        );

        // Live candles win over seeded ones.
        let before = e.candles("X", m);
        e.seed_candles([candle("X", m, T0 + 120_000, [1.0, 1.0, 1.0, 1.0, 9.0])]);
        assert_eq!(e.candles("X", m), before);
    }

    #[test]
    fn seeding_marks_only_the_newest_candle_open() {
        let mut e = engine();
        let s = CandleInterval::OneSecond;
        e.seed_candles([
            candle("X", s, T0, [1.0, 1.0, 1.0, 1.0, 1.0]),
            candle("X", s, T0 + 1_000, [1.0, 1.0, 1.0, 1.0, 1.0]),
        ]);
        // A tick in the newest seeded second updates it as an open candle.
        let out = e.apply(&tick("X", 2.0, 1.0, T0 + 1_500));
        let u = &out.updates[0];
        assert_eq!(
            (u.candle.start, u.closed, u.candle.close),
            (T0 + 1_000, false, 2.0)
        );
    }

    #[test]
    fn new_session_keeps_candles() {
        let mut e = engine();
        e.apply(&tick("X", 1.0, 1.0, T0));
        e.start_new_session();
        assert_eq!(e.summary("X"), None);
        assert_eq!(e.candles("X", CandleInterval::OneSecond).len(), 1);
        e.apply(&tick("X", 2.0, 1.0, T0 + 1));
        assert_eq!(e.summary("X").unwrap().open, 2.0);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut e = engine();
        e.apply(&tick("X", 1.0, 1.0, T0));
        let json = serde_json::to_string(&e).unwrap();
        let back: MarketEngine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let s = serde_json::to_value(e.summary("X").unwrap()).unwrap();
        assert_eq!(s["indicator_interval"], "1s");
        let status = serde_json::to_value(TickStatus::Ignored(IgnoreReason::TooLate)).unwrap();
        assert_eq!(status, serde_json::json!({"ignored": "too_late"}));
    }
}
