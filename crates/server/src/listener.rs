//! The accept loop: connection caps, socket options and the timeouts that
//! stop slow, idle or non-reading clients from holding sockets.
//!
//! Every accepted socket takes a [`Slot`] (global and per-address counts)
//! that lives inside the socket wrapper, so an upgraded WebSocket keeps
//! counting until it closes. Over a cap the connection is answered 503 with
//! `Retry-After` and closed: a WebSocket upgrade is refused the same way,
//! before it is upgraded, so the cap never needs a 1013 close.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

use super::config::ServerConfig;
use super::deadline::sleep_until_some;
use super::metrics::Metrics;
use super::rate_limit::client_key;
use super::sync::lock;

/// Seconds a refused client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 5;
/// Refusals being answered at once; past this a refused socket is just closed,
/// so a flood cannot spend descriptors on 503s.
const MAX_REFUSING: usize = 64;
/// Descriptors kept free for the database, static files and refusals when
/// the connection cap is fitted to the open-file limit.
const RESERVED_FDS: u64 = 128;
/// TCP keepalive: first probe after this much silence, then every interval.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The accept loop's limits, from the command line.
#[derive(Clone, Debug)]
pub struct EdgeLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

impl EdgeLimits {
    pub fn from_config(config: &ServerConfig) -> Self {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Self {
            header_timeout: secs(config.header_timeout_secs),
            idle_timeout: secs(config.idle_timeout_secs),
            body_timeout: secs(config.body_timeout_secs),
            write_timeout: secs(config.write_timeout_secs),
            max_connections: (config.max_connections as usize).max(1),
            max_connections_per_ip: (config.max_connections_per_ip as usize).max(1),
        }
    }

    /// Lowers the global cap so that connections cannot exhaust the
    /// process's descriptors (which would stop `accept` and the database).
    fn fitted_to_fd_limit(mut self) -> Self {
        if let Some(soft) = open_file_limit() {
            let room = soft.saturating_sub(RESERVED_FDS).max(1) as usize;
            if self.max_connections > room {
                tracing::warn!(
                    requested = self.max_connections,
                    allowed = room,
                    open_file_limit = soft,
                    "--max-connections lowered to fit the open-file limit (raise `ulimit -n` for more)"
                );
                self.max_connections = room;
            }
        }
        self
    }
}

/// The soft `RLIMIT_NOFILE`, read from /proc (Linux); `None` elsewhere.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Counters of the accept loop, rendered into `/metrics`.
#[derive(Default)]
pub struct EdgeMetrics {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    pub refused_global: AtomicU64,
    pub refused_per_ip: AtomicU64,
    pub refused_dropped: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub write_timeouts: AtomicU64,
    /// Requests answered 421 by the Host allowlist (`guard.rs`).
    pub misdirected: AtomicU64,
    /// WebSocket writer tasks still blocked after the close grace, aborted (`ws.rs`).
    pub ws_writers_aborted: AtomicU64,
}

impl EdgeMetrics {
    pub fn render(&self, out: &mut String) {
        let mut one = |name: &str, help: &str, kind: &str, values: &[(&str, &AtomicU64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in values {
                let _ = writeln!(out, "{name}{labels} {}", value.load(Relaxed));
            }
        };
        one(
            "pulse_connections_open",
            "Open TCP connections (HTTP and WebSocket).",
            "gauge",
            &[("", &self.open)],
        );
        one(
            "pulse_connections_accepted_total",
            "TCP connections admitted under the caps.",
            "counter",
            &[("", &self.accepted)],
        );
        one(
            "pulse_connections_refused_total",
            "Connections refused with 503 (or closed unanswered) over a cap.",
            "counter",
            &[
                ("{reason=\"max_connections\"}", &self.refused_global),
                ("{reason=\"max_connections_per_ip\"}", &self.refused_per_ip),
                ("{reason=\"unanswered\"}", &self.refused_dropped),
            ],
        );
        one(
            "pulse_connection_timeouts_total",
            "Connections closed or requests cut by a timeout.",
            "counter",
            &[
                ("{kind=\"header\"}", &self.header_timeouts),
                ("{kind=\"idle\"}", &self.idle_timeouts),
                ("{kind=\"body\"}", &self.body_timeouts),
                ("{kind=\"write\"}", &self.write_timeouts),
            ],
        );
        one(
            "pulse_http_misdirected_total",
            "Requests refused with 421 for a Host this server does not serve.",
            "counter",
            &[("", &self.misdirected)],
        );
        one(
            "pulse_ws_writers_aborted_total",
            "WebSocket writer tasks aborted because they were still blocked after the close grace.",
            "counter",
            &[("", &self.ws_writers_aborted)],
        );
    }
}

/// Accepts until `stop`, then waits for the HTTP connections to finish
/// their requests in flight (upgraded WebSockets close on `stop` themselves).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let limits = Arc::new(limits.fitted_to_fd_limit());
    let tracker = Arc::new(Tracker::new(&limits, Arc::clone(&metrics)));
    let refusing = Arc::new(AtomicUsize::new(0));
    // Every connection task holds a sender; `recv` ends once all are gone.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        configure_socket(&stream);
        let alive = alive.clone();
        match tracker.admit(peer.ip()) {
            Ok(slot) => {
                metrics.edge.accepted.fetch_add(1, Relaxed);
                let connection = Connection {
                    router: router.clone(),
                    peer,
                    limits: Arc::clone(&limits),
                    metrics: Arc::clone(&metrics),
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    connection.run(stream, slot, stop).await;
                    drop(alive);
                });
            }
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::Global(_) => &metrics.edge.refused_global,
                    Refusal::PerIp(_) => &metrics.edge.refused_per_ip,
                };
                counter.fetch_add(1, Relaxed);
                if refusing.fetch_add(1, Relaxed) >= MAX_REFUSING {
                    refusing.fetch_sub(1, Relaxed);
                    metrics.edge.refused_dropped.fetch_add(1, Relaxed);
                    continue;
                }
                let refusing = Arc::clone(&refusing);
                let deadline = limits.header_timeout.min(Duration::from_secs(5));
                tokio::spawn(async move {
                    refuse(stream, refusal, deadline).await;
                    refusing.fetch_sub(1, Relaxed);
                    drop(alive);
                });
            }
        }
    }
    drop(listener);
    drop(alive);
    let _ = all_done.recv().await;
    Ok(())
}

/// Resolves once `stop` is set (the watch guard is dropped here, so the
/// futures holding this stay `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Connection-level accept errors are the peer's; others (out of
/// descriptors) get a pause so the loop does not spin.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Nagle's algorithm would hold small event frames back until the previous
/// one is acknowledged; keepalive finds peers that vanished without a FIN.
fn configure_socket(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "linux",
        target_os = "macos",
        target_os = "freebsd",
        target_os = "windows"
    ))]
    let keepalive = keepalive.with_interval(KEEPALIVE_INTERVAL);
    #[cfg(not(any(
        target_os = "linux",
        target_os = "macos",
        target_os = "freebsd",
        target_os = "windows"
    )))]
    let _ = KEEPALIVE_INTERVAL;
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "could not set TCP keepalive");
    }
}

/// Why a connection was not admitted (the cap that was hit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Global(usize),
    PerIp(usize),
}

/// Open connections, in total and per client address.
struct Tracker {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Only addresses with open connections (bounded by `max_total`).
    per_ip: HashMap<IpAddr, usize>,
}

impl Tracker {
    fn new(limits: &EdgeLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            counts: Mutex::default(),
            metrics,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        lock(&self.counts)
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = client_key(ip);
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(Refusal::Global(self.max_total));
        }
        let mine = counts.per_ip.entry(key).or_default();
        if *mine >= self.max_per_ip {
            return Err(Refusal::PerIp(self.max_per_ip));
        }
        *mine += 1;
        counts.total += 1;
        self.metrics.edge.open.fetch_add(1, Relaxed);
        Ok(Slot {
            tracker: Arc::clone(self),
            key,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.per_ip.get_mut(&key) {
            *mine -= 1;
            if *mine == 0 {
                counts.per_ip.remove(&key);
            }
        }
        self.metrics.edge.open.fetch_sub(1, Relaxed);
    }
}

/// One admitted connection; released when the socket is dropped.
struct Slot {
    tracker: Arc<Tracker>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.tracker.release(self.key);
    }
}

/// Answers the first request of a refused connection with 503 and closes it.
async fn refuse(stream: TcpStream, refusal: Refusal, deadline: Duration) {
    let service = hyper::service::service_fn(move |_request: Request<Incoming>| async move {
        Ok::<_, Infallible>(refusal_response(refusal))
    });
    let connection = http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(deadline, connection).await;
}

fn refusal_response(refusal: Refusal) -> Response<Body> {
    let message = match refusal {
        Refusal::Global(max) => format!(
            "the server has {max} connections open (--max-connections); retry later"
        ),
        Refusal::PerIp(max) => format!(
            "this client address has {max} connections open (--max-connections-per-ip); close some and retry"
        ),
    };
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": message,
        "retry_after_secs": RETRY_AFTER_SECS,
    }});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An admitted connection: hyper's HTTP/1 server with our timeouts around it.
struct Connection {
    router: Router,
    peer: SocketAddr,
    limits: Arc<EdgeLimits>,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn run(self, stream: TcpStream, slot: Slot, mut stop: watch::Receiver<bool>) {
        let activity = Arc::new(Activity::new());
        let io = EdgeStream {
            _slot: slot,
            stream,
            activity: Arc::clone(&activity),
            write_timeout: self.limits.write_timeout,
            write_stall: None,
            timed_out: false,
            metrics: Arc::clone(&self.metrics),
        };
        let service = EdgeService {
            router: self.router,
            peer: self.peer,
            activity: Arc::clone(&activity),
            body_timeout: self.limits.body_timeout,
            metrics: Arc::clone(&self.metrics),
        };
        // Our watchdog replaces hyper's header timer, which would also
        // close keep-alive connections after the header timeout.
        let connection = http1::Builder::new()
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        let limits = &self.limits;
        let mut closing = false;
        // Set once an idle connection was asked to close: what is left of it
        // gets this long, then it is dropped.
        let mut hard_close: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, peer = %self.peer, "connection ended with an error");
                    }
                    return;
                }
                () = stopped(&mut stop), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = sleep_until_some(hard_close), if hard_close.is_some() => return,
                expired = activity.expired(limits), if hard_close.is_none() => match expired {
                    Expired::Headers => {
                        self.metrics.edge.header_timeouts.fetch_add(1, Relaxed);
                        return;
                    }
                    Expired::Idle => {
                        self.metrics.edge.idle_timeouts.fetch_add(1, Relaxed);
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        hard_close = Some(Instant::now() + limits.header_timeout);
                    }
                },
            }
        }
    }
}

/// Phases of an HTTP/1 connection, as the watchdog sees them.
const HEADERS: u64 = 0;
const IDLE: u64 = 1;
const BUSY: u64 = 2;

/// What a connection is doing and since when, shared by the socket (bytes
/// read), the service (requests) and the watchdog.
struct Activity {
    started: Instant,
    /// Phase in the low 2 bits, milliseconds since `started` above them:
    /// one atomic, so a phase is never read with another phase's time.
    state: AtomicU64,
    in_flight: AtomicU32,
}

#[derive(Debug, PartialEq, Eq)]
enum Expired {
    /// A request's headers did not arrive in time (or none since connecting).
    Headers,
    /// No request for the idle timeout.
    Idle,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            state: AtomicU64::new(HEADERS),
            in_flight: AtomicU32::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn set(&self, phase: u64) {
        self.state.store(self.now_ms() << 2 | phase, Relaxed);
    }

    /// Bytes arrived: on an idle connection they start the next request's
    /// header clock (later bytes never restart it).
    fn bytes_read(&self) {
        let current = self.state.load(Relaxed);
        if current & 3 == IDLE {
            let _ = self.state.compare_exchange(
                current,
                self.now_ms() << 2 | HEADERS,
                Relaxed,
                Relaxed,
            );
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
        self.set(BUSY);
    }

    fn response_done(&self) {
        if self.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.set(IDLE);
        }
    }

    /// Resolves when the current phase has lasted longer than its limit.
    async fn expired(&self, limits: &EdgeLimits) -> Expired {
        loop {
            let state = self.state.load(Relaxed);
            let since = self.started + Duration::from_millis(state >> 2);
            let (limit, verdict) = match state & 3 {
                HEADERS => (limits.header_timeout, Some(Expired::Headers)),
                IDLE => (limits.idle_timeout, Some(Expired::Idle)),
                // A request is being served: look again later.
                _ => (limits.header_timeout.min(limits.idle_timeout), None),
            };
            let deadline = since + limit;
            match verdict {
                Some(verdict) if Instant::now() >= deadline => return verdict,
                Some(_) => tokio::time::sleep_until(deadline).await,
                None => tokio::time::sleep(limit).await,
            }
        }
    }
}

/// The accepted socket: holds the connection's [`Slot`], reports reads to
/// the watchdog and fails a write that makes no progress for the write
/// timeout (then shuts the socket, so a WebSocket's reader ends too).
struct EdgeStream {
    /// First, so the count drops before the socket closes.
    _slot: Slot,
    stream: TcpStream,
    activity: Arc<Activity>,
    write_timeout: Duration,
    /// Armed while a write is blocked.
    write_stall: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
    metrics: Arc<Metrics>,
}

impl EdgeStream {
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.timed_out {
            return Poll::Ready(Err(write_timed_out()));
        }
        match write(Pin::new(&mut self.stream), cx) {
            Poll::Pending => {
                let timeout = self.write_timeout;
                let stall = self
                    .write_stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stall.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.write_stall = None;
                self.timed_out = true;
                self.metrics.edge.write_timeouts.fetch_add(1, Relaxed);
                let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
                Poll::Ready(Err(write_timed_out()))
            }
            ready => {
                self.write_stall = None;
                ready
            }
        }
    }
}

fn write_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the peer did not read for the write timeout",
    )
}

impl AsyncRead for EdgeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_read();
        }
        result
    }
}

impl AsyncWrite for EdgeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard_write(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard_write(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .guard_write(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .guard_write(cx, |stream, cx| stream.poll_shutdown(cx))
    }
}

/// Hands requests to the router with the client address, a body deadline,
/// and a response body that tells the watchdog when the response is done.
#[derive(Clone)]
struct EdgeService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl hyper::service::Service<Request<Incoming>> for EdgeService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        let done = ResponseDone(Arc::clone(&self.activity));
        let cut = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.body_timeout;
        let mut request = request.map(|body| TimedBody {
            inner: body,
            deadline,
            timer: None,
            cut: Arc::clone(&cut),
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        let body_timeout = self.body_timeout;
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let response = match tower::Service::call(&mut router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let response = if cut.load(Relaxed) {
                metrics.edge.body_timeouts.fetch_add(1, Relaxed);
                body_timeout_response(body_timeout)
            } else {
                response
            };
            Ok(response.map(|body| {
                Body::new(TrackedBody {
                    inner: body,
                    _done: done,
                })
            }))
        })
    }
}

fn body_timeout_response(limit: Duration) -> Response<Body> {
    let body = serde_json::json!({"error": {
        "code": "body_timeout",
        "message": format!(
            "the request body did not arrive within {} s (--body-timeout-secs)",
            limit.as_secs()
        ),
    }});
    let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Marks the response finished when its body is dropped (written or abandoned).
struct ResponseDone(Arc<Activity>);

impl Drop for ResponseDone {
    fn drop(&mut self) {
        self.0.response_done();
    }
}

/// A response body that keeps the connection "busy" until it is dropped.
struct TrackedBody {
    inner: Body,
    _done: ResponseDone,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must arrive in full by `deadline`; past it the read
/// fails and `cut` tells the service to answer 408.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    /// Created on the first read that has to wait.
    timer: Option<Pin<Box<Sleep>>>,
    cut: Arc<AtomicBool>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if this.cut.load(Relaxed) {
            return Poll::Ready(Some(Err(body_timed_out())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.cut.store(true, Relaxed);
                Poll::Ready(Some(Err(body_timed_out())))
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn body_timed_out() -> axum::BoxError {
    Box::new(io::Error::new(
        io::ErrorKind::TimedOut,
        "request body timeout",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(total: usize, per_ip: usize) -> Arc<Tracker> {
        let limits = EdgeLimits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            max_connections: total,
            max_connections_per_ip: per_ip,
        };
        Arc::new(Tracker::new(&limits, Arc::new(Metrics::default())))
    }

    #[test]
    fn caps_count_per_address_and_in_total_and_free_on_drop() {
        let tracker = tracker(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = tracker.admit(a).unwrap();
        let _a2 = tracker.admit(a).unwrap();
        assert_eq!(tracker.admit(a).err(), Some(Refusal::PerIp(2)));
        let _b1 = tracker.admit(b).unwrap();
        assert_eq!(tracker.admit(b).err(), Some(Refusal::Global(3)));
        drop(a1);
        let _a3 = tracker.admit(a).unwrap();
        assert_eq!(tracker.metrics.edge.open.load(Relaxed), 3);
    }

    #[test]
    fn released_addresses_leave_the_map() {
        let tracker = tracker(10, 10);
        let slot = tracker.admit("10.0.0.1".parse().unwrap()).unwrap();
        drop(slot);
        assert!(tracker.counts().per_ip.is_empty());
        assert_eq!(tracker.counts().total, 0);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_key(one), client_key(other));
        assert_ne!(
            client_key(one),
            client_key("2001:db8:1:3::1".parse().unwrap())
        );
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn watchdog_gives_headers_and_idle_their_own_limits() {
        let ms = Duration::from_millis;
        let limits = EdgeLimits {
            header_timeout: ms(50),
            idle_timeout: ms(300),
            body_timeout: ms(1),
            write_timeout: ms(1),
            max_connections: 1,
            max_connections_per_ip: 1,
        };
        let activity = Activity::new();
        let start = Instant::now();
        assert_eq!(activity.expired(&limits).await, Expired::Headers);
        assert!(start.elapsed() >= ms(50));
        activity.request_started();
        activity.response_done();
        let idle_from = Instant::now();
        assert_eq!(activity.expired(&limits).await, Expired::Idle);
        assert!(
            idle_from.elapsed() >= ms(300),
            "idle is not cut at the header limit"
        );
        // A byte after idling starts the header clock; more bytes do not restart it.
        activity.set(IDLE);
        activity.bytes_read();
        let first = activity.state.load(Relaxed);
        assert_eq!(first & 3, HEADERS);
        tokio::time::sleep(ms(30)).await;
        activity.bytes_read();
        assert_eq!(
            activity.state.load(Relaxed),
            first,
            "header clock restarted"
        );
        assert_eq!(activity.expired(&limits).await, Expired::Headers);
        // While a request is served nothing expires.
        activity.request_started();
        let busy = tokio::time::timeout(ms(400), activity.expired(&limits)).await;
        assert!(busy.is_err());
    }
}
