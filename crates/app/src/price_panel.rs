//! Price chart of the selected symbol: candles (1 s / 1 min), SMA overlay and volume.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::charts::{candle_chart_svg, CANDLE_CHART_SIZE};
use crate::rpc_error::RpcError;
use crate::sentiment_panel::SymbolSentiment;
use crate::{format::signed, watchlist::Watchlist};
use pulse_core::analytics::market::sma;
use pulse_core::model::{Candle, CandleInterval};
use pulse_core::protocol::{CandleUpdate, StreamPosition};

/// Candles kept per interval; older ones scroll out.
pub const CANDLE_WINDOW: usize = 120;
pub const SMA_PERIOD: usize = 20;

/// Everything that depends on the selected symbol, loaded again when it changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolData {
    pub price: PriceState,
    pub sentiment: SymbolSentiment,
}

/// Candles of the selected symbol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceState {
    pub symbol: String,
    pub one_second: Vec<Candle>,
    pub one_minute: Vec<Candle>,
    /// Position of `candles:<SYMBOL>` the candles reach; older events are skipped.
    pub position: Option<StreamPosition>,
}

impl PriceState {
    pub fn series(&self, interval: CandleInterval) -> &[Candle] {
        match interval {
            CandleInterval::OneSecond => &self.one_second,
            CandleInterval::OneMinute => &self.one_minute,
        }
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
        let series = match candle.interval {
            CandleInterval::OneSecond => &mut self.one_second,
            CandleInterval::OneMinute => &mut self.one_minute,
        };
        upsert_candle(series, candle, CANDLE_WINDOW)
    }
}

/// Replaces the candle with the same start, or appends a newer one (capped).
pub fn upsert_candle(series: &mut Vec<Candle>, candle: Candle, cap: usize) -> bool {
    match series.last() {
        Some(last) if last.start < candle.start => series.push(candle),
        None => series.push(candle),
        _ => match series.binary_search_by_key(&candle.start, |c| c.start) {
            Ok(index) => series[index] = candle,
            Err(_) => return false, // older than the window
        },
    }
    if series.len() > cap {
        let excess = series.len() - cap;
        series.drain(..excess);
    }
    true
}

pub fn interval_param(interval: CandleInterval) -> &'static str {
    interval.as_str()
}

/// The `interval` URL parameter; missing or unknown values mean 1 s.
pub fn parse_interval(param: Option<&str>) -> CandleInterval {
    param
        .and_then(|p| p.parse().ok())
        .unwrap_or(CandleInterval::OneSecond)
}

/// Reloads the selected symbol's panels (on selection or after lost history).
#[server(prefix = "/rpc", endpoint = "load_symbol", client = crate::rpc_client::RpcClient)]
pub async fn load_symbol(symbol: String) -> Result<SymbolData, RpcError> {
    crate::backend::backend()?.symbol(symbol).await
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
    interval: Signal<CandleInterval>,
    loading: RwSignal<bool>,
) -> impl IntoView {
    let symbol = move || price.with(|p| p.symbol.clone());
    let svg = Memo::new(move |_| {
        let interval = interval.get();
        price.with(|p| {
            let candles = p.series(interval);
            let closes: Vec<f64> = candles.iter().map(|c| c.close).collect();
            let averages = sma(&closes, SMA_PERIOD);
            let title = format!(
                "{} {} candles with SMA {SMA_PERIOD} and volume",
                p.symbol,
                interval_param(interval)
            );
            candle_chart_svg(&title, candles, &averages, CANDLE_CHART_SIZE)
        })
    });
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
    let interval_link = move |target: CandleInterval, label: &'static str| {
        let href = move || format!("/?symbol={}&interval={}", symbol(), interval_param(target));
        let current = move || interval.get() == target;
        view! {
            <a href=href class="seg" class:active=current aria-current=move || current().then_some("true")>
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
                    <span class="last-price">{move || quote.get().map(|q| q.0).unwrap_or_else(|| "—".into())}</span>
                    " "
                    <span class=move || format!("quote-change {}", if quote.get().is_none_or(|q| q.3) { "up" } else { "down" })>
                        {move || quote.get().map(|q| format!("{} {}", q.1, q.2)).unwrap_or_default()}
                    </span>
                </h2>
                <div class="segmented" role="group" aria-label="Candle interval">
                    {interval_link(CandleInterval::OneSecond, "1 s")}
                    {interval_link(CandleInterval::OneMinute, "1 min")}
                </div>
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

    fn update(start: i64, close: f64) -> CandleUpdate {
        CandleUpdate {
            candle: candle(CandleInterval::OneSecond, start, close),
            closed: false,
        }
    }

    #[test]
    fn candles_are_revised_appended_and_capped() {
        let mut series: Vec<Candle> = (0..3)
            .map(|i| candle(CandleInterval::OneSecond, i * 1000, 1.0))
            .collect();
        assert!(upsert_candle(
            &mut series,
            candle(CandleInterval::OneSecond, 2000, 5.0),
            3
        ));
        assert_eq!(series[2].close, 5.0);
        assert!(upsert_candle(
            &mut series,
            candle(CandleInterval::OneSecond, 1000, 7.0),
            3
        ));
        assert_eq!(series[1].close, 7.0);
        assert!(upsert_candle(
            &mut series,
            candle(CandleInterval::OneSecond, 3000, 2.0),
            3
        ));
        assert_eq!(
            series.iter().map(|c| c.start).collect::<Vec<_>>(),
            [1000, 2000, 3000]
        );
        assert!(!upsert_candle(
            &mut series,
            candle(CandleInterval::OneSecond, 0, 2.0),
            3
        ));
    }

    #[test]
    fn events_up_to_the_loaded_position_and_other_symbols_are_skipped() {
        let mut state = PriceState {
            symbol: "A".into(),
            position: Some(StreamPosition {
                epoch: "e".into(),
                offset: 10,
            }),
            ..PriceState::default()
        };
        assert!(!state.apply(10, update(0, 1.0)));
        assert!(state.apply(11, update(0, 1.0)));
        let mut other = update(1000, 1.0);
        other.candle.symbol = "B".into();
        assert!(!state.apply(12, other));
        let mut minute = update(0, 3.0);
        minute.candle.interval = CandleInterval::OneMinute;
        assert!(state.apply(13, minute));
        assert_eq!(state.series(CandleInterval::OneSecond).len(), 1);
        assert_eq!(state.series(CandleInterval::OneMinute)[0].close, 3.0);
    }

    #[test]
    fn interval_params_round_trip() {
        for interval in [CandleInterval::OneSecond, CandleInterval::OneMinute] {
            assert_eq!(parse_interval(Some(interval_param(interval))), interval);
        }
        assert_eq!(parse_interval(Some("5h")), CandleInterval::OneSecond);
    }
}
