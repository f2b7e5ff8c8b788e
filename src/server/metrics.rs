//! Counters for `/metrics`, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::protocol::ErrorCode;

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub conflations: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
    pub dead_peer_disconnects: AtomicU64,
    protocol_errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn protocol_error(&self, code: ErrorCode) {
        let mut errors = self
            .protocol_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *errors.entry(code.as_str()).or_default() += 1;
    }

    /// Prometheus exposition text; `subscribers` are per-topic subscriber counts.
    pub fn render(&self, subscribers: &[(std::sync::Arc<str>, usize)]) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
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
        let _ = writeln!(out, "# HELP pulse_ws_protocol_errors_total Error frames sent, by code.\n# TYPE pulse_ws_protocol_errors_total counter");
        for (code, count) in self
            .protocol_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "pulse_ws_protocol_errors_total{{code=\"{code}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP pulse_topic_subscribers Subscribers per topic.\n# TYPE pulse_topic_subscribers gauge");
        for (topic, count) in subscribers {
            // Topic names are validated ([a-z:A-Z0-9.-]), so they need no escaping.
            let _ = writeln!(out, "pulse_topic_subscribers{{topic=\"{topic}\"}} {count}");
        }
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
