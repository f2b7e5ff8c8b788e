//! Active users: distinct dashboard sessions, live from the `presence` topic.

use leptos::prelude::*;

use crate::live::ConnectionStatus;
use pulse_core::model::Presence;

#[component]
pub fn ActiveUsers(presence: RwSignal<Presence>) -> impl IntoView {
    let sessions = move || presence.with(|p| p.sessions);
    view! {
        <div class="active-users" data-testid="active-users" title="Dashboards open now">
            <span class="au-dot" aria-hidden="true"></span>
            <span class="au-count" data-testid="active-users-count">{sessions}</span>
            <span class="au-label">{move || if sessions() == 1 { " viewer" } else { " viewers" }}</span>
        </div>
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
