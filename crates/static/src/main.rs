//! Entry of the static bundle: finds the Pulse server (`?server=`, else
//! `config.json` beside index.html, else the page's own origin), then
//! renders the same `App` the server renders, in the browser.

#![recursion_limit = "256"]

mod config;

use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        match config::find_server().await {
            Ok(server) => {
                if let Some(base) = server {
                    pulse_app::endpoint::install(base);
                }
                leptos::mount::mount_to_body(pulse_app::App);
            }
            // A wrong config is the operator's to fix: say what is wrong
            // rather than guess a server.
            Err(error) => leptos::mount::mount_to_body(move || {
                view! {
                    <main class="not-found">
                        <h1>"Pulse"</h1>
                        <p class="error page-error" role="alert" data-testid="config-error">
                            {format!("This dashboard is not configured correctly: {error}")}
                        </p>
                    </main>
                }
            }),
        }
    });
}
