//! The dashboard page: every panel server-rendered from one snapshot, then
//! kept live over one WebSocket whose events are routed to the panels and
//! applied once per animation frame.
//!
//! This module is the page (its snapshot type and server function, the
//! components); [`panels`] holds the live state and how events reach it;
//! `browser` (browser builds only) connects the page to the server, plays
//! the past when travelling in time, and tries a failed first load again.
//! With `?at=` the snapshot is the past's and no connection is made.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::chart_view::ChartView;
use crate::compose::ComposePanel;
use crate::engagement_panel::{EngagementPanel, EngagementState};
use crate::feed::FeedPanel;
use crate::live::ConnectionStatus;
use crate::presence::ActiveUsers;
use crate::price_panel::{PricePanel, SymbolData};
use crate::rpc_error::RpcError;
use crate::sentiment_panel::{SentimentPanel, SentimentSeries};
use crate::status::ConnectionBadge;
use crate::time_travel::{Player, TimeTravelBar};
use crate::watchlist::{Watchlist, WatchlistPanel};
use pulse_core::model::Presence;
use pulse_core::protocol::{FeedPost, StreamPosition};

#[cfg(feature = "browser")]
mod browser;
mod panels;

pub use panels::{decode, LiveUpdate, Panels, Routed};

/// What the page needs for its first paint, and where each topic resumes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub watchlist: Watchlist,
    pub symbol: SymbolData,
    pub sentiment: SentimentSeries,
    pub feed: Vec<FeedPost>,
    pub engagement: EngagementState,
    pub presence: Presence,
    /// Positions of the global topics (`ticks`, `posts`, …), read before the data.
    pub positions: BTreeMap<String, StreamPosition>,
}

#[server(prefix = "/rpc", endpoint = "load_dashboard", client = crate::rpc_client::RpcClient)]
pub async fn load_dashboard(
    symbol: Option<String>,
    view: Option<ChartView>,
) -> Result<DashboardData, RpcError> {
    crate::backend::backend()?
        .dashboard(symbol, view.unwrap_or_default())
        .await
}

/// The chart view the URL asks for.
pub fn view_of(query: &leptos_router::params::ParamsMap) -> ChartView {
    ChartView::from_params(
        query.get_str("interval"),
        query.get_str("range"),
        query.get_str("at"),
    )
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        || (),
        move |_| {
            let (symbol, view) = query.with_untracked(|q| (q.get("symbol"), view_of(q)));
            load_dashboard(symbol, Some(view))
        },
    );
    view! {
        <Suspense fallback=|| view! { <Topbar extra=().into_any()/><p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Dashboard data/> }.into_any(),
                    Err(error) => {
                        #[cfg(feature = "browser")]
                        browser::retry::later(data);
                        view! {
                            <Topbar extra=().into_any()/>
                            <p class="error page-error" role="alert" data-testid="load-error">
                                {format!("Could not load the dashboard: {error}. Retrying…")}
                            </p>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
fn Topbar(extra: AnyView) -> impl IntoView {
    view! {
        <header class="topbar">
            <div class="brand">
                <svg class="logo" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                    <polyline points="2,13 7,13 10,5 14,19 17,11 22,11" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>
                </svg>
                <h1>"Pulse"</h1>
                <p class="tagline">"Live markets & social sentiment"</p>
            </div>
            <div class="topbar-right">{extra}</div>
        </header>
    }
}

#[component]
fn Dashboard(data: DashboardData) -> impl IntoView {
    let query = use_query_map();
    let initial_symbol = data.symbol.price.symbol.clone();
    #[cfg(feature = "browser")]
    let positions = data.positions.clone();
    let panels = Panels::new(data);
    let status = RwSignal::new(ConnectionStatus::Connecting);
    let loading = RwSignal::new(false);

    let selected = Memo::new(move |_| {
        let wanted = query.with(|q| q.get("symbol"));
        wanted
            .filter(|s| panels.watchlist.with_untracked(|w| w.row(s).is_some()))
            .unwrap_or_else(|| initial_symbol.clone())
    });
    // In the past, the view's moment moves with the player's clock (to the
    // second), so every link made from it lands where the player is.
    let player = RwSignal::new(query.with_untracked(view_of).at.map(Player::new));
    let view = Memo::new(move |_| {
        let mut view = query.with(view_of);
        if let Some(clock) = player.with(|p| p.map(|p| p.at)) {
            view.at = Some(clock - clock.rem_euclid(1000));
        }
        view
    });
    let traveling = player.get_untracked().is_some();

    #[cfg(feature = "browser")]
    if traveling {
        browser::player::start(
            panels,
            player,
            selected.get_untracked(),
            view.get_untracked(),
        );
    } else {
        browser::wiring::start(panels, positions, status, selected, view, loading);
    }

    let header = if traveling {
        view! {
            <span class="active-users past" data-testid="active-users">"Viewers are not recorded for the past"</span>
        }
        .into_any()
    } else {
        view! { <ActiveUsers presence=panels.presence/> <ConnectionBadge status/> }.into_any()
    };
    view! {
        <Topbar extra=header/>
        <TimeTravelBar view=view.into() symbol=selected.into() player/>
        <main class="dashboard" id="main">
            <WatchlistPanel
                watchlist=panels.watchlist
                selected=selected.into()
                view=view.into()
            />
            <PricePanel price=panels.price watchlist=panels.watchlist view=view.into() loading/>
            <div class="insights">
                <SentimentPanel sentiment=panels.sentiment/>
                <EngagementPanel engagement=panels.engagement/>
            </div>
            <div class="social">
                <ComposePanel/>
                <FeedPanel feed=panels.feed/>
            </div>
        </main>
        <footer class="footer">
            <p>"Times in UTC · prices from the simulated feed · sentiment by Pulse's VADER-compatible analyzer"</p>
        </footer>
    }
}
