//! Command line and environment configuration (`pulse --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::broker::BrokerConfig;
use super::simulator::SimulatorConfig;
use super::storage::{Retention, StorageConfig};

/// On/off environment variables accept 1/0, true/false, yes/no, on/off.
fn boolish() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

#[derive(Debug, Parser)]
#[command(
    name = "pulse",
    version,
    about = "Real-time analytics dashboard for markets and social media"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerConfig,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Send a CSV or NDJSON file of ticks, posts or engagement to a running server.
    Replay(super::replay::ReplayArgs),
}

/// Everything the server needs; every flag also reads an environment variable.
#[derive(Clone, Debug, Args)]
pub struct ServerConfig {
    /// Address to listen on. Defaults to LEPTOS_SITE_ADDR (set by cargo-leptos) or 127.0.0.1:3000.
    #[arg(long, env = "PULSE_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Directory with the compiled site (WASM, JS, CSS). Defaults to LEPTOS_SITE_ROOT or target/site.
    #[arg(long, env = "PULSE_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// Token producers must present (Authorization: Bearer) to publish; unset = open ingest.
    #[arg(long, env = "PULSE_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,

    /// Extra origins allowed to open WebSockets (comma separated); same-origin is always allowed.
    #[arg(long, env = "PULSE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// SQLite database file; created and migrated on first start.
    #[arg(long, env = "PULSE_DB", default_value = "pulse.db")]
    pub db: PathBuf,

    /// Keep everything in memory only (nothing survives a restart).
    #[arg(long, env = "PULSE_IN_MEMORY", action = clap::ArgAction::SetTrue, value_parser = boolish())]
    pub in_memory: bool,

    /// Redis shared by several Pulse nodes (e.g. redis://127.0.0.1:6379/0);
    /// unset = a single node. Run Redis with `appendonly yes`,
    /// `appendfsync always` and `maxmemory-policy noeviction`.
    #[arg(long, env = "PULSE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// This node's name in the cluster (letters, digits, `.`, `_`, `-`);
    /// default: host name and process id.
    #[arg(long, env = "PULSE_NODE_ID")]
    pub node_id: Option<String>,

    /// Commit groups the cluster's log keeps in Redis; a node away longer
    /// than that cannot recover the topics it missed.
    #[arg(long, env = "PULSE_LOG_LEN", default_value_t = 20_000)]
    pub log_len: u64,

    /// Durability of a commit: `full` survives power loss, `normal` a process crash.
    #[arg(long, env = "PULSE_SYNC", default_value = "full", value_parser = ["full", "normal"])]
    pub sync: String,

    /// Largest size of the database file in MiB (0 = no limit); beyond it
    /// ingest answers 503, as on a full disk.
    #[arg(long, env = "PULSE_DB_MAX_MIB", default_value_t = 0)]
    pub db_max_mib: u64,

    /// Minutes of raw ticks kept in the database.
    #[arg(long, env = "PULSE_RETAIN_TICKS_MIN", default_value_t = 60)]
    pub retain_ticks_min: u64,

    /// Minutes of 1-second candles kept in the database.
    #[arg(long, env = "PULSE_RETAIN_CANDLES_1S_MIN", default_value_t = 120)]
    pub retain_candles_1s_min: u64,

    /// Days of 1-minute candles and engagement events kept in the database.
    #[arg(long, env = "PULSE_RETAIN_DAYS", default_value_t = 30)]
    pub retain_days: u64,

    /// Seconds between pruning rounds.
    #[arg(long, env = "PULSE_PRUNE_EVERY_SECS", default_value_t = 30)]
    pub prune_every_secs: u64,

    /// Largest accepted ingest request body, in bytes (larger ones get 413).
    #[arg(long, env = "PULSE_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Ingest requests per second allowed per client address (0 = unlimited); bursts of twice that.
    #[arg(long, env = "PULSE_INGEST_RATE", default_value_t = 200.0)]
    pub ingest_rate: f64,

    /// Events kept per topic for reconnecting clients.
    #[arg(long, env = "PULSE_HISTORY", default_value_t = 10_000)]
    pub history: usize,

    /// Longest time (ms) an event waits to be batched with others under load.
    #[arg(long, env = "PULSE_BATCH_WINDOW_MS", default_value_t = 5)]
    pub batch_window_ms: u64,

    /// Frames queued per connection before a slow consumer is conflated or closed.
    #[arg(long, env = "PULSE_MAX_QUEUED_FRAMES", default_value_t = 1_024)]
    pub max_queued_frames: usize,

    /// Bytes queued per connection before a slow consumer is conflated or closed.
    #[arg(long, env = "PULSE_MAX_QUEUED_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_queued_bytes: usize,

    /// Seconds between heartbeat pings; a peer silent for two intervals is dropped.
    #[arg(long, env = "PULSE_HEARTBEAT_SECS", default_value_t = 20)]
    pub heartbeat_secs: u64,

    /// Enables `POST /api/debug/drop-connections` (closes every WebSocket with
    /// 1012, keeping history) for end-to-end reconnect tests, and
    /// `POST /api/debug/forget-idle-symbols` (the idle sweep, as if a day had
    /// passed). Never in production.
    #[arg(long, env = "PULSE_TEST_HOOKS", action = clap::ArgAction::SetTrue, value_parser = boolish())]
    pub test_hooks: bool,

    // --- What one client can make the server hold (README, "Limits").
    /// Symbols tracked at most; a tick of a new symbol beyond it is refused.
    #[arg(long, env = "PULSE_MAX_SYMBOLS", default_value_t = 1_000)]
    pub max_symbols: usize,

    /// Only these symbols are accepted (comma separated); unset = any symbol, up to --max-symbols.
    #[arg(
        long = "symbols",
        id = "allowed_symbols",
        env = "PULSE_SYMBOLS",
        value_delimiter = ','
    )]
    pub allowed_symbols: Vec<String>,

    /// How far (ms) a tick's timestamp may lie ahead of the server's clock.
    #[arg(long, env = "PULSE_MAX_FUTURE_SKEW_MS", default_value_t = 5_000)]
    pub max_future_skew_ms: i64,

    /// Subscriptions one WebSocket connection may hold.
    #[arg(long, env = "PULSE_MAX_SUBSCRIPTIONS", default_value_t = 256)]
    pub max_subscriptions: usize,

    /// Per-symbol topics of symbols without data that clients may wait on at once (all connections).
    #[arg(long, env = "PULSE_MAX_PENDING_TOPICS", default_value_t = 1_000)]
    pub max_pending_topics: usize,

    /// WebSocket `publish` records per second per connection (0 = unlimited);
    /// a faster producer is read more slowly, not refused.
    #[arg(long, env = "PULSE_PUBLISH_RATE", default_value_t = 50_000.0)]
    pub publish_rate: f64,

    /// WebSocket `analyze` requests per second per connection (0 = unlimited).
    #[arg(long, env = "PULSE_ANALYZE_RATE", default_value_t = 100.0)]
    pub analyze_rate: f64,

    /// Dashboard sessions one client address counts as at most (active users).
    #[arg(long, env = "PULSE_MAX_SESSIONS_PER_IP", default_value_t = 8)]
    pub max_sessions_per_ip: u32,

    /// Events kept for recovery by each per-symbol topic (ticks:<SYMBOL>, candles:<SYMBOL>).
    #[arg(long, env = "PULSE_SYMBOL_HISTORY", default_value_t = 2_000)]
    pub symbol_history: usize,
    // --- end of limits
    /// Write batches queued for the database at most; beyond, ingest answers
    /// 503 at once (storage_unavailable, "write queue full").
    #[arg(long, env = "PULSE_MAX_WRITE_QUEUE", default_value_t = 10_000)]
    pub max_write_queue: usize,
    /// Dashboard writes (`/rpc/submit_post`, `/rpc/react_to_post`) per second
    /// per client address (0 = unlimited); bursts of twice that. Beyond: 429.
    #[arg(long, env = "PULSE_RPC_WRITE_RATE", default_value_t = 5.0)]
    pub rpc_write_rate: f64,

    /// Dashboard reads (the other `/rpc/*` calls) per second per client
    /// address (0 = unlimited); bursts of twice that. Beyond: 429.
    #[arg(long, env = "PULSE_RPC_READ_RATE", default_value_t = 50.0)]
    pub rpc_read_rate: f64,

    /// Whether anyone may post and react from the dashboard (`on`), or only
    /// requests carrying the ingest token (`off`: 401 without it). Default:
    /// `on` without `--ingest-token`, `off` with one.
    #[arg(long, env = "PULSE_PUBLIC_POSTING", value_name = "on|off", value_parser = boolish())]
    pub public_posting: Option<bool>,
    // --- The edge (src/server/listener.rs, src/server/guard.rs) ---
    /// Host names this server answers for besides the listen address and
    /// localhost (comma separated, `name` or `name:port`); other Hosts get 421.
    #[arg(long, env = "PULSE_PUBLIC_HOST", value_delimiter = ',')]
    pub public_host: Vec<String>,

    /// Seconds a client has to send a request's headers (counted from the
    /// connect, or from the first byte of a later request); then it is closed.
    #[arg(long, env = "PULSE_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub header_timeout_secs: u64,

    /// Seconds a keep-alive HTTP connection may sit with no request before it is closed.
    #[arg(long, env = "PULSE_IDLE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,

    /// Seconds a request body may take to arrive in full; a slower one is cut with 408.
    #[arg(long, env = "PULSE_BODY_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub body_timeout_secs: u64,

    /// Seconds a write (HTTP response or WebSocket frame) may make no progress
    /// before the connection is closed (a peer that does not read).
    #[arg(long, env = "PULSE_WRITE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub write_timeout_secs: u64,

    /// Open connections (HTTP and WebSocket) at most; more are answered 503.
    /// Lowered at start to fit the process's open-file limit.
    #[arg(long, env = "PULSE_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_connections: u32,

    /// Open connections per client address (IPv6: per /64) at most; more are answered 503.
    #[arg(long, env = "PULSE_MAX_CONNECTIONS_PER_IP", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_connections_per_ip: u32,

    #[command(flatten)]
    pub simulator: SimulatorArgs,
}

#[derive(Clone, Debug, Args)]
pub struct SimulatorArgs {
    /// Turn the built-in simulated feed off.
    #[arg(long = "no-simulator", env = "PULSE_NO_SIMULATOR", action = clap::ArgAction::SetTrue, value_parser = boolish())]
    pub disabled: bool,

    /// Seed of the simulator's random generator (same seed, same data).
    #[arg(long = "sim-seed", env = "PULSE_SIM_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Simulated ticks per second (all symbols together).
    #[arg(
        long = "sim-tick-rate",
        env = "PULSE_SIM_TICK_RATE",
        default_value_t = 20.0
    )]
    pub tick_rate: f64,

    /// Simulated symbols, comma separated.
    #[arg(
        long = "sim-symbols",
        env = "PULSE_SIM_SYMBOLS",
        value_delimiter = ',',
        default_value = "AAPL,MSFT,NVDA,TSLA,AMZN,BTC-USD"
    )]
    pub symbols: Vec<String>,

    /// Simulated posts per second (0 = none).
    #[arg(
        long = "sim-post-rate",
        env = "PULSE_SIM_POST_RATE",
        default_value_t = 0.5
    )]
    pub post_rate: f64,

    /// Simulated engagement events (likes, shares, comments) per second (0 = none).
    #[arg(
        long = "sim-engagement-rate",
        env = "PULSE_SIM_ENGAGEMENT_RATE",
        default_value_t = 4.0
    )]
    pub engagement_rate: f64,

    /// Seconds of history generated at start, so charts are full on first paint.
    #[arg(
        long = "sim-backfill-secs",
        env = "PULSE_SIM_BACKFILL_SECS",
        default_value_t = 120
    )]
    pub backfill_secs: u64,

    /// Volatility per square-root second of the simulated prices (0.001 = 0.1 %).
    #[arg(
        long = "sim-volatility",
        env = "PULSE_SIM_VOLATILITY",
        default_value_t = 0.001
    )]
    pub volatility: f64,
}

/// A flag outside the range Pulse can honour; `pulse` exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

/// Checks that `value` lies in `range`, naming the flag otherwise.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    flag: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError {
            flag,
            message: format!(
                "must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        })
    }
}

/// A rate: finite, at least 0 (0 = unlimited), at most `max`.
fn rate(flag: &'static str, value: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() {
        in_range(flag, value, 0.0..=max)
    } else {
        Err(ConfigError {
            flag,
            message: format!("must be a finite number, got {value}"),
        })
    }
}

impl ServerConfig {
    /// Range-checks every flag, so no value can make the server panic or
    /// misbehave later (durations that overflow, zero intervals, limits
    /// that disable themselves).
    pub fn validate(&self) -> Result<(), ConfigError> {
        const YEAR_MIN: u64 = 365 * 24 * 60;
        if let Some(token) = &self.ingest_token {
            if token.trim().is_empty() {
                return Err(ConfigError {
                    flag: "ingest-token",
                    message: "must not be empty (leave it unset for open ingest)".into(),
                });
            }
        }
        if self.redis.is_some() && self.in_memory {
            return Err(ConfigError {
                flag: "redis",
                message: "a cluster node keeps its archive in SQLite; drop --in-memory".into(),
            });
        }
        if let Some(url) = &self.redis {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                return Err(ConfigError {
                    flag: "redis",
                    message: format!("'{url}' is not a URL like redis://127.0.0.1:6379/0"),
                });
            }
        }
        if let Some(node) = &self.node_id {
            let valid = !node.is_empty()
                && node.len() <= 64
                && node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !valid {
                return Err(ConfigError {
                    flag: "node-id",
                    message: "1 to 64 letters, digits, '.', '_' or '-'".into(),
                });
            }
        }
        in_range("log-len", self.log_len, 100..=10_000_000)?;
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError {
                    flag: "allowed-origins",
                    message: format!("'{origin}' is not an origin like https://dash.example"),
                });
            }
        }
        in_range(
            "retain-ticks-min",
            self.retain_ticks_min,
            1..=100 * YEAR_MIN,
        )?;
        in_range(
            "retain-candles-1s-min",
            self.retain_candles_1s_min,
            1..=100 * YEAR_MIN,
        )?;
        in_range("retain-days", self.retain_days, 1..=36_500)?;
        in_range("prune-every-secs", self.prune_every_secs, 1..=86_400)?;
        in_range("max-body-bytes", self.max_body_bytes, 1_024..=1 << 30)?;
        rate("ingest-rate", self.ingest_rate, 1e6)?;
        in_range("history", self.history, 0..=1_000_000)?;
        in_range("batch-window-ms", self.batch_window_ms, 0..=1_000)?;
        in_range("max-queued-frames", self.max_queued_frames, 16..=1_000_000)?;
        in_range(
            "max-queued-bytes",
            self.max_queued_bytes,
            64 * 1024..=1 << 30,
        )?;
        in_range("heartbeat-secs", self.heartbeat_secs, 1..=3_600)?;
        in_range("max-symbols", self.max_symbols, 1..=100_000)?;
        in_range(
            "max-future-skew-ms",
            self.max_future_skew_ms,
            0..=pulse_core::model::MAX_FUTURE_SKEW_MS,
        )?;
        in_range("max-subscriptions", self.max_subscriptions, 1..=100_000)?;
        in_range("max-pending-topics", self.max_pending_topics, 0..=100_000)?;
        rate("publish-rate", self.publish_rate, 1e7)?;
        rate("analyze-rate", self.analyze_rate, 1e6)?;
        in_range("max-sessions-per-ip", self.max_sessions_per_ip, 1..=100_000)?;
        in_range("symbol-history", self.symbol_history, 0..=100_000)?;
        in_range("max-write-queue", self.max_write_queue, 1..=10_000_000)?;
        super::guard::HostAllowlist::parse_public(&self.public_host).map_err(|error| {
            ConfigError {
                flag: "public-host",
                message: error.to_string(),
            }
        })?;
        rate("rpc-write-rate", self.rpc_write_rate, 1e6)?;
        rate("rpc-read-rate", self.rpc_read_rate, 1e6)?;
        if self.allowed_symbols.len() > self.max_symbols {
            return Err(ConfigError {
                flag: "symbols",
                message: format!(
                    "lists {} symbols, more than --max-symbols {}",
                    self.allowed_symbols.len(),
                    self.max_symbols
                ),
            });
        }
        for symbol in &self.allowed_symbols {
            pulse_core::model::validate_symbol(symbol).map_err(|error| ConfigError {
                flag: "symbols",
                message: format!("'{symbol}': {}", error.message),
            })?;
        }
        if let Some(sim) = self.simulator() {
            sim.validate().map_err(|error| ConfigError {
                flag: "sim-*",
                message: error.to_string(),
            })?;
            if let Some(missing) = sim
                .symbols
                .iter()
                .find(|s| !self.allowed_symbols.is_empty() && !self.allowed_symbols.contains(s))
            {
                return Err(ConfigError {
                    flag: "symbols",
                    message: format!(
                        "the simulator's symbol {missing} is not allowed; add it or set --sim-symbols"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Defaults suitable for tests: random port on loopback, no simulator.
    pub fn for_tests() -> Self {
        let mut config = Cli::parse_from(["pulse"]).server;
        config.addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.simulator.disabled = true;
        config.in_memory = true;
        config
    }

    pub fn broker(&self) -> BrokerConfig {
        BrokerConfig {
            history_len: self.history,
            batch_window: Duration::from_millis(self.batch_window_ms),
            symbol_history_len: self.symbol_history,
            ..BrokerConfig::default()
        }
    }

    pub fn ingest_limits(&self) -> super::ingest::IngestLimits {
        super::ingest::IngestLimits {
            max_symbols: self.max_symbols,
            allowed_symbols: (!self.allowed_symbols.is_empty())
                .then(|| self.allowed_symbols.iter().cloned().collect()),
            max_future_skew_ms: self.max_future_skew_ms,
            ..super::ingest::IngestLimits::default()
        }
    }

    /// How long a symbol without new ticks stays tracked (the retention of
    /// its 1-minute candles).
    pub fn symbol_idle(&self) -> Duration {
        Duration::from_secs(self.retain_days.saturating_mul(24 * 3600))
    }

    /// Cluster settings, or `None` for a single node.
    pub fn cluster(&self) -> Option<super::cluster::ClusterConfig> {
        let url = self.redis.clone()?;
        let node_id = self.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|h| {
                    h.trim()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                        .take(40)
                        .collect::<String>()
                })
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "node".into());
            format!("{host}-{}", std::process::id())
        });
        Some(super::cluster::ClusterConfig {
            redis_url: url,
            node_id,
            log_len: self.log_len,
            max_waiting: self.max_write_queue.max(1),
        })
    }

    /// Storage settings, or `None` for an in-memory node.
    pub fn storage(&self) -> Option<StorageConfig> {
        let minutes = |m: u64| Duration::from_secs(m.saturating_mul(60));
        (!self.in_memory).then(|| StorageConfig {
            path: self.db.clone(),
            sync_full: self.sync == "full",
            retention: Retention {
                ticks: minutes(self.retain_ticks_min),
                candles_1s: minutes(self.retain_candles_1s_min),
                candles_1m: minutes(self.retain_days.saturating_mul(24 * 60)),
                engagement: minutes(self.retain_days.saturating_mul(24 * 60)),
                prune_every: Duration::from_secs(self.prune_every_secs.max(1)),
            },
            max_mib: (self.db_max_mib > 0).then_some(self.db_max_mib),
            max_write_queue: self.max_write_queue.max(1),
        })
    }

    /// The posting policy (see `--public-posting`).
    pub fn posting_is_public(&self) -> bool {
        self.public_posting.unwrap_or(self.ingest_token.is_none())
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    pub fn simulator(&self) -> Option<SimulatorConfig> {
        let args = &self.simulator;
        (!args.disabled).then(|| SimulatorConfig {
            seed: args.seed,
            tick_rate: args.tick_rate,
            symbols: args.symbols.clone(),
            volatility: args.volatility,
            backfill_secs: args.backfill_secs,
            post_rate: args.post_rate,
            engagement_rate: args.engagement_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_flags_override_them() {
        let cli = Cli::parse_from(["pulse", "--sim-seed", "7", "--sim-symbols", "A,B"]);
        let sim = cli.server.simulator().unwrap();
        assert_eq!(sim.seed, 7);
        assert_eq!(sim.symbols, ["A", "B"]);
        assert_eq!(cli.server.history, 10_000);
        let cli = Cli::parse_from(["pulse", "--no-simulator"]);
        assert!(cli.server.simulator().is_none());
    }

    /// Set in the copy of this test binary that
    /// [`switches_and_lists_are_read_from_the_environment`] starts.
    const ENV_CHILD: &str = "PULSE_CONFIG_TEST_CHILD";

    /// What the configuration parsed from this process's environment (and
    /// no arguments) looks like, or the kind of error clap reported.
    fn parsed_from_environment() -> String {
        match Cli::try_parse_from(["pulse"]) {
            Ok(cli) => {
                let c = cli.server;
                format!(
                    "in_memory={} test_hooks={} public_posting={:?} ingest_rate={} allowed_origins={:?}",
                    c.in_memory, c.test_hooks, c.public_posting, c.ingest_rate, c.allowed_origins
                )
            }
            Err(error) => format!("error={:?}", error.kind()),
        }
    }

    /// Runs this test again in a child process whose environment is `vars`
    /// (and no other PULSE_ variable) and returns what the child parsed.
    /// A child, because clap reads the real process environment and
    /// changing it here would race with every other test that parses flags
    /// (`set_var` while another thread reads the environment is undefined
    /// behaviour on glibc).
    fn parse_in_child(vars: &[(&str, &str)]) -> String {
        let exe = std::env::current_exe().expect("the test binary");
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let name = format!("{module}::switches_and_lists_are_read_from_the_environment");
        let mut command = std::process::Command::new(exe);
        command.args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"]);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PULSE_") {
                command.env_remove(key);
            }
        }
        command.env(ENV_CHILD, "1").envs(vars.iter().copied());
        let output = command.output().expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        stdout
            .lines()
            // libtest's "test ... " may precede it on the same line.
            .find_map(|line| line.split_once("PARSED ").map(|(_, parsed)| parsed))
            .unwrap_or_else(|| panic!("the child printed no result: {stdout}"))
            .to_owned()
    }

    #[test]
    fn switches_and_lists_are_read_from_the_environment() {
        if std::env::var_os(ENV_CHILD).is_some() {
            println!("PARSED {}", parsed_from_environment());
            return;
        }
        assert_eq!(
            parse_in_child(&[]),
            "in_memory=false test_hooks=false public_posting=None ingest_rate=200 allowed_origins=[]"
        );
        assert_eq!(
            parse_in_child(&[
                ("PULSE_IN_MEMORY", "yes"),
                ("PULSE_TEST_HOOKS", "1"),
                ("PULSE_PUBLIC_POSTING", "on"),
                ("PULSE_INGEST_RATE", "7.5"),
                (
                    "PULSE_ALLOWED_ORIGINS",
                    "https://a.example,https://b.example"
                ),
            ]),
            "in_memory=true test_hooks=true public_posting=Some(true) ingest_rate=7.5 \
             allowed_origins=[\"https://a.example\", \"https://b.example\"]"
        );
        assert_eq!(
            parse_in_child(&[
                ("PULSE_IN_MEMORY", "0"),
                ("PULSE_TEST_HOOKS", "false"),
                ("PULSE_PUBLIC_POSTING", "off"),
            ]),
            "in_memory=false test_hooks=false public_posting=Some(false) ingest_rate=200 allowed_origins=[]"
        );
        assert_eq!(
            parse_in_child(&[("PULSE_IN_MEMORY", "maybe")]),
            "error=ValueValidation"
        );
    }

    #[test]
    fn out_of_range_flags_are_refused_with_the_flag_named() {
        for (args, flag) in [
            (&["--heartbeat-secs", "0"][..], "heartbeat-secs"),
            (
                &["--heartbeat-secs", "18446744073709551615"],
                "heartbeat-secs",
            ),
            (&["--prune-every-secs", "0"], "prune-every-secs"),
            (
                &["--prune-every-secs", "18446744073709551615"],
                "prune-every-secs",
            ),
            (&["--ingest-token", ""], "ingest-token"),
            (&["--ingest-token", "  "], "ingest-token"),
            (&["--ingest-rate", "NaN"], "ingest-rate"),
            (&["--ingest-rate=-1"], "ingest-rate"),
            (&["--publish-rate", "inf"], "publish-rate"),
            (&["--max-symbols", "0"], "max-symbols"),
            (&["--max-future-skew-ms=-1"], "max-future-skew-ms"),
            (&["--retain-days", "0"], "retain-days"),
            (&["--symbols", "AAPL,-X"], "symbols"),
            (&["--symbols", "AAPL"], "symbols"),
            (&["--sim-backfill-secs", "18446744073709551615"], "sim-*"),
            (&["--sim-tick-rate", "1e300"], "sim-*"),
            (&["--allowed-origins", "evil.example"], "allowed-origins"),
        ] {
            let mut argv = vec!["pulse"];
            argv.extend_from_slice(args);
            let cli = Cli::try_parse_from(&argv).expect("parses");
            let error = cli
                .server
                .validate()
                .expect_err(&format!("{args:?} refused"));
            assert_eq!(error.flag, flag, "{args:?}: {error}");
        }
        assert!(Cli::parse_from(["pulse"]).server.validate().is_ok());
        let allowed = Cli::parse_from(["pulse", "--symbols", "AAPL,MSFT,NVDA,TSLA,AMZN,BTC-USD,X"]);
        assert!(allowed.server.validate().is_ok());
    }

    #[test]
    fn posting_is_public_unless_a_token_is_set_or_it_is_turned_off() {
        let parse = |args: &[&str]| Cli::parse_from([&["pulse"], args].concat()).server;
        assert!(parse(&[]).posting_is_public());
        assert!(!parse(&["--ingest-token", "t"]).posting_is_public());
        assert!(parse(&["--ingest-token", "t", "--public-posting", "on"]).posting_is_public());
        assert!(!parse(&["--public-posting", "off"]).posting_is_public());
        let config = parse(&[]);
        assert_eq!((config.rpc_write_rate, config.rpc_read_rate), (5.0, 50.0));
    }

    #[test]
    fn help_documents_every_flag() {
        use clap::CommandFactory;
        let mut command = Cli::command();
        command.build();
        let mut commands = vec![command.clone()];
        commands.extend(command.get_subcommands().cloned());
        let mut checked = 0;
        for mut command in commands {
            let help = command.render_long_help().to_string();
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let text = arg
                    .get_long_help()
                    .or(arg.get_help())
                    .map(|h| h.to_string());
                assert!(
                    text.is_some_and(|t| !t.trim().is_empty()),
                    "{}: {id} has no help text",
                    command.get_name()
                );
                if let Some(long) = arg.get_long() {
                    assert!(
                        help.contains(&format!("--{long}")),
                        "--{long} missing from --help"
                    );
                }
                if let Some(env) = arg.get_env() {
                    let env = env.to_string_lossy();
                    assert!(
                        help.contains(&format!("[env: {env}")),
                        "{env} missing from --help"
                    );
                }
                checked += 1;
            }
        }
        // The server's flags alone are more than 40; a derive that stopped
        // flattening them in would leave only a handful.
        assert!(checked > 40, "only {checked} arguments checked");
    }
}
