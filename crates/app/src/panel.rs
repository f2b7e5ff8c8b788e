//! The heading every dashboard panel starts with.

use leptos::prelude::*;

/// `<h2 id=…>` (the panel's `aria-labelledby` points at it) and an optional hint.
#[component]
pub fn PanelHead(
    id: &'static str,
    title: &'static str,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    view! {
        <div class="panel-head">
            <h2 id=id>{title}</h2>
            {hint.map(|hint| view! { <span class="hint">{hint}</span> })}
        </div>
    }
}
