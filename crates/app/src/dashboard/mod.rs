//! The dashboard page: every panel server-rendered from one snapshot, then
//! kept live over one WebSocket whose events are routed to the panels and
//! applied once per animation frame.
//!
//! This module is the page (its snapshot type and server function, the
//! components); [`panels`] holds the live state and how events reach it;
//! `wiring` (browser builds only) connects the page to the server in the
//! browser; `retry` (browser builds only) tries a failed first load again.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::compose::ComposePanel;
use crate::engagement_panel::{EngagementPanel, EngagementState};
use crate::feed::FeedPanel;
use crate::live::ConnectionStatus;
use crate::presence::ActiveUsers;
use crate::price_panel::{interval_param, parse_interval, PricePanel, SymbolData};
use crate::rpc_error::RpcError;
use crate::sentiment_panel::{SentimentPanel, SentimentSeries};
use crate::status::ConnectionBadge;
use crate::watchlist::{Watchlist, WatchlistPanel};
use pulse_core::model::Presence;
use pulse_core::protocol::{FeedPost, StreamPosition};

mod panels;
/// A failed first load tried again (the static bundle's server may be down).
#[cfg(feature = "browser")]
mod retry;
/// The browser side; the server renders the page once and has nothing to wire.
#[cfg(feature = "browser")]
mod wiring;

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
pub async fn load_dashboard(symbol: Option<String>) -> Result<DashboardData, RpcError> {
    crate::backend::backend()?.dashboard(symbol).await
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        || (),
        move |_| load_dashboard(query.with_untracked(|q| q.get("symbol"))),
    );
    view! {
        <Suspense fallback=|| view! { <Topbar extra=().into_any()/><p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Dashboard data/> }.into_any(),
                    Err(error) => {
                        #[cfg(feature = "browser")]
                        retry::later(data);
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
    let interval = Memo::new(move |_| query.with(|q| parse_interval(q.get("interval").as_deref())));

    #[cfg(feature = "browser")]
    wiring::start(panels, positions, status, selected, loading);

    view! {
        <Topbar extra=view! { <ActiveUsers presence=panels.presence/> <ConnectionBadge status/> }.into_any()/>
        <main class="dashboard" id="main">
            <WatchlistPanel
                watchlist=panels.watchlist
                selected=selected.into()
                interval=Signal::derive(move || interval_param(interval.get()))
            />
            <PricePanel price=panels.price watchlist=panels.watchlist interval=interval.into() loading/>
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
