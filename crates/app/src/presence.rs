//! Active users: distinct dashboard sessions, live from the `presence` topic.

use leptos::prelude::*;

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
