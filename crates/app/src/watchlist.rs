//! Watchlist: every symbol with last price, change and a one-minute sparkline.
//! Each row is a link to `/?symbol=XYZ`, so the selection lives in the URL.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chart_view::ChartView;
use crate::format::signed;
use crate::panel::PanelHead;
use pulse_core::model::Tick;

/// Sparkline points kept per symbol: one per second, so one minute.
pub const SPARK_POINTS: usize = 60;

/// One watchlist line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchRow {
    pub symbol: String,
    pub last: f64,
    pub last_ts: i64,
    /// Session open: change and % change are measured against it.
    pub open: f64,
    /// `(second, last price in that second)`, oldest first.
    pub spark: Vec<(i64, f64)>,
}

impl WatchRow {
    pub fn new(symbol: String, open: f64) -> Self {
        Self {
            symbol,
            open,
            ..Self::default()
        }
    }

    pub fn change(&self) -> f64 {
        self.last - self.open
    }

    pub fn change_pct(&self) -> Option<f64> {
        (self.open != 0.0).then(|| self.change() / self.open * 100.0)
    }

    /// Applies one tick: `last` only moves forward in time; the sparkline keeps
    /// the newest price of each second.
    pub fn apply(&mut self, tick: &Tick) {
        if tick.ts >= self.last_ts {
            self.last = tick.price;
            self.last_ts = tick.ts;
        }
        push_spark(&mut self.spark, tick.ts, tick.price, SPARK_POINTS);
    }
}

/// Adds a price to a per-second series capped at `cap` points.
pub fn push_spark(spark: &mut Vec<(i64, f64)>, ts: i64, price: f64, cap: usize) {
    let second = ts.div_euclid(1000);
    match spark.last_mut() {
        Some(last) if last.0 == second => last.1 = price,
        Some(last) if last.0 > second => {}
        _ => spark.push((second, price)),
    }
    if spark.len() > cap {
        let excess = spark.len() - cap;
        spark.drain(..excess);
    }
}

/// All rows, sorted by symbol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watchlist {
    pub rows: Vec<WatchRow>,
}

impl Watchlist {
    pub fn row(&self, symbol: &str) -> Option<&WatchRow> {
        self.rows.iter().find(|r| r.symbol == symbol)
    }

    /// Applies ticks; a symbol seen for the first time gets a row opening at its first price.
    pub fn apply(&mut self, ticks: &[Tick]) {
        for tick in ticks {
            let index = match self
                .rows
                .binary_search_by(|r| r.symbol.as_str().cmp(&tick.symbol))
            {
                Ok(index) => index,
                Err(index) => {
                    self.rows
                        .insert(index, WatchRow::new(tick.symbol.clone(), tick.price));
                    index
                }
            };
            self.rows[index].apply(tick);
        }
    }
}

/// `points` attribute of a sparkline polyline in a 100 × 28 box.
pub fn spark_points(spark: &[(i64, f64)]) -> String {
    let (low, high) = spark
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let span = (high - low).max(1e-9);
    let step = 100.0 / (spark.len().max(2) - 1) as f64;
    let mut out = String::with_capacity(spark.len() * 12);
    for (i, (_, price)) in spark.iter().enumerate() {
        let y = 26.0 - (price - low) / span * 24.0;
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{:.1},{y:.1}", i as f64 * step));
    }
    out
}

#[component]
pub fn WatchlistPanel(
    watchlist: RwSignal<Watchlist>,
    selected: Signal<String>,
    view: Signal<ChartView>,
) -> impl IntoView {
    let symbols = Memo::new(move |_| {
        watchlist.with(|w| w.rows.iter().map(|r| r.symbol.clone()).collect::<Vec<_>>())
    });
    view! {
        <section class="panel watchlist-panel" aria-labelledby="watchlist-heading" data-testid="watchlist">
            <PanelHead id="watchlist-heading" title="Watchlist" hint="Select a symbol"/>
            <ul class="watchlist">
                <For each=move || symbols.get() key=|s| s.clone() let:symbol>
                    <WatchItem watchlist selected view symbol/>
                </For>
            </ul>
        </section>
    }
    .into_any()
}

#[component]
fn WatchItem(
    watchlist: RwSignal<Watchlist>,
    selected: Signal<String>,
    view: Signal<ChartView>,
    symbol: String,
) -> impl IntoView {
    let row = {
        let symbol = symbol.clone();
        Memo::new(move |_| watchlist.with(|w| w.row(&symbol).cloned().unwrap_or_default()))
    };
    let is_selected = {
        let symbol = symbol.clone();
        move || selected.with(|s| *s == symbol)
    };
    let href = {
        let symbol = symbol.clone();
        move || format!("/{}", view.get().query(&symbol))
    };
    let direction = move || row.with(|r| if r.change() >= 0.0 { "up" } else { "down" });
    let change = move || {
        row.with(|r| {
            let pct = r
                .change_pct()
                .map_or_else(String::new, |p| format!("{}%", signed(p, 2)));
            (signed(r.change(), 2), pct)
        })
    };
    view! {
        <li>
            <a
                href=href
                // In the past, a new selection starts playing again from the clock's moment.
                rel=move || view.get().at.map(|_| "external")
                class="watch-row"
                class:selected=is_selected.clone()
                aria-current=move || is_selected().then_some("true")
                data-symbol=symbol.clone()
            >
                <span class="wl-symbol">{symbol.clone()}</span>
                <svg class=move || format!("spark spark-{}", direction()) viewBox="0 0 100 28" preserveAspectRatio="none" aria-hidden="true" focusable="false">
                    <polyline points=move || row.with(|r| spark_points(&r.spark)) fill="none" stroke-width="1.6" vector-effect="non-scaling-stroke"/>
                </svg>
                <span class="wl-price">{move || row.with(|r| format!("{:.2}", r.last))}</span>
                <span class=move || format!("wl-change {}", direction())>
                    <span class="wl-abs">{move || change().0}</span>
                    <span class="wl-pct">{move || change().1}</span>
                </span>
            </a>
        </li>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(symbol: &str, price: f64, ts: i64) -> Tick {
        Tick {
            symbol: symbol.into(),
            price,
            volume: 1.0,
            ts,
        }
    }

    #[test]
    fn sparkline_keeps_one_point_per_second_and_caps() {
        let mut spark = Vec::new();
        push_spark(&mut spark, 1_000, 1.0, 3);
        push_spark(&mut spark, 1_500, 2.0, 3);
        assert_eq!(spark, [(1, 2.0)]);
        push_spark(&mut spark, 500, 9.0, 3); // older second: ignored
        for s in 2..=5 {
            push_spark(&mut spark, s * 1_000, s as f64, 3);
        }
        assert_eq!(spark, [(3, 3.0), (4, 4.0), (5, 5.0)]);
    }

    #[test]
    fn ticks_move_last_price_and_change() {
        let mut list = Watchlist::default();
        list.apply(&[tick("MSFT", 100.0, 10), tick("AAPL", 50.0, 10)]);
        assert_eq!(list.rows[0].symbol, "AAPL", "rows stay sorted");
        list.apply(&[tick("MSFT", 110.0, 20), tick("MSFT", 90.0, 15)]);
        let msft = list.row("MSFT").unwrap();
        assert_eq!(msft.last, 110.0, "an older tick does not move last");
        assert_eq!(msft.change(), 10.0);
        assert_eq!(msft.change_pct(), Some(10.0));
    }

    #[test]
    fn spark_points_fit_the_box() {
        let points = spark_points(&[(0, 1.0), (1, 3.0), (2, 2.0)]);
        assert_eq!(points, "0.0,26.0 50.0,2.0 100.0,14.0");
        assert_eq!(spark_points(&[]), "");
    }
}
