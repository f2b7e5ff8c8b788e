//! The server: wires the hub, ingest, simulator and HTTP/WebSocket routes.

pub mod api;
pub mod auth;
pub mod backend;
pub mod clock;
pub mod config;
pub mod csrf;
pub mod deadline;
pub mod errors;
pub mod guard;
pub mod history;
pub mod hub;
pub mod ingest;
pub mod listener;
pub mod metrics;
pub mod outbox;
pub mod pending_topics;
pub mod presence;
pub mod rate_limit;
pub mod reactions;
pub mod replay;
pub mod rpc_admission;
pub mod simulator;
pub mod social_sim;
pub mod state;
pub mod storage;
pub mod sync;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::compression::CompressionLayer;

use pulse_app::{shell, App};
use config::ServerConfig;
use hub::Hub;
use clock::{epoch_seed, now_ms};
use ingest::Ingest;
use metrics::Metrics;
use simulator::{SimulatorConfig, SimulatorError, TickGenerator};
use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Simulator(#[from] SimulatorError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Guard(#[from] guard::GuardError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Leptos settings: cargo-leptos passes them as `LEPTOS_*` variables; a
/// plain `cargo run` or a test gets the same defaults as Cargo.toml.
fn leptos_options(config: &ServerConfig, addr: SocketAddr) -> LeptosOptions {
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let site_root = config
        .site_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(env("LEPTOS_SITE_ROOT", "target/site")));
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "pulse"))
        .site_root(site_root.to_string_lossy().into_owned())
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(addr)
        .reload_port(
            env("LEPTOS_RELOAD_PORT", "3001")
                .parse::<u32>()
                .unwrap_or(3001),
        )
        .env(
            match env("LEPTOS_ENV", "PROD").to_ascii_uppercase().as_str() {
                "DEV" | "DEVELOPMENT" => leptos::config::Env::DEV,
                _ => leptos::config::Env::PROD,
            },
        )
        .build()
}

/// A started server; dropping it does not stop it, call [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    serve: JoinHandle<Result<(), std::io::Error>>,
    background: Vec<JoinHandle<()>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes WebSockets (1001), waits for requests in
    /// flight, then flushes storage.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stop.send(true);
        for task in &self.background {
            task.abort();
        }
        let served = match tokio::time::timeout(Duration::from_secs(10), self.serve).await {
            Ok(Ok(result)) => result.map_err(ServerError::from),
            Ok(Err(join_error)) => Err(ServerError::Serve(std::io::Error::other(join_error))),
            Err(_) => {
                tracing::warn!("connections did not close within 10 s; exiting anyway");
                Ok(())
            }
        };
        if let Some(storage) = self.state.ingest.storage() {
            storage.shutdown().await?;
        }
        served
    }
}

/// Binds, starts the simulator (if enabled) and serves until shut down.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    config.validate()?;
    let simulator = config.simulator();
    guard::HostAllowlist::parse_public(&config.public_host)?;
    let wanted = config
        .addr
        .or_else(|| std::env::var("LEPTOS_SITE_ADDR").ok()?.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|source| ServerError::Bind {
            addr: wanted,
            source,
        })?;
    let addr = listener.local_addr()?;

    let (stop, stopped) = watch::channel(false);
    let hub = Hub::new(config.hub(), epoch_seed());
    let (storage, restored) = match config.storage() {
        Some(storage_config) => {
            let (storage, restored) = storage::Storage::open(&storage_config, Arc::clone(&hub))?;
            tracing::info!(path = %storage.path().display(), "storage open");
            (Some(storage), restored)
        }
        None => (None, storage::Restored::default()),
    };
    let fresh = restored.is_empty();
    let ingest = Arc::new(Ingest::with_limits(
        Arc::clone(&hub),
        storage,
        config.ingest_limits(),
    ));
    ingest.restore(restored);
    let symbol_idle = config.symbol_idle();
    let max_sessions_per_ip = config.max_sessions_per_ip;
    let max_pending_topics = config.max_pending_topics;
    let sweep_every = Duration::from_secs(config.prune_every_secs.clamp(1, 60));
    let state = AppState {
        leptos_options: leptos_options(&config, addr),
        rate_limiter: Arc::new(rate_limit::RateLimiter::new(config.ingest_rate)),
        rpc: Arc::new(state::RpcState::new(
            config.rpc_write_rate,
            config.rpc_read_rate,
        )),
        config: Arc::new(config),
        hub: Arc::clone(&hub),
        ingest,
        metrics: Arc::new(Metrics::default()),
        presence: Arc::new(presence::PresenceTracker::new(max_sessions_per_ip)),
        pending_topics: Arc::new(pending_topics::PendingTopics::new(max_pending_topics)),
        shutdown: stopped.clone(),
        drop_connections: Arc::new(watch::channel(0).0),
    };

    let mut background = vec![tokio::spawn(presence::run_publisher(
        Arc::clone(&state.presence),
        hub,
        Duration::from_secs(1),
    ))];
    background.push(tokio::spawn(close_candles_on_time(Arc::clone(
        &state.ingest,
    ))));
    background.push(tokio::spawn(forget_idle_symbols(
        Arc::clone(&state.ingest),
        symbol_idle,
        sweep_every,
    )));
    if let Some(sim) = simulator {
        let mut feed = SimulatedFeed::new(&sim);
        // A database that already holds data keeps its history, and prices
        // go on from where they were.
        if fresh {
            backfill(&sim, &mut feed, &state.ingest).await;
        } else {
            let last: Vec<(String, f64)> = state
                .ingest
                .summaries()
                .into_iter()
                .map(|s| (s.symbol, s.last))
                .collect();
            feed.ticks.resume_from(&last);
        }
        background.push(tokio::spawn(run_simulator(
            sim,
            feed,
            Arc::clone(&state.ingest),
        )));
    }

    let app = router(state.clone());
    // Caps, timeouts, TCP_NODELAY and keepalive live in the accept loop.
    let serve = tokio::spawn(listener::serve(
        listener,
        app,
        listener::EdgeLimits::from_config(&state.config),
        Arc::clone(&state.metrics),
        stopped,
    ));
    Ok(RunningServer {
        addr,
        state,
        stop,
        serve,
        background,
    })
}

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
    let mut router = Router::new();
    if state.config.test_hooks {
        router = router.route("/api/debug/drop-connections", post(drop_connections));
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
        .route(
            "/rpc/{*fn_name}",
            get(server_fn_handler).post(server_fn_handler),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(backend::ServerBackend::new(context_state.clone())),
            move || shell(shell_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Pages, JSON and the WASM go out gzipped to clients that accept it;
        // WebSocket upgrades pass through untouched (a 101 has no body).
        .layer(CompressionLayer::new().gzip(true))
        // Server functions are admitted like ingest (rate, posting policy,
        // session); cross-site POSTs are refused before anything else.
        .layer(from_fn_with_state(state.clone(), rpc_admission::admit))
        .layer(from_fn_with_state(state.clone(), csrf::refuse_cross_site))
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
        move || provide_context(backend::ServerBackend::new(state.clone())),
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
    axum::Json(serde_json::json!({"status": "ready"})).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let config = &state.config;
    let mut text = state.metrics.render(&state.hub.report());
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
                state.hub.topic_count() as u64,
            ),
            (
                "pulse_pending_topics",
                "Subscribed per-symbol topics of symbols without data (bounded by --max-pending-topics).",
                state.pending_topics.len() as u64,
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
        ],
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Closes candles of quiet symbols when their interval ends.
async fn close_candles_on_time(ingest: Arc<Ingest>) {
    let mut timer = tokio::time::interval(Duration::from_millis(250));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if let Err(error) = ingest.close_due_candles(now_ms()).await {
            tracing::warn!(%error, "closing due candles failed");
        }
    }
}

/// Drops symbols that had no tick for `idle` and nobody watches, so the
/// tracked set only holds what is in use (see `--max-symbols`).
async fn forget_idle_symbols(ingest: Arc<Ingest>, idle: Duration, every: Duration) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let dropped = ingest.forget_idle_symbols(now_ms().saturating_sub(idle_ms));
        if !dropped.is_empty() {
            tracing::info!(count = dropped.len(), "idle symbols no longer tracked");
        }
    }
}

/// Generates the simulator's past so the dashboard is full on first paint.
async fn backfill(config: &SimulatorConfig, feed: &mut SimulatedFeed, ingest: &Ingest) {
    let now = now_ms();
    let max_ticks = ingest::RECENT_TICKS_PER_SYMBOL * config.symbols.len();
    for ts in config.backfill_times(now, max_ticks) {
        if let Err(error) = ingest.tick(feed.ticks.next_tick(ts), now).await {
            tracing::warn!(%error, "backfilled tick rejected");
        }
    }
    // A screenful of earlier posts, spread over the backfill window, some with engagement.
    let backfill_ms = (config.backfill_secs * 1000) as i64;
    let posts = ((config.backfill_secs as f64 * config.post_rate) as i64).min(40);
    for i in 0..posts {
        let ts = now - backfill_ms + backfill_ms * i / posts.max(1);
        feed.post(ingest, ts).await;
        for _ in 0..(config.engagement_rate / config.post_rate.max(0.01)).min(10.0) as usize {
            feed.engage(ingest, ts).await;
        }
    }
}

/// The simulator's generators.
struct SimulatedFeed {
    ticks: TickGenerator,
    social: social_sim::SocialGenerator,
}

impl SimulatedFeed {
    fn new(config: &SimulatorConfig) -> Self {
        Self {
            ticks: TickGenerator::new(config),
            social: social_sim::SocialGenerator::new(config.seed, config.symbols.clone()),
        }
    }

    async fn post(&mut self, ingest: &Ingest, ts: i64) {
        let post = self.social.next_post(ts);
        if let Err(error) = ingest.posts(vec![post], now_ms()).await {
            tracing::warn!(%error, "simulated post rejected");
        }
    }

    async fn engage(&mut self, ingest: &Ingest, ts: i64) {
        let recent = ingest.recent_post_ids(30);
        if let Some(event) = self.social.next_engagement(&recent, ts) {
            if let Err(error) = ingest.engagements(vec![event], now_ms()).await {
                tracing::warn!(%error, "simulated engagement rejected");
            }
        }
    }
}

/// Feeds simulated data at the configured rates until aborted.
async fn run_simulator(config: SimulatorConfig, mut feed: SimulatedFeed, ingest: Arc<Ingest>) {
    // Wake at most every 10 ms and catch up on however many items are due, so
    // high rates do not depend on timer resolution.
    let period = config.tick_interval().max(Duration::from_millis(10));
    let mut timer = tokio::time::interval(period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let (mut ticks, mut posts, mut engagements) = (0u64, 0u64, 0u64);
    loop {
        timer.tick().await;
        let elapsed = started.elapsed().as_secs_f64();
        let due = |rate: f64| (elapsed * rate) as u64;
        while ticks < due(config.tick_rate) {
            ticks += 1;
            let now = now_ms();
            if let Err(error) = ingest.tick(feed.ticks.next_tick(now), now).await {
                tracing::warn!(%error, "simulated tick rejected");
            }
        }
        while posts < due(config.post_rate) {
            posts += 1;
            feed.post(&ingest, now_ms()).await;
        }
        while engagements < due(config.engagement_rate) {
            engagements += 1;
            feed.engage(&ingest, now_ms()).await;
        }
    }
}
