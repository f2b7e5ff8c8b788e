//! Pulse: a real-time analytics dashboard for markets and social media.
//!
//! - [`model`] and [`protocol`]: shared types, compiled for server and browser.
//! - [`analytics`]: market, sentiment and engagement engines (pure, no I/O).
//! - [`app`]: the Leptos application (server-rendered, hydrated in the browser).
//! - [`server`]: hub, WebSocket endpoint, ingest, simulator (feature `ssr`).

#![recursion_limit = "256"]

pub mod analytics;
pub mod app;
pub mod model;
pub mod protocol;

#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the hydrate WASM.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
