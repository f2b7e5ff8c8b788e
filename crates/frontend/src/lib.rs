//! The browser half of Pulse: hydrates the server-rendered dashboard.

#![recursion_limit = "256"]

/// Entry point of the hydrate WASM.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(pulse_app::App);
}
