//! The connection badge: whether the live connection is up, for the reader
//! and for screen readers (`role="status"` announces changes).

use leptos::prelude::*;

use crate::live::ConnectionStatus;

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
