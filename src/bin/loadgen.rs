//! `loadgen`: WebSocket fan-out benchmark for Pulse.
//!
//! Opens N subscriber connections to `/ws`, subscribes them all to one topic,
//! then publishes ticks at a fixed total rate over P publisher connections and
//! measures, per delivered event, the time from the publisher's send to the
//! subscriber's receive. The tick's `volume` carries a global sequence number
//! (the `ts` field only has ms resolution), and the send instant of every
//! sequence number is kept in a pre-allocated table shared by all tasks.
//!
//! Subscribers keep only counters and a log-linear latency histogram (µs
//! resolution, ~3 % precision), merged at the end. Server memory is read from
//! `GET /metrics` (`pulse_process_resident_memory_bytes`) before connecting,
//! after connecting (idle) and at the end.
//!
//! The load generator runs on the same machine as the server: every
//! delivered event is parsed here too, so its CPU competes with the server's.
//!
//! Examples (the shell needs `ulimit -n 65536` for 10,000 connections, both
//! for the server and for loadgen):
//!
//! ```text
//! target/release/pulse --addr 127.0.0.1:3900 --no-simulator &
//! target/release/loadgen --subscribers 1000 --rate 100 --duration 15
//! target/release/loadgen --subscribers 10000 --idle
//! ```

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "WebSocket fan-out load generator and latency benchmark for Pulse (loopback only)"
)]
struct Args {
    /// WebSocket endpoint of the server (must be on 127.0.0.1 / localhost).
    #[arg(long, default_value = "ws://127.0.0.1:3900/ws")]
    url: String,

    /// Subscriber connections to open.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,

    /// Total published events per second (all publishers together).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,

    /// Seconds to publish for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Topic the subscribers subscribe to (`ticks` or `ticks:<SYMBOL>`).
    #[arg(long, default_value = "ticks")]
    topic: String,

    /// Publisher connections the rate is spread over.
    #[arg(long, default_value_t = 1)]
    publishers: usize,

    /// Ingest token for publishers (servers started with --ingest-token).
    #[arg(long, env = "PULSE_INGEST_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Seconds to wait after all subscribers are connected before measuring
    /// idle memory and starting to publish.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// Seconds to wait for in-flight events after publishing stops.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,

    /// Connection attempts (TCP + WebSocket handshake + subscribe) in flight at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,

    /// Attempts per connection before it counts as failed.
    #[arg(long, default_value_t = 5)]
    connect_attempts: u32,

    /// Only connect and subscribe the subscribers, measure server memory per
    /// idle connection, and exit.
    #[arg(long)]
    idle: bool,

    /// Diagnostic: set TCP_QUICKACK on subscriber sockets after every read, so
    /// delayed ACKs cannot hold back a server that writes without TCP_NODELAY.
    #[arg(long)]
    quickack: bool,

    /// Tokio worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: error: could not start the tokio runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(args));
    // Do not wait for sockets still being torn down.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: error: {error:#}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------
// Latency histogram: log-linear, 32 sub-buckets per power of two, in µs.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const LINEAR: usize = 2 * SUB;
/// Values are capped at 2^31 µs (~36 min).
const MAX_US: u64 = (1 << 31) - 1;
const BUCKETS: usize = LINEAR + (31 - SUB_BITS as usize) * SUB;

fn bucket_of(us: u64) -> usize {
    let us = us.min(MAX_US);
    if (us as usize) < LINEAR {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = (us >> shift) as usize;
    LINEAR + (shift as usize - 1) * SUB + (mantissa - SUB)
}

/// Lowest and highest µs value that fall into bucket `index`.
fn bucket_range(index: usize) -> (u64, u64) {
    if index < LINEAR {
        return (index as u64, index as u64);
    }
    let k = index - LINEAR;
    let shift = (k / SUB + 1) as u32;
    let mantissa = (k % SUB + SUB) as u64;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_ns: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max_ns: 0,
        }
    }

    fn add_counts(&mut self, counts: &[u32], max_ns: u64) {
        for (sum, count) in self.counts.iter_mut().zip(counts) {
            *sum += u64::from(*count);
            self.total += u64::from(*count);
        }
        self.max_ns = self.max_ns.max(max_ns);
    }

    /// Value (ms) at quantile `q`: the middle of the bucket holding that rank.
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bucket_range(index);
                let mid_us = (low + high) as f64 / 2.0;
                return (mid_us / 1000.0).min(self.max_ns as f64 / 1e6);
            }
        }
        self.max_ns as f64 / 1e6
    }
}

// ---------------------------------------------------------------------------
// State shared by all tasks.

struct Shared {
    t0: Instant,
    /// Send time of every sequence number, ns since `t0` (0 = not sent).
    sent_ns: Vec<AtomicU64>,
    next_seq: AtomicU64,
    /// Events with a known sequence number received by all subscribers.
    delivered: AtomicU64,
    /// Events received that this run did not publish (e.g. the simulator's).
    foreign: AtomicU64,
    /// Subscribers currently connected.
    connected: AtomicUsize,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Send time of `seq` if this run published it.
    fn sent_at(&self, seq: u64) -> Option<u64> {
        let slot = self.sent_ns.get(usize::try_from(seq).ok()?)?;
        match slot.load(Ordering::Acquire) {
            0 => None,
            ns => Some(ns),
        }
    }
}

/// What one subscriber saw.
struct SubStats {
    events: u64,
    frames: u64,
    duplicates: u64,
    /// Events missing between consecutive offsets.
    gap_events: u64,
    conflation_notices: u64,
    conflated_skipped: u64,
    /// `subscribed` replies after the first one (server resumed after lagging).
    resubscribed: u64,
    errors: u64,
    /// Close reason when the connection ended before the run did.
    disconnected: Option<String>,
    hist: Vec<u32>,
    max_ns: u64,
}

impl SubStats {
    fn new() -> Self {
        Self {
            events: 0,
            frames: 0,
            duplicates: 0,
            gap_events: 0,
            conflation_notices: 0,
            conflated_skipped: 0,
            resubscribed: 0,
            errors: 0,
            disconnected: None,
            hist: Vec::new(),
            max_ns: 0,
        }
    }

    fn record_latency(&mut self, ns: u64) {
        if self.hist.is_empty() {
            self.hist = vec![0; BUCKETS];
        }
        let bucket = bucket_of(ns / 1000);
        self.hist[bucket] = self.hist[bucket].saturating_add(1);
        self.max_ns = self.max_ns.max(ns);
    }
}

// ---------------------------------------------------------------------------
// Frame scanning: a targeted byte scan instead of a full JSON parse. Event
// frames look like
//   {"op":"event","topic":"ticks","offset":7,"data":{"symbol":"A","price":1.0,"volume":7.0,"ts":..}}
//   {"op":"batch","events":[{"topic":"ticks","offset":7,"data":{..}},...]}
// and the tick's symbol cannot contain quotes, so the keys are unambiguous.

const OFFSET_KEY: &str = "\"offset\":";
const VOLUME_KEY: &str = "\"volume\":";

fn number_at(text: &str) -> &str {
    let end = text
        .bytes()
        .position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Calls `each(offset, seq)` for every event of an event/batch frame.
fn scan_events(text: &str, mut each: impl FnMut(u64, Option<u64>)) {
    let mut rest = text;
    let Some(mut at) = rest.find(OFFSET_KEY) else {
        return;
    };
    loop {
        rest = &rest[at + OFFSET_KEY.len()..];
        let offset = number_at(rest).parse::<u64>().unwrap_or(0);
        let next = rest.find(OFFSET_KEY);
        let segment = &rest[..next.unwrap_or(rest.len())];
        let seq = segment.find(VOLUME_KEY).and_then(|v| {
            let volume = number_at(&segment[v + VOLUME_KEY.len()..])
                .parse::<f64>()
                .ok()?;
            (volume >= 0.0 && volume.fract() == 0.0 && volume < 9e15).then_some(volume as u64)
        });
        each(offset, seq);
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Subscribers.

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// Connects, subscribes and waits for `subscribed`; returns the socket and the start offset.
async fn connect_subscriber(url: &str, topic: &str) -> Result<(Ws, u64)> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    let subscribe = serde_json::json!({"op": "subscribe", "topics": [topic]}).to_string();
    ws.send(Message::text(subscribe)).await?;
    let wait = async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message? {
                let value: serde_json::Value = serde_json::from_str(text.as_str())?;
                match value["op"].as_str() {
                    Some("subscribed") => return Ok(value["offset"].as_u64().unwrap_or(0)),
                    Some("error") => bail!("subscribe refused: {text}"),
                    _ => {}
                }
            }
        }
        bail!("connection closed before `subscribed`")
    };
    let offset = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| anyhow!("no `subscribed` reply within 30 s"))??;
    Ok((ws, offset))
}

/// What every subscriber connects to and how.
struct SubscriberPlan {
    url: Arc<str>,
    topic: Arc<str>,
    attempts: u32,
    /// Bounds how many connect at the same time.
    permits: Semaphore,
    quickack: bool,
}

async fn subscriber(
    plan: Arc<SubscriberPlan>,
    shared: Arc<Shared>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) -> Option<SubStats> {
    let connected = {
        let _permit = plan.permits.acquire().await.ok()?;
        let mut last_error = String::new();
        let mut connected = None;
        for attempt in 1..=plan.attempts.max(1) {
            if *stop.borrow() {
                break;
            }
            match connect_subscriber(&plan.url, &plan.topic).await {
                Ok(ok) => {
                    connected = Some(ok);
                    break;
                }
                Err(error) => {
                    last_error = format!("{error:#}");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
            }
        }
        connected.ok_or(last_error)
    };
    let (ws, mut last_offset) = match connected {
        Ok(ok) => ok,
        Err(error) => {
            let _ = ready.send(Err(error));
            return None;
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(Ok(()));
    drop(ready);

    let mut ws = ws;
    let mut stats = SubStats::new();
    let stop_signal = stop.wait_for(|stop| *stop);
    tokio::pin!(stop_signal);
    loop {
        let message = tokio::select! {
            biased;
            message = ws.next() => message,
            _ = &mut stop_signal => break,
        };
        if plan.quickack {
            // Diagnostic: ACK at once instead of delaying the ACK, which
            // hides Nagle stalls of a sender without TCP_NODELAY. The flag is
            // not sticky in Linux, so it is set again after every read.
            if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                let _ = tcp.set_quickack(true);
            }
        }
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                stats.disconnected = Some(match frame {
                    Some(frame) => format!("close {} {}", u16::from(frame.code), frame.reason),
                    None => "close without reason".into(),
                });
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                stats.disconnected = Some(format!("error: {error}"));
                break;
            }
            None => {
                stats.disconnected = Some("connection ended".into());
                break;
            }
        };
        let received_ns = shared.now_ns();
        let text = text.as_str();
        if text.starts_with(r#"{"op":"event""#) || text.starts_with(r#"{"op":"batch""#) {
            stats.frames += 1;
            let mut ours = 0;
            scan_events(text, |offset, seq| {
                stats.events += 1;
                if offset <= last_offset {
                    stats.duplicates += 1;
                } else {
                    stats.gap_events += offset - last_offset - 1;
                    last_offset = offset;
                }
                match seq.and_then(|seq| shared.sent_at(seq)) {
                    Some(sent) => {
                        ours += 1;
                        stats.record_latency(received_ns.saturating_sub(sent));
                    }
                    None => {
                        shared.foreign.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            shared.delivered.fetch_add(ours, Ordering::Relaxed);
        } else {
            let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            match value["op"].as_str() {
                Some("conflated") => {
                    stats.conflation_notices += 1;
                    stats.conflated_skipped += value["skipped"].as_u64().unwrap_or(0);
                }
                Some("subscribed") => {
                    // The server re-attached us after we lagged; the backlog follows.
                    stats.resubscribed += 1;
                }
                Some("error") => {
                    stats.errors += 1;
                    if stats.errors == 1 {
                        eprintln!("loadgen: subscriber got an error: {text}");
                    }
                }
                _ => {}
            }
        }
    }
    shared.connected.fetch_sub(1, Ordering::Relaxed);
    if stats.disconnected.is_none() {
        let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
    }
    Some(stats)
}

// ---------------------------------------------------------------------------
// Publishers.

const SYMBOLS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "BTC-USD",
];

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct PubResult {
    sent: u64,
    errors: u64,
    lag_max_ms: f64,
}

async fn publisher(
    url: Arc<str>,
    token: Option<String>,
    symbol: Option<String>,
    rate: f64,
    total: u64,
    shared: Arc<Shared>,
) -> Result<PubResult> {
    let mut request = url.as_ref().into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
        .await
        .context("publisher could not connect")?;
    let (mut sink, mut stream) = ws.split();
    // Count error replies (and answer pings) without blocking the sender.
    let reader = tokio::spawn(async move {
        let mut errors = 0u64;
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                if text.as_str().contains(r#""op":"error""#) {
                    errors += 1;
                    if errors <= 3 {
                        eprintln!("loadgen: publisher got an error: {}", text.as_str());
                    }
                }
            }
        }
        errors
    });

    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    let mut lag_max_ms = 0f64;
    let mut text = String::with_capacity(160);
    while sent < total {
        ticker.tick().await;
        let elapsed = start.elapsed().as_secs_f64();
        let due = ((elapsed * rate) as u64).min(total);
        if due > sent {
            lag_max_ms = lag_max_ms.max((due - sent) as f64 / rate * 1000.0);
        }
        let ts = unix_ms();
        let mut fed = false;
        while sent < due {
            let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = shared.sent_ns.get(seq as usize) else {
                sent = total;
                break;
            };
            let symbol = symbol
                .as_deref()
                .unwrap_or(SYMBOLS[(seq % SYMBOLS.len() as u64) as usize]);
            let price = 100.0 + (seq % 1000) as f64 / 8.0;
            text.clear();
            use std::fmt::Write;
            let _ = write!(
                text,
                r#"{{"op":"publish","topic":"ticks","data":{{"symbol":"{symbol}","price":{price},"volume":{seq},"ts":{ts}}}}}"#
            );
            slot.store(shared.now_ns().max(1), Ordering::Release);
            sink.feed(Message::text(text.clone()))
                .await
                .context("publisher connection failed")?;
            fed = true;
            sent += 1;
        }
        if fed {
            sink.flush().await.context("publisher connection failed")?;
        }
    }
    // Give error replies a moment to arrive, then close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    let errors = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    Ok(PubResult {
        sent,
        errors,
        lag_max_ms,
    })
}

// ---------------------------------------------------------------------------
// Server metrics over plain HTTP.

#[derive(Debug, Clone, Copy, Default)]
struct ServerMetrics {
    rss: f64,
    connections: f64,
}

async fn server_metrics(addr: SocketAddr) -> Result<ServerMetrics> {
    let fetch = async {
        let mut tcp = TcpStream::connect(addr).await?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await?;
        let mut body = Vec::new();
        tcp.read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&body).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| anyhow!("GET http://{addr}/metrics timed out"))?
        .with_context(|| format!("GET http://{addr}/metrics failed"))?;
    let status = text.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("GET http://{addr}/metrics answered '{status}'");
    }
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Ok(ServerMetrics {
        rss: value("pulse_process_resident_memory_bytes"),
        connections: value("pulse_ws_connections"),
    })
}

// ---------------------------------------------------------------------------
// Setup checks.

/// `host:port` of a `ws://` URL, which must be on loopback.
fn loopback_addr(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("--url must start with ws:// (got '{url}')"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve '{authority}'"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| anyhow!("loadgen only targets loopback (127.0.0.1), not '{authority}'"))?;
    debug_assert!(matches!(addr.ip(), IpAddr::V4(_) | IpAddr::V6(_)));
    Ok(addr)
}

/// Soft limit on open files of this process, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------

async fn run(args: Args) -> Result<()> {
    let addr = loopback_addr(&args.url)?;
    if args.subscribers == 0 {
        bail!("--subscribers must be at least 1");
    }
    // Written positively so NaN counts as invalid.
    let publishing = args.rate > 0.0 && args.duration > 0.0 && args.publishers > 0;
    if !args.idle && !publishing {
        bail!("--rate, --duration and --publishers must be positive");
    }
    let needed = (args.subscribers + args.publishers + 64) as u64;
    if let Some(limit) = open_files_limit() {
        if limit < needed {
            bail!(
                "the open-files limit is {limit} but {} subscribers need about {needed}; \
                 run `ulimit -n 65536` in this shell (and in the server's shell) first",
                args.subscribers
            );
        }
    }
    let symbol = match args.topic.strip_prefix("ticks:") {
        Some(symbol) => Some(symbol.to_owned()),
        None if args.topic == "ticks" => None,
        None => bail!("--topic must be 'ticks' or 'ticks:<SYMBOL>' (published events are ticks)"),
    };

    let before = server_metrics(addr).await.with_context(|| {
        format!("server unreachable at {addr}: is `pulse --addr {addr}` running?")
    })?;
    println!(
        "loadgen: server at {addr}, RSS before connecting {} ({} ws connections)",
        mib(before.rss),
        before.connections
    );

    // Per-publisher event counts, summing to the total.
    let total = if args.idle {
        0
    } else {
        (args.rate * args.duration).round() as u64
    };
    let publishers = args.publishers as u64;
    let per_publisher: Vec<u64> = (0..publishers)
        .map(|p| total / publishers + u64::from(p < total % publishers))
        .collect();
    let shared = Arc::new(Shared {
        t0: Instant::now(),
        sent_ns: (0..total).map(|_| AtomicU64::new(0)).collect(),
        next_seq: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        foreign: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
    });

    // Connect the subscribers.
    let plan = Arc::new(SubscriberPlan {
        url: args.url.as_str().into(),
        topic: args.topic.as_str().into(),
        attempts: args.connect_attempts,
        permits: Semaphore::new(args.connect_concurrency.max(1)),
        quickack: args.quickack,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let connect_start = Instant::now();
    let mut tasks = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        tasks.push(tokio::spawn(subscriber(
            Arc::clone(&plan),
            Arc::clone(&shared),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut ok = 0usize;
    let mut failed = 0usize;
    let mut first_error = None;
    let mut last_report = Instant::now();
    while let Some(result) = ready_rx.recv().await {
        match result {
            Ok(()) => ok += 1,
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            println!("loadgen: {ok} subscribed, {failed} failed ...");
            last_report = Instant::now();
        }
        if ok + failed == args.subscribers {
            break;
        }
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    println!(
        "loadgen: {ok} subscribers subscribed to '{}' in {connect_secs:.1} s, {failed} failed",
        args.topic
    );
    if let Some(error) = &first_error {
        eprintln!("loadgen: first connect failure: {error}");
    }
    if ok == 0 {
        let _ = stop_tx.send(true);
        bail!(
            "no subscriber could connect to {} ({})",
            args.url,
            first_error.unwrap_or_default()
        );
    }

    tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(0.0))).await;
    let idle = server_metrics(addr)
        .await
        .context("GET /metrics after connecting")?;
    let per_connection = (idle.rss - before.rss) / ok as f64;
    println!(
        "loadgen: RSS after connecting {} ({} ws connections) => {:.0} bytes ({:.2} KiB) per connection",
        mib(idle.rss),
        idle.connections,
        per_connection,
        per_connection / 1024.0
    );
    let foreign_idle = shared.foreign.load(Ordering::Relaxed);
    if foreign_idle > 0 {
        eprintln!(
            "loadgen: warning: {foreign_idle} events arrived before publishing started; \
             run the server with --no-simulator for clean numbers"
        );
    }

    if args.idle {
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        let summary = serde_json::json!({
            "mode": "idle",
            "subscribers": ok,
            "connect_failures": failed,
            "connect_secs": connect_secs,
            "rss_before": before.rss,
            "rss_idle": idle.rss,
            "rss_per_connection_bytes": per_connection,
        });
        println!("\n== idle connections ==");
        println!("subscribers connected      {ok} ({failed} failed, {connect_secs:.1} s)");
        println!("server RSS before          {}", mib(before.rss));
        println!("server RSS connected       {}", mib(idle.rss));
        println!(
            "RSS per idle connection    {per_connection:.0} bytes ({:.2} KiB)",
            per_connection / 1024.0
        );
        println!("RESULT {summary}");
        return Ok(());
    }

    // Publish.
    println!(
        "loadgen: publishing {total} events at {} ev/s over {} publisher(s) for {} s",
        args.rate, args.publishers, args.duration
    );
    let publish_start = Instant::now();
    let mut publishers_tasks = Vec::new();
    for share in &per_publisher {
        publishers_tasks.push(tokio::spawn(publisher(
            Arc::clone(&plan.url),
            args.token.clone(),
            symbol.clone(),
            args.rate / args.publishers as f64,
            *share,
            Arc::clone(&shared),
        )));
    }
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    progress.tick().await;
    let mut last_delivered = 0;
    let mut last_at = Instant::now();
    let deadline = publish_start + Duration::from_secs_f64(args.duration * 3.0 + 10.0);
    while publishers_tasks.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        progress.tick().await;
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let now = Instant::now();
        println!(
            "loadgen: t={:5.1}s published {:>9} delivered {:>11} ({:>9.0}/s) connected {}",
            publish_start.elapsed().as_secs_f64(),
            shared.next_seq.load(Ordering::Relaxed).min(total),
            delivered,
            (delivered - last_delivered) as f64 / now.duration_since(last_at).as_secs_f64(),
            shared.connected.load(Ordering::Relaxed),
        );
        last_delivered = delivered;
        last_at = now;
    }
    let mut published = 0u64;
    let mut publish_errors = 0u64;
    let mut publisher_lag_ms = 0f64;
    for task in publishers_tasks {
        if !task.is_finished() {
            task.abort();
            eprintln!("loadgen: a publisher did not finish in time");
            continue;
        }
        match task.await {
            Ok(Ok(result)) => {
                published += result.sent;
                publish_errors += result.errors;
                publisher_lag_ms = publisher_lag_ms.max(result.lag_max_ms);
            }
            Ok(Err(error)) => eprintln!("loadgen: publisher failed: {error:#}"),
            Err(error) => eprintln!("loadgen: publisher task failed: {error}"),
        }
    }
    // Count what was actually sent (a failed publisher may have sent some).
    let recorded = shared
        .sent_ns
        .iter()
        .filter(|s| s.load(Ordering::Relaxed) != 0)
        .count() as u64;
    let published = recorded.max(published.min(total));
    let publish_secs = publish_start.elapsed().as_secs_f64();
    let expected = published * ok as u64;

    // Drain.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain.max(0.0));
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_delivery_secs = publish_start.elapsed().as_secs_f64();
    let end = server_metrics(addr).await.unwrap_or_else(|error| {
        eprintln!("loadgen: GET /metrics at the end failed: {error:#}");
        ServerMetrics {
            rss: f64::NAN,
            connections: f64::NAN,
        }
    });
    let _ = stop_tx.send(true);

    // Merge.
    let mut hist = Histogram::new();
    let mut delivered_events = 0u64;
    let mut frames = 0u64;
    let mut duplicates = 0u64;
    let mut gap_events = 0u64;
    let mut conflation_notices = 0u64;
    let mut conflated_skipped = 0u64;
    let mut conflated_clients = 0u64;
    let mut resubscribed = 0u64;
    let mut sub_errors = 0u64;
    let mut disconnects = 0u64;
    let mut first_disconnect = None;
    let mut keepers = 0u64;
    let mut keepers_events = 0u64;
    for task in tasks {
        let Ok(Some(stats)) = task.await else {
            continue;
        };
        delivered_events += stats.events;
        frames += stats.frames;
        duplicates += stats.duplicates;
        gap_events += stats.gap_events;
        conflation_notices += stats.conflation_notices;
        conflated_skipped += stats.conflated_skipped;
        conflated_clients += u64::from(stats.conflation_notices > 0);
        resubscribed += stats.resubscribed;
        sub_errors += stats.errors;
        if let Some(reason) = stats.disconnected {
            disconnects += 1;
            first_disconnect.get_or_insert(reason);
        } else if stats.conflation_notices == 0 {
            keepers += 1;
            keepers_events += stats.events - stats.duplicates;
        }
        if !stats.hist.is_empty() {
            hist.add_counts(&stats.hist, stats.max_ns);
        }
    }
    let ours = hist.total;
    let foreign = shared.foreign.load(Ordering::Relaxed);
    let unique = ours.saturating_sub(duplicates);
    let loss_pct = if expected > 0 {
        100.0 * (expected.saturating_sub(unique)) as f64 / expected as f64
    } else {
        0.0
    };
    let keepers_expected = keepers * published;
    let keepers_loss_pct = if keepers_expected > 0 {
        100.0 * keepers_expected.saturating_sub(keepers_events) as f64 / keepers_expected as f64
    } else {
        0.0
    };
    let publish_rate = published as f64 / args.duration;
    let delivered_rate = ours as f64 / args.duration;
    let (p50, p90, p99, p999) = (
        hist.quantile_ms(0.50),
        hist.quantile_ms(0.90),
        hist.quantile_ms(0.99),
        hist.quantile_ms(0.999),
    );
    let max_ms = hist.max_ns as f64 / 1e6;

    println!("\n== results ==");
    println!("subscribers                {ok} ({failed} failed to connect, {connect_secs:.1} s to connect)");
    println!(
        "published                  {published} events in {publish_secs:.1} s = {publish_rate:.0} ev/s (target {}; {publish_errors} publish errors, worst publisher lag {publisher_lag_ms:.0} ms)",
        args.rate
    );
    println!("expected deliveries        {expected}");
    println!(
        "delivered                  {ours} events in {frames} frames ({:.1} events/frame), drain done at t={last_delivery_secs:.1} s",
        if frames > 0 { delivered_events as f64 / frames as f64 } else { 0.0 }
    );
    println!(
        "delivered events/s         {delivered_rate:.0} (over the {} s publish window)",
        args.duration
    );
    println!("loss                       {loss_pct:.3} % (clients that kept up: {keepers} with {keepers_loss_pct:.3} % loss)");
    println!("duplicates                 {duplicates}");
    println!("offset gaps                {gap_events} events");
    println!("conflation notices         {conflation_notices} ({conflated_skipped} events skipped, {conflated_clients} clients)");
    println!("resubscribed after lag     {resubscribed}");
    println!(
        "disconnects                {disconnects}{}",
        first_disconnect
            .as_ref()
            .map(|r| format!(" (first: {r})"))
            .unwrap_or_default()
    );
    if sub_errors > 0 || foreign > 0 {
        println!("subscriber errors          {sub_errors}; foreign events {foreign}");
    }
    println!("latency p50/p90/p99/p99.9  {p50:.2} / {p90:.2} / {p99:.2} / {p999:.2} ms");
    println!("latency max                {max_ms:.2} ms");
    println!(
        "server RSS                 before {} / connected idle {} / end {}",
        mib(before.rss),
        mib(idle.rss),
        mib(end.rss)
    );
    println!(
        "server RSS per connection  {per_connection:.0} bytes ({:.2} KiB)",
        per_connection / 1024.0
    );
    let summary = serde_json::json!({
        "mode": "publish",
        "subscribers": ok,
        "connect_failures": failed,
        "rate_target": args.rate,
        "duration": args.duration,
        "published": published,
        "publish_rate": publish_rate,
        "publish_errors": publish_errors,
        "expected": expected,
        "delivered": ours,
        "frames": frames,
        "delivered_per_sec": delivered_rate,
        "loss_pct": loss_pct,
        "keepers": keepers,
        "keepers_loss_pct": keepers_loss_pct,
        "duplicates": duplicates,
        "gap_events": gap_events,
        "conflation_notices": conflation_notices,
        "conflated_skipped": conflated_skipped,
        "resubscribed": resubscribed,
        "disconnects": disconnects,
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p999_ms": p999, "max_ms": max_ms,
        "rss_before": before.rss, "rss_idle": idle.rss, "rss_end": end.rss,
        "rss_per_connection_bytes": per_connection,
    });
    println!("RESULT {summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut previous = 0;
        for us in [0u64, 1, 63, 64, 65, 127, 128, 1000, 50_000, 1 << 30, MAX_US] {
            let b = bucket_of(us);
            assert!(b >= previous && b < BUCKETS);
            let (low, high) = bucket_range(b);
            assert!(low <= us && us <= high, "{us} not in {low}..{high}");
            previous = b;
        }
        for b in 1..BUCKETS {
            assert_eq!(bucket_range(b).0, bucket_range(b - 1).1 + 1);
        }
    }

    #[test]
    fn scans_events_and_batches() {
        let mut seen = Vec::new();
        scan_events(
            r#"{"op":"event","topic":"ticks","offset":7,"data":{"symbol":"A","price":1.5,"volume":42.0,"ts":1}}"#,
            |o, s| seen.push((o, s)),
        );
        scan_events(
            r#"{"op":"batch","events":[{"topic":"ticks","offset":8,"data":{"symbol":"A","price":1,"volume":3,"ts":1}},{"topic":"ticks","offset":9,"data":{"x":1}},{"topic":"ticks","offset":10,"data":{"volume":1.5}}]}"#,
            |o, s| seen.push((o, s)),
        );
        assert_eq!(seen, [(7, Some(42)), (8, Some(3)), (9, None), (10, None)]);
    }
}
