//! State shared by every handler, passed explicitly (axum `State`) and to
//! server functions through Leptos context.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::broker::Broker;
use super::config::ServerConfig;
use super::ingest::Ingest;
use super::metrics::Metrics;
use super::presence::PresenceStore;
use super::rate_limit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<ServerConfig>,
    pub broker: Arc<dyn Broker>,
    pub ingest: Arc<Ingest>,
    pub metrics: Arc<Metrics>,
    pub presence: Arc<dyn PresenceStore>,
    /// Set in multi-node mode (`--redis`).
    pub cluster: Option<Arc<super::cluster::Cluster>>,
    /// Subscribed per-symbol topics of symbols without data yet.
    pub pending_topics: Arc<super::pending_topics::PendingTopics>,
    pub rate_limiter: Arc<RateLimiter>,
    /// Slots of the exports running now (`GET /api/export`).
    pub exports: Arc<super::export::ExportSlots>,
    /// The server functions' rate limits.
    pub rpc: Arc<RpcState>,
    /// Becomes `true` when the server shuts down; connections close on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Bumped by the test hook to drop every WebSocket connection.
    pub drop_connections: Arc<tokio::sync::watch::Sender<u64>>,
}

impl AppState {
    /// Active users: across the cluster in multi-node mode, else here.
    pub fn active_users(&self) -> pulse_core::model::Presence {
        self.ingest
            .cluster_presence()
            .filter(|_| self.cluster.is_some())
            .unwrap_or_else(|| self.presence.current())
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// What the server functions' admission ([`super::rpc_admission`]) keeps:
/// its limiters (the sessions' reactions are ingest's, see
/// [`super::ingest::Ingest::reactions`]).
pub struct RpcState {
    pub writes: RateLimiter,
    pub reads: RateLimiter,
}

impl RpcState {
    pub fn new(write_rate: f64, read_rate: f64) -> Self {
        Self {
            writes: RateLimiter::new(write_rate),
            reads: RateLimiter::new(read_rate),
        }
    }
}
