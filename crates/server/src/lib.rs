//! The server: wires the broker, ingest, simulator and HTTP/WebSocket routes.

pub mod api;
pub mod auth;
pub mod backend;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod cors;
pub mod csrf;
pub mod deadline;
pub mod errors;
pub mod export;
pub mod fanout;
pub mod guard;
pub mod history;
pub mod ingest;
pub mod listener;
pub mod maintenance;
pub mod metrics;
pub mod outbox;
pub mod past;
pub mod pending_topics;
pub mod presence;
pub mod rate_limit;
pub mod reactions;
pub mod replay;
pub mod routes;
pub mod rpc_admission;
pub mod simulator;
pub mod state;
pub mod storage;
pub mod sync;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use leptos::config::LeptosOptions;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use broker::memory::MemoryBroker;
use broker::Broker;
use clock::epoch_seed;
use config::ServerConfig;
use ingest::Ingest;
use metrics::Metrics;
use simulator::SimulatorError;
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
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
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
        if let Some(cluster) = self.state.cluster.clone() {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
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
    let cluster = match config.cluster() {
        Some(cluster_config) => Some(
            tokio::task::spawn_blocking(move || {
                cluster::Cluster::connect(cluster_config, Duration::from_secs(30))
            })
            .await
            .map_err(|error| ServerError::Serve(std::io::Error::other(error)))??,
        ),
        None => None,
    };
    // In a cluster every topic's epoch derives from the data set's.
    let seed = cluster
        .as_ref()
        .map_or_else(epoch_seed, |c| c.epoch().to_string());
    let broker: Arc<dyn Broker> = MemoryBroker::new(config.broker(), seed);
    let (storage, restored) = match config.storage() {
        Some(storage_config) => {
            let log = cluster.as_ref().map(cluster::Cluster::commit_log);
            let (storage, restored) =
                storage::Storage::open(&storage_config, Arc::clone(&broker), log)?;
            tracing::info!(path = %storage.path().display(), "storage open");
            (Some(storage), restored)
        }
        None if cluster.is_some() => return Err(cluster::ClusterError::NeedsStorage.into()),
        None => (None, storage::Restored::default()),
    };
    let fresh = restored.is_empty() && cluster.is_none();
    let archive = restored.log.clone();
    let has_data = !restored.is_empty();
    let ingest = Arc::new(Ingest::with_limits(
        Arc::clone(&broker),
        storage,
        config.ingest_limits(),
    ));
    ingest.restore(restored);
    if let Some(cluster) = &cluster {
        cluster.reconcile_archive(&ingest, archive, has_data);
    }
    let presence_store = Arc::new(presence::memory::MemoryPresence::new(
        config.max_sessions_per_ip,
    ));
    let symbol_idle = config.symbol_idle();
    let max_pending_topics = config.max_pending_topics;
    let sweep_every = Duration::from_secs(config.prune_every_secs.clamp(1, 60));
    let state = AppState {
        leptos_options: leptos_options(&config, addr),
        rate_limiter: Arc::new(rate_limit::RateLimiter::new(config.ingest_rate)),
        exports: Arc::default(),
        rpc: Arc::new(state::RpcState::new(
            config.rpc_write_rate,
            config.rpc_read_rate,
        )),
        config: Arc::new(config),
        broker: Arc::clone(&broker),
        ingest,
        metrics: Arc::new(Metrics::default()),
        presence: Arc::clone(&presence_store) as Arc<dyn presence::PresenceStore>,
        cluster: cluster.clone(),
        pending_topics: Arc::new(pending_topics::PendingTopics::new(max_pending_topics)),
        shutdown: stopped.clone(),
        drop_connections: Arc::new(watch::channel(0).0),
    };

    let mut background = Vec::new();
    match &cluster {
        // Counted across nodes and committed to the log by the leader.
        Some(cluster) => {
            let (ingest_rate, rpc) = (Arc::clone(&state.rate_limiter), Arc::clone(&state.rpc));
            let share_limits = Box::new(move |nodes: u32| {
                ingest_rate.share_among(nodes);
                rpc.writes.share_among(nodes);
                rpc.reads.share_among(nodes);
            });
            cluster.start(Arc::clone(&state.ingest), presence_store, share_limits)?
        }
        None => background.push(tokio::spawn(presence::run_publisher(
            Arc::clone(&state.presence),
            broker,
            Duration::from_secs(1),
        ))),
    }
    background.push(tokio::spawn(maintenance::close_candles_on_time(
        Arc::clone(&state.ingest),
    )));
    background.push(tokio::spawn(maintenance::forget_idle_symbols(
        Arc::clone(&state.ingest),
        symbol_idle,
        sweep_every,
    )));
    if let Some(sim) = simulator {
        background.push(simulator::driver::start(sim, Arc::clone(&state.ingest), fresh).await);
    }

    let app = routes::router(state.clone());
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
