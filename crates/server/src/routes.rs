//! The HTTP surface: one router built from small handlers, with the
//! cross-cutting rules (Host, CORS, CSRF, admission, compression) as layers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use pulse_app::{shell, App};
use tower_http::compression::CompressionLayer;

use crate::state::AppState;
use crate::{api, backend, cors, csrf, export, guard, metrics, rpc_admission, ws};

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let shell_options = state.leptos_options.clone();
    // start() refuses bad entries; a router built directly skips them.
    let public_hosts = state
        .config
        .public_host
        .iter()
        .filter_map(|entry| entry.parse().ok())
        .collect();
    let edge_guard = Arc::new(guard::Guard {
        hosts: guard::HostAllowlist::new(state.leptos_options.site_addr, public_hosts),
        metrics: Arc::clone(&state.metrics),
    });
    // Rendering a page reads what the read server functions read, so it
    // shares their rate (route_layer: only the pages' own routes).
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(backend::ServerBackend::shared(context_state.clone())),
            move || shell(shell_options.clone()),
        )
        .route_layer(from_fn_with_state(state.clone(), api::admit_page));
    let mut router = Router::new();
    if state.config.test_hooks {
        router = router
            .route("/api/debug/drop-connections", post(drop_connections))
            .route("/api/debug/forget-idle-symbols", post(forget_idle_symbols));
    }
    router
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/ticks", post(api::post_ticks))
        .route("/api/posts", post(api::post_posts).get(api::get_posts))
        .route("/api/engagement", post(api::post_engagement))
        .route("/api/sentiment", post(api::post_sentiment))
        .route("/api/snapshot", get(api::get_snapshot))
        .route("/api/candles/{symbol}", get(api::get_candles))
        .route("/api/export", get(export::get_export))
        .route(
            "/rpc/{*fn_name}",
            get(server_fn_handler).post(server_fn_handler),
        )
        .merge(pages)
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Pages, JSON and the WASM go out gzipped to clients that accept it;
        // WebSocket upgrades pass through untouched (a 101 has no body).
        .layer(CompressionLayer::new().gzip(true))
        // Server functions are admitted like ingest (rate, posting policy,
        // session); cross-site POSTs are refused before anything else.
        .layer(from_fn_with_state(state.clone(), rpc_admission::admit))
        .layer(from_fn_with_state(state.clone(), csrf::refuse_cross_site))
        // Pages of --allowed-origins (the static dashboard) may read the
        // API and the server functions; outside CSRF and admission so their
        // refusals are readable too, and preflights never reach them.
        .layer(from_fn_with_state(
            Arc::new(cors::CorsPolicy::new(&state.config.allowed_origins)),
            cors::cors,
        ))
        // Outermost: foreign Hosts get 421 before any handler runs, and
        // every response gets the security headers.
        .layer(axum::middleware::from_fn_with_state(
            edge_guard,
            guard::guard,
        ))
        .with_state(state)
}

async fn server_fn_handler(
    State(state): State<AppState>,
    request: Request<Body>,
) -> impl IntoResponse {
    leptos_axum::handle_server_fns_with_context(
        move || provide_context(backend::ServerBackend::shared(state.clone())),
        request,
    )
    .await
}

/// Test hook: closes every WebSocket (1012), as a server restart would.
async fn drop_connections(State(state): State<AppState>) -> impl IntoResponse {
    state
        .drop_connections
        .send_modify(|generation| *generation += 1);
    axum::Json(serde_json::json!({"dropped": true}))
}

/// Test hook: runs the idle-symbol sweep as if every symbol had been idle
/// for `--retain-days` (the sweep itself waits at least a day).
async fn forget_idle_symbols(State(state): State<AppState>) -> impl IntoResponse {
    let forgotten = state
        .ingest
        .forget_idle_symbols(crate::clock::now_ms().saturating_add(1));
    axum::Json(serde_json::json!({ "forgotten": forgotten }))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |status: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": status})),
        )
            .into_response()
    };
    if *state.shutdown.borrow() {
        return not_ready("shutting_down");
    }
    if state.ingest.storage().is_some_and(|s| !s.is_healthy()) {
        return not_ready("storage_failed");
    }
    if let Some(cluster) = &state.cluster {
        if let Err(reason) = cluster.readiness() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "cluster_unavailable", "reason": reason})),
            )
                .into_response();
        }
    }
    axum::Json(serde_json::json!({"status": "ready"})).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let config = &state.config;
    let mut text = state.metrics.render(&state.broker.report());
    if let Some(cluster) = &state.cluster {
        text.push_str(&cluster.render_metrics());
    }
    text.push_str(&metrics::render_limits(
        &[
            (
                "pulse_symbols_tracked",
                "Symbols the node tracks (bounded by --max-symbols).",
                state.ingest.symbol_count() as u64,
            ),
            (
                "pulse_topics",
                "Hub topics that exist now.",
                state.broker.topic_count() as u64,
            ),
            (
                "pulse_pending_topics",
                "Subscribed per-symbol topics of symbols without data (bounded by --max-pending-topics).",
                state.pending_topics.len() as u64,
            ),
            (
                "pulse_exports_running",
                "Exports streaming now (bounded by max_exports).",
                state.exports.running() as u64,
            ),
        ],
        &[
            ("max_symbols", config.max_symbols as f64),
            ("max_future_skew_ms", config.max_future_skew_ms as f64),
            ("max_subscriptions", config.max_subscriptions as f64),
            ("max_pending_topics", config.max_pending_topics as f64),
            ("publish_rate", config.publish_rate),
            ("analyze_rate", config.analyze_rate),
            ("max_sessions_per_ip", f64::from(config.max_sessions_per_ip)),
            ("symbol_history", config.symbol_history as f64),
            ("history", config.history as f64),
            ("max_queued_frames", config.max_queued_frames as f64),
            ("max_queued_bytes", config.max_queued_bytes as f64),
            ("max_body_bytes", config.max_body_bytes as f64),
            ("ingest_rate", config.ingest_rate),
            ("max_exports", state.exports.max() as f64),
        ],
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
