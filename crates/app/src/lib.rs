//! Pulse's dashboard: Leptos components rendered on the server and hydrated
//! in the browser (or rendered in the browser alone: the static bundle),
//! and the server functions they call. It reaches the server
//! only through [`backend::Backend`] (feature `ssr`), which the server crate
//! implements; it depends on `pulse-core` and nothing server-side.

#![recursion_limit = "256"]

#[cfg(feature = "ssr")]
pub mod backend;
pub mod chart_view;
pub mod charts;
pub mod compose;
pub mod dashboard;
pub mod endpoint;
pub mod engagement_panel;
pub mod feed;
pub mod format;
pub mod live;
pub mod panel;
pub mod presence;
pub mod price_panel;
pub mod rpc_client;
pub mod rpc_error;
pub mod sentiment_panel;
pub mod status;
pub mod time_travel;
pub mod watchlist;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Meta, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::StaticSegment;

use dashboard::DashboardPage;

/// The HTML document around the app (server only renders this).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // In the document, not in <App/>: the static bundle's
                // index.html links its own (hashed) copy.
                <link id="leptos" rel="stylesheet" href="/pkg/pulse.css"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Pulse — live market & social analytics"/>
        <Meta name="description" content="Real-time analytics dashboard for markets and social media"/>
        <Router>
            <Routes fallback=|| view! {
                <main class="not-found">
                    <h1>"Page not found"</h1>
                    <p><a href="/">"Back to the dashboard"</a></p>
                </main>
            }>
                <Route path=StaticSegment("") view=DashboardPage/>
            </Routes>
        </Router>
    }
}
