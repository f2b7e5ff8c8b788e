//! The dashboard page: server-rendered with current data, then kept live.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::charts::{price_chart_svg, PRICE_CHART_SIZE};
use crate::app::live::ConnectionStatus;
#[cfg(feature = "hydrate")]
use crate::app::live::LiveEvent;
use crate::model::Tick;
use crate::protocol::StreamPosition;

/// Ticks the browser keeps for the price chart; older ones scroll out.
pub const CHART_WINDOW: usize = 600;

/// What the page needs for its first paint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub symbols: Vec<String>,
    pub selected: Option<String>,
    pub ticks: Vec<Tick>,
    /// Position of `ticks:<selected>` the ticks reach; the live feed resumes after it.
    pub position: Option<StreamPosition>,
}

#[server(prefix = "/rpc")]
pub async fn load_dashboard(symbol: Option<String>) -> Result<DashboardData, ServerFnError> {
    use crate::server::state::AppState;
    let state =
        use_context::<AppState>().ok_or_else(|| ServerFnError::new("server state is missing"))?;
    let symbols = state.ingest.symbols();
    let selected = symbol
        .filter(|s| symbols.contains(s))
        .or_else(|| symbols.first().cloned());
    let (ticks, position) = selected
        .as_deref()
        .map(|s| state.ingest.recent_ticks(s))
        .unwrap_or_default();
    Ok(DashboardData {
        symbols,
        selected,
        ticks,
        position,
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_dashboard(None));
    view! {
        <header class="topbar">
            <h1>"Pulse"</h1>
            <p class="tagline">"Live markets & social sentiment"</p>
        </header>
        <main class="dashboard">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(data) => view! { <LivePriceChart data/> }.into_any(),
                        Err(error) => view! {
                            <p class="error" role="alert">{format!("Could not load the dashboard: {error}")}</p>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

/// Appends live ticks to the chart's window, dropping the oldest.
pub fn push_ticks(window: &mut Vec<Tick>, incoming: impl IntoIterator<Item = Tick>, cap: usize) {
    window.extend(incoming);
    if window.len() > cap {
        let excess = window.len() - cap;
        window.drain(..excess);
    }
}

#[component]
fn LivePriceChart(data: DashboardData) -> impl IntoView {
    let symbol = data.selected.clone().unwrap_or_default();
    let ticks = RwSignal::new(data.ticks);
    let status = RwSignal::new(ConnectionStatus::Connecting);
    let title = format!("{symbol} price");
    let svg = Memo::new(move |_| ticks.with(|t| price_chart_svg(&title, t, PRICE_CHART_SIZE)));
    let last_price = move || {
        ticks.with(|t| {
            t.last()
                .map_or_else(|| "—".to_owned(), |t| format!("{:.2}", t.price))
        })
    };

    #[cfg(feature = "hydrate")]
    if !symbol.is_empty() {
        use crate::app::live::{connect, FrameCoalescer, Subscription};
        use crate::protocol::Topic;
        let coalescer = FrameCoalescer::new(move |batch: Vec<Tick>| {
            ticks.update(|window| push_ticks(window, batch, CHART_WINDOW));
        });
        let topic = Topic::SymbolTicks(symbol.clone()).to_string();
        let subscription = Subscription {
            topic,
            since: data.position.clone(),
        };
        connect(vec![subscription], status, move |event| match event {
            LiveEvent::Event(frame) => match serde_json::from_value::<Tick>(frame.data) {
                Ok(tick) => coalescer.push(tick),
                Err(error) => leptos::logging::warn!("unexpected tick payload: {error}"),
            },
            // History could not be recovered: start the chart over from live data.
            LiveEvent::Reset { .. } => ticks.set(Vec::new()),
        });
    }

    view! {
        <section class="panel price-panel" aria-labelledby="price-heading">
            <div class="panel-head">
                <h2 id="price-heading">
                    <span class="symbol">{symbol.clone()}</span>
                    " "
                    <span class="last-price" aria-live="off">{last_price}</span>
                </h2>
                <ConnectionBadge status/>
            </div>
            <div class="chart" data-testid="price-chart" inner_html=move || svg.get()></div>
        </section>
    }
}

#[component]
pub fn ConnectionBadge(status: RwSignal<ConnectionStatus>) -> impl IntoView {
    view! {
        <span
            class=move || format!("status status-{}", status.get().as_str())
            data-testid="connection-status"
            role="status"
        >
            {move || status.get().label()}
        </span>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(ts: i64) -> Tick {
        Tick {
            symbol: "A".into(),
            price: 1.0,
            volume: 1.0,
            ts,
        }
    }

    #[test]
    fn chart_window_keeps_the_newest_ticks() {
        let mut window: Vec<Tick> = (0..5).map(tick).collect();
        push_ticks(&mut window, (5..8).map(tick), 6);
        let kept: Vec<i64> = window.iter().map(|t| t.ts).collect();
        assert_eq!(kept, [2, 3, 4, 5, 6, 7]);
        push_ticks(&mut window, (8..20).map(tick), 6);
        assert_eq!(window.first().map(|t| t.ts), Some(14));
        assert_eq!(window.len(), 6);
    }
}
