//! Price chart of the selected symbol: candles of the chosen interval and
//! range (see [`ChartView`]), SMA overlay and volume.

use std::borrow::Cow;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chart_view::{ChartRange, ChartView};
use crate::charts::{candle_chart_svg, CANDLE_CHART_SIZE};
use crate::endpoint::http_base;
use crate::rpc_error::RpcError;
use crate::sentiment_panel::SymbolSentiment;
use crate::{format::signed, watchlist::Watchlist};
use pulse_core::analytics::market::{rollup, sma};
use pulse_core::model::{Candle, CandleInterval};
use pulse_core::protocol::{CandleUpdate, StreamPosition};
use pulse_core::time::bucket_start;

pub const SMA_PERIOD: usize = 20;

/// Everything that depends on the selected symbol, loaded again when it changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolData {
    pub price: PriceState,
    pub sentiment: SymbolSentiment,
}

/// Candles of the selected symbol, as its view shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceState {
    pub symbol: String,
    pub view: ChartView,
    /// Candles of the view's interval, oldest first. For an interval rolled
    /// up from 1 min candles: the buckets before the ones in `tail`.
    pub candles: Vec<Candle>,
    /// For 5 min, 1 h and 1 day candles: the 1 min candles of the newest two
    /// buckets, which live updates still revise, drawn rolled up.
    pub tail: Vec<Candle>,
    /// The range holds more candles than the chart draws (it shows the newest).
    pub truncated: bool,
    /// Position of `candles:<SYMBOL>` the candles reach; older events are skipped.
    pub position: Option<StreamPosition>,
}

impl PriceState {
    /// The candles to draw, oldest first.
    pub fn series(&self) -> Cow<'_, [Candle]> {
        if self.tail.is_empty() {
            return Cow::Borrowed(&self.candles);
        }
        let mut all = self.candles.clone();
        all.extend(rollup(&self.tail, self.view.interval));
        Cow::Owned(all)
    }

    /// How many candles [`PriceState::series`] draws, without making them.
    pub fn shown(&self) -> usize {
        let width = self.view.interval.millis();
        let bucket = |c: &Candle| bucket_start(c.start, width);
        // The tail is sorted, so its buckets are runs.
        let runs = self
            .tail
            .windows(2)
            .filter(|pair| bucket(&pair[0]) != bucket(&pair[1]))
            .count()
            + usize::from(!self.tail.is_empty());
        self.candles.len() + runs
    }

    /// The first and last start [`PriceState::series`] draws, without making them.
    pub fn span(&self) -> Option<(i64, i64)> {
        let width = self.view.interval.millis();
        let first = self
            .candles
            .first()
            .map(|c| c.start)
            .or_else(|| self.tail.first().and_then(|c| bucket_start(c.start, width)))?;
        let last = self
            .tail
            .last()
            .and_then(|c| bucket_start(c.start, width))
            .or_else(|| self.candles.last().map(|c| c.start))?;
        Some((first, last))
    }

    /// Applies a `candles:<SYMBOL>` event at `offset`; returns whether anything changed.
    pub fn apply(&mut self, offset: u64, update: CandleUpdate) -> bool {
        let candle = update.candle;
        if candle.symbol != self.symbol {
            return false;
        }
        if self.position.as_ref().is_some_and(|p| offset <= p.offset) {
            return false;
        }
        let interval = self.view.interval;
        if candle.interval == interval {
            let cap = self.view.limit();
            let changed = upsert_candle(&mut self.candles, candle, cap);
            self.scroll();
            changed
        } else if !interval.is_stored() && candle.interval == interval.source() {
            // Two buckets' worth of minutes, and one more for the one opening.
            let cap = 3 * (interval.millis() / candle.interval.millis()) as usize;
            let changed = upsert_candle(&mut self.tail, candle, cap);
            self.settle();
            changed
        } else {
            false
        }
    }

    /// Moves the tail's buckets older than its newest two into `candles`,
    /// rolled up: nothing revises them any more.
    fn settle(&mut self) {
        let width = self.view.interval.millis();
        let bucket = |c: &Candle| bucket_start(c.start, width).unwrap_or(c.start);
        let Some(newest) = self.tail.last().map(bucket) else {
            return;
        };
        let keep_from = newest.saturating_sub(width);
        let settled = self.tail.partition_point(|c| bucket(c) < keep_from);
        if settled == 0 {
            return;
        }
        let cap = self.view.limit();
        for candle in rollup(&self.tail[..settled], self.view.interval) {
            upsert_candle(&mut self.candles, candle, cap);
        }
        self.tail.drain(..settled);
        self.scroll();
    }

    /// A range of fixed length moves with its newest candle.
    fn scroll(&mut self) {
        let Some(length) = self.view.range.millis(self.view.interval) else {
            return;
        };
        let newest = self.tail.last().or(self.candles.last()).map(|c| c.start);
        if let Some(newest) = newest {
            let oldest = newest.saturating_sub(length);
            let gone = self.candles.partition_point(|c| c.start < oldest);
            self.candles.drain(..gone);
        }
    }
}

/// `/api/export` of the candles the chart shows (their first to last start).
pub fn export_path(price: &PriceState) -> String {
    let mut path = format!(
        "/api/export?kind=candles&symbol={}&interval={}&format=csv",
        price.symbol,
        price.view.interval.as_str()
    );
    if let Some((first, last)) = price.span() {
        path.push_str(&format!("&from={first}&to={last}"));
    }
    path
}

/// Replaces the candle with the same start, or appends a newer one (capped).
pub fn upsert_candle(series: &mut Vec<Candle>, candle: Candle, cap: usize) -> bool {
    match series.last() {
        Some(last) if last.start < candle.start => series.push(candle),
        None => series.push(candle),
        _ => match series.binary_search_by_key(&candle.start, |c| c.start) {
            Ok(index) => series[index] = candle,
            Err(0) => return false, // older than the window
            Err(index) => series.insert(index, candle), // a gap filled late
        },
    }
    if series.len() > cap {
        let excess = series.len() - cap;
        series.drain(..excess);
    }
    true
}

/// Reloads the selected symbol's panels (on selection, a new view, or after
/// lost history).
#[server(prefix = "/rpc", endpoint = "load_symbol", client = crate::rpc_client::RpcClient)]
pub async fn load_symbol(symbol: String, view: Option<ChartView>) -> Result<SymbolData, RpcError> {
    crate::backend::backend()?
        .symbol(symbol, view.unwrap_or_default())
        .await
}

/// Candles of `symbol` starting in `[from, to]` (Unix ms, either open), oldest
/// first, from storage: the chart's history beyond what the server keeps in
/// memory. Same query as `GET /api/candles/<SYMBOL>`.
#[server(prefix = "/rpc", endpoint = "candles", client = crate::rpc_client::RpcClient)]
pub async fn load_candles(
    symbol: String,
    interval: CandleInterval,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<Candle>, RpcError> {
    if let Err(error) = pulse_core::model::validate_symbol(&symbol) {
        return Err(RpcError::invalid(
            Some("symbol"),
            format!("invalid symbol: {}", error.message),
        ));
    }
    crate::backend::backend()?
        .candles(symbol, interval, from, to)
        .await
}

#[component]
pub fn PricePanel(
    price: RwSignal<PriceState>,
    watchlist: RwSignal<Watchlist>,
    view: Signal<ChartView>,
    loading: RwSignal<bool>,
) -> impl IntoView {
    let symbol = move || price.with(|p| p.symbol.clone());
    let svg = Memo::new(move |_| {
        price.with(|p| {
            let candles = p.series();
            let closes: Vec<f64> = candles.iter().map(|c| c.close).collect();
            let averages = sma(&closes, SMA_PERIOD);
            let title = format!(
                "{} {} candles with SMA {SMA_PERIOD} and volume",
                p.symbol,
                p.view.interval.as_str()
            );
            candle_chart_svg(&title, &candles, &averages, CANDLE_CHART_SIZE)
        })
    });
    let shown = Memo::new(move |_| price.with(|p| (p.shown(), p.truncated)));
    let export_href = Memo::new(move |_| price.with(export_path));
    let quote = Memo::new(move |_| {
        let symbol = price.with(|p| p.symbol.clone());
        watchlist.with(|w| {
            w.row(&symbol).map(|r| {
                (
                    format!("{:.2}", r.last),
                    signed(r.change(), 2),
                    r.change_pct()
                        .map_or_else(String::new, |p| format!("({}%)", signed(p, 2))),
                    r.change() >= 0.0,
                )
            })
        })
    });
    // A link to `target`; the current choice is the one that changes nothing.
    let link = move |target: Memo<ChartView>, label: &'static str| {
        let current = Memo::new(move |_| target.get() == view.get());
        let href = move || format!("/{}", target.get().query(&symbol()));
        view! {
            <a href=href rel=move || target.get().at.map(|_| "external") class="seg" class:active=move || current.get() aria-current=move || current.get().then_some("true")>
                {label}
            </a>
        }
    };
    view! {
        <section class="panel price-panel" aria-labelledby="price-heading" aria-busy=move || loading.get().to_string()>
            <div class="panel-head">
                <h2 id="price-heading">
                    <span class="symbol">{symbol}</span>
                    " "
                    <span class="last-price" data-testid="last-price">{move || quote.get().map(|q| q.0).unwrap_or_else(|| "—".into())}</span>
                    " "
                    <span class=move || format!("quote-change {}", if quote.get().is_none_or(|q| q.3) { "up" } else { "down" })>
                        {move || quote.get().map(|q| format!("{} {}", q.1, q.2)).unwrap_or_default()}
                    </span>
                </h2>
                <div class="segmented" role="group" aria-label="Candle interval">
                    {CandleInterval::ALL
                        .map(|interval| link(Memo::new(move |_| ChartView { interval, ..view.get() }), interval.label()))
                        .collect_view()}
                </div>
            </div>
            <div class="chart-bar">
                <div class="segmented" role="group" aria-label="Time range">
                    {ChartRange::ALL
                        .map(|range| link(Memo::new(move |_| ChartView { range, ..view.get() }), range.label()))
                        .collect_view()}
                </div>
                <a class="export" data-testid="export" download href=move || format!("{}{}", http_base(), export_href.get())>
                    "Export CSV"
                </a>
                <p class="chart-note" data-testid="chart-note">
                    {move || {
                        let (count, truncated) = shown.get();
                        if truncated {
                            format!("The newest {count} candles of this range; choose a longer interval to see all of it.")
                        } else if count == 0 {
                            "No candles in this range.".to_owned()
                        } else {
                            format!("{count} candles")
                        }
                    }}
                </p>
            </div>
            <div class="legend" aria-hidden="true">
                <span class="key key-up">"Up"</span>
                <span class="key key-down">"Down"</span>
                <span class="key key-sma">{format!("SMA {SMA_PERIOD}")}</span>
                <span class="key key-volume">"Volume"</span>
            </div>
            <div class="chart" data-testid="price-chart" inner_html=move || svg.get()></div>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    fn candle(interval: CandleInterval, start: i64, close: f64) -> Candle {
        Candle {
            symbol: "A".into(),
            interval,
            start,
            open: 1.0,
            high: close.max(1.0),
            low: close.min(1.0),
            close,
            volume: 1.0,
        }
    }

    fn update(interval: CandleInterval, start: i64, close: f64) -> CandleUpdate {
        CandleUpdate {
            candle: candle(interval, start, close),
            closed: false,
        }
    }

    fn state(interval: CandleInterval, range: ChartRange) -> PriceState {
        PriceState {
            symbol: "A".into(),
            view: ChartView {
                interval,
                range,
                at: None,
            },
            ..PriceState::default()
        }
    }

    #[test]
    fn candles_are_revised_appended_gaps_filled_and_capped() {
        let second = CandleInterval::OneSecond;
        let mut series: Vec<Candle> = [0, 1000, 3000].map(|s| candle(second, s, 1.0)).to_vec();
        assert!(upsert_candle(&mut series, candle(second, 3000, 5.0), 4));
        assert_eq!(series[2].close, 5.0);
        assert!(upsert_candle(&mut series, candle(second, 2000, 7.0), 4));
        assert_eq!(series[2].close, 7.0, "the gap at 2 s is filled in order");
        assert!(upsert_candle(&mut series, candle(second, 4000, 2.0), 4));
        assert_eq!(
            series.iter().map(|c| c.start).collect::<Vec<_>>(),
            [1000, 2000, 3000, 4000]
        );
        assert!(!upsert_candle(&mut series, candle(second, 0, 2.0), 4));
    }

    #[test]
    fn events_up_to_the_loaded_position_other_symbols_and_intervals_are_skipped() {
        let mut state = PriceState {
            position: Some(StreamPosition {
                epoch: "e".into(),
                offset: 10,
            }),
            ..state(CandleInterval::OneSecond, ChartRange::Live)
        };
        assert!(!state.apply(10, update(CandleInterval::OneSecond, 0, 1.0)));
        assert!(state.apply(11, update(CandleInterval::OneSecond, 0, 1.0)));
        let mut other = update(CandleInterval::OneSecond, 1000, 1.0);
        other.candle.symbol = "B".into();
        assert!(!state.apply(12, other));
        assert!(!state.apply(13, update(CandleInterval::OneMinute, 0, 3.0)));
        assert_eq!(state.series().len(), 1);
    }

    #[test]
    fn live_minutes_roll_up_into_the_newest_hours_and_settle_when_two_newer_open() {
        let mut state = state(CandleInterval::OneHour, ChartRange::OneDay);
        state.candles = vec![candle(CandleInterval::OneHour, 0, 4.0)];
        let minute = |start, close| update(CandleInterval::OneMinute, start, close);
        assert!(state.apply(1, minute(HOUR, 2.0)));
        assert!(state.apply(2, minute(HOUR + MINUTE, 3.0)));
        assert!(
            state.apply(3, minute(HOUR + MINUTE, 6.0)),
            "the open minute revised"
        );
        let series = state.series();
        assert_eq!(series.len(), 2);
        let hour = &series[1];
        assert_eq!((hour.start, hour.interval), (HOUR, CandleInterval::OneHour));
        assert_eq!((hour.close, hour.high, hour.volume), (6.0, 6.0, 2.0));
        // A second and a third hour open: the first live hour is settled.
        assert!(state.apply(4, minute(2 * HOUR, 1.5)));
        assert_eq!(state.tail.len(), 3, "two buckets stay revisable");
        assert!(state.apply(5, minute(3 * HOUR + 5 * MINUTE, 1.0)));
        assert_eq!(state.tail.len(), 2);
        assert_eq!(state.candles.len(), 2);
        assert_eq!(state.candles[1].close, 6.0);
        let starts: Vec<i64> = state.series().iter().map(|c| c.start).collect();
        assert_eq!(starts, [0, HOUR, 2 * HOUR, 3 * HOUR]);
        assert_eq!((state.shown(), state.span()), (4, Some((0, 3 * HOUR))));
        assert!(export_path(&state).ends_with(&format!("&from=0&to={}", 3 * HOUR)));
    }

    #[test]
    fn a_fixed_range_scrolls_with_its_newest_candle() {
        let mut state = state(CandleInterval::OneMinute, ChartRange::FifteenMinutes);
        state.candles = (0..15)
            .map(|i| candle(CandleInterval::OneMinute, i * MINUTE, 1.0))
            .collect();
        assert!(state.apply(1, update(CandleInterval::OneMinute, 20 * MINUTE, 1.0)));
        let starts: Vec<i64> = state.series().iter().map(|c| c.start).collect();
        assert_eq!(starts.first(), Some(&(5 * MINUTE)));
        assert_eq!(starts.len(), 11);
    }
}
