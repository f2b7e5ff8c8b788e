//! Counters for `/metrics`, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use pulse_core::protocol::ErrorCode;

use super::fanout::TopicReport;
use super::sync::lock;

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub conflations: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
    pub dead_peer_disconnects: AtomicU64,
    /// Connections, caps and timeouts of the accept loop (`listener.rs`).
    pub edge: super::listener::EdgeMetrics,
    protocol_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Dashboard and ingest writes refused at admission, by error code.
    write_rejections: Mutex<BTreeMap<&'static str, u64>>,
    delivery_latency: LatencyHistogram,
}

/// Name, help, type and value of a metric reported per topic.
type PerTopicMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TopicReport) -> u64,
);

/// Upper bounds (ms) of the delivery latency buckets.
const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000];

/// Cumulative-on-render histogram of publish-to-write latency in ms.
#[derive(Default)]
struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_ms: AtomicU64,
    count: AtomicU64,
}

impl Metrics {
    /// Records how long an event took from its producer timestamp to being
    /// written to a subscriber (producer and server clocks must agree).
    pub fn observe_delivery(&self, latency_ms: u64) {
        let h = &self.delivery_latency;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&bound| latency_ms <= bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        h.buckets[bucket].fetch_add(1, Relaxed);
        h.sum_ms.fetch_add(latency_ms, Relaxed);
        h.count.fetch_add(1, Relaxed);
    }

    pub fn protocol_error(&self, code: ErrorCode) {
        let mut errors = lock(&self.protocol_errors);
        *errors.entry(code.as_str()).or_default() += 1;
    }

    /// Counts a write refused with `code` (`forbidden`, `unauthorized`, `rate_limited`).
    pub fn write_rejected(&self, code: &'static str) {
        let mut rejections = lock(&self.write_rejections);
        *rejections.entry(code).or_default() += 1;
    }

    /// Prometheus exposition text, with the hub's per-topic figures.
    pub fn render(&self, topics: &[TopicReport]) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, kind: &str, value: u64| {
            write_metric(&mut out, name, help, kind, value)
        };
        counter(
            "pulse_ws_connections",
            "Open WebSocket connections.",
            "gauge",
            self.connections.load(Relaxed),
        );
        counter(
            "pulse_ws_connections_total",
            "WebSocket connections accepted.",
            "counter",
            self.connections_total.load(Relaxed),
        );
        counter(
            "pulse_ws_frames_out_total",
            "Frames written to WebSocket clients.",
            "counter",
            self.frames_out.load(Relaxed),
        );
        counter(
            "pulse_ws_bytes_out_total",
            "Bytes written to WebSocket clients.",
            "counter",
            self.bytes_out.load(Relaxed),
        );
        counter(
            "pulse_ws_conflations_total",
            "Times a slow consumer's market data was conflated.",
            "counter",
            self.conflations.load(Relaxed),
        );
        counter(
            "pulse_ws_slow_consumer_disconnects_total",
            "Connections closed with 4008 for staying over their queue budget.",
            "counter",
            self.slow_consumer_disconnects.load(Relaxed),
        );
        counter(
            "pulse_ws_dead_peer_disconnects_total",
            "Connections dropped for missing heartbeats.",
            "counter",
            self.dead_peer_disconnects.load(Relaxed),
        );
        counter(
            "pulse_process_resident_memory_bytes",
            "Resident set size of the server process.",
            "gauge",
            resident_memory_bytes(),
        );
        self.edge.render(&mut out);
        let _ = writeln!(out, "# HELP pulse_ws_protocol_errors_total Error frames sent, by code.\n# TYPE pulse_ws_protocol_errors_total counter");
        for (code, count) in lock(&self.protocol_errors).iter() {
            let _ = writeln!(
                out,
                "pulse_ws_protocol_errors_total{{code=\"{code}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP pulse_write_rejections_total Cross-site, unauthorized or rate-limited requests refused by the CSRF check and the server functions' admission, by code.\n# TYPE pulse_write_rejections_total counter");
        for (code, count) in lock(&self.write_rejections).iter() {
            let _ = writeln!(
                out,
                "pulse_write_rejections_total{{code=\"{code}\"}} {count}"
            );
        }
        // Topic names are validated ([a-z:A-Z0-9.-]), so they need no escaping.
        let per_topic: [PerTopicMetric; 3] = [
            (
                "pulse_topic_subscribers",
                "Subscribers per topic.",
                "gauge",
                |t| t.subscribers as u64,
            ),
            (
                "pulse_events_in_total",
                "Events published per topic.",
                "counter",
                |t| t.published,
            ),
            (
                "pulse_events_out_total",
                "Events written to subscribers per topic.",
                "counter",
                |t| t.delivered,
            ),
        ];
        for (name, help, kind, value) in per_topic {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for topic in topics {
                let _ = writeln!(out, "{name}{{topic=\"{}\"}} {}", topic.topic, value(topic));
            }
        }
        let h = &self.delivery_latency;
        let _ = writeln!(out, "# HELP pulse_delivery_latency_ms Producer timestamp to WebSocket write, in milliseconds.\n# TYPE pulse_delivery_latency_ms histogram");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
            cumulative += h.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "pulse_delivery_latency_ms_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += h.buckets[LATENCY_BUCKETS_MS.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "pulse_delivery_latency_ms_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "pulse_delivery_latency_ms_sum {}",
            h.sum_ms.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "pulse_delivery_latency_ms_count {}",
            h.count.load(Relaxed)
        );
        out
    }
}

/// Resident set size from /proc (Linux); 0 where that is not available.
pub fn resident_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// One metric without labels, with its help and type lines.
pub fn write_metric(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The limits model in `/metrics`: what is held now and each bound, so an
/// operator sees how close a node is to them (README, "Limits").
pub fn render_limits(held: &[(&str, &str, u64)], limits: &[(&str, f64)]) -> String {
    let mut out = String::with_capacity(1024);
    for (name, help, value) in held {
        write_metric(&mut out, name, help, "gauge", *value);
    }
    let _ = writeln!(
        out,
        "# HELP pulse_limit A configured bound (0 = unlimited where the README says so).\n# TYPE pulse_limit gauge"
    );
    for (name, value) in limits {
        let _ = writeln!(out, "pulse_limit{{name=\"{name}\"}} {value}");
    }
    out
}
