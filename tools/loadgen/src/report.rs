//! The final report: human-readable lines, then one `RESULT {json}` line.
//! BENCHMARKS.md quotes the lines and scripts parse the JSON, so the labels,
//! units and keys are an interface; the tests pin them.

use std::fmt::Write as _;

use crate::fleet::Connected;
use crate::metrics::ServerMetrics;
use crate::publishing::Published;
use crate::tally::Tally;

/// Server gauges before connecting, after connecting (idle) and at the end.
pub struct Memory {
    pub before: ServerMetrics,
    pub idle: ServerMetrics,
    /// NaN in `--idle` mode and when the last read failed.
    pub end: ServerMetrics,
}

impl Memory {
    /// Server RSS added per subscribed connection.
    pub fn per_connection(&self, connections: usize) -> f64 {
        (self.idle.rss - self.before.rss) / connections as f64
    }
}

pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// The report of an `--idle` run.
pub fn idle(connected: &Connected, memory: &Memory) -> String {
    let Connected { ok, failed, .. } = *connected;
    let connect_secs = connected.secs;
    let per_connection = memory.per_connection(ok);
    let summary = serde_json::json!({
        "mode": "idle",
        "subscribers": ok,
        "connect_failures": failed,
        "connect_secs": connect_secs,
        "rss_before": memory.before.rss,
        "rss_idle": memory.idle.rss,
        "rss_per_connection_bytes": per_connection,
    });
    let mut out = String::new();
    let _ = writeln!(out, "\n== idle connections ==");
    let _ = writeln!(
        out,
        "subscribers connected      {ok} ({failed} failed, {connect_secs:.1} s)"
    );
    let _ = writeln!(out, "server RSS before          {}", mib(memory.before.rss));
    let _ = writeln!(out, "server RSS connected       {}", mib(memory.idle.rss));
    let _ = writeln!(
        out,
        "RSS per idle connection    {per_connection:.0} bytes ({:.2} KiB)",
        per_connection / 1024.0
    );
    let _ = writeln!(out, "RESULT {summary}");
    out
}

/// Everything the report of a publishing run shows.
pub struct Results<'a> {
    /// `--rate` and `--duration`: the target, and the window rates are over.
    pub rate: f64,
    pub duration: f64,
    pub connected: &'a Connected,
    pub published: &'a Published,
    /// Published events times subscribers connected.
    pub expected: u64,
    /// When the drain ended, seconds since publishing started.
    pub last_delivery_secs: f64,
    pub tally: &'a Tally,
    /// Events this run did not publish.
    pub foreign: u64,
    pub memory: Memory,
}

/// The report of a publishing run.
pub fn results(r: &Results) -> String {
    let Connected { ok, failed, .. } = *r.connected;
    let connect_secs = r.connected.secs;
    let (tally, memory) = (r.tally, &r.memory);
    let published = r.published.events;
    let publish_secs = r.published.secs;
    let publish_errors = r.published.errors;
    let publisher_lag_ms = r.published.lag_max_ms;
    let expected = r.expected;
    let last_delivery_secs = r.last_delivery_secs;
    let ours = tally.delivered();
    let frames = tally.frames;
    let (duplicates, gap_events) = (tally.duplicates, tally.gap_events);
    let (conflation_notices, conflated_skipped) =
        (tally.conflation_notices, tally.conflated_skipped);
    let conflated_clients = tally.conflated_clients;
    let (resubscribed, disconnects, keepers) =
        (tally.resubscribed, tally.disconnects, tally.keepers);
    let loss_pct = tally.loss_pct(expected);
    let keepers_loss_pct = tally.keepers_loss_pct(published);
    let publish_rate = published as f64 / r.duration;
    let delivered_rate = ours as f64 / r.duration;
    let hist = &tally.hist;
    let (p50, p90, p99, p999) = (
        hist.quantile_ms(0.50),
        hist.quantile_ms(0.90),
        hist.quantile_ms(0.99),
        hist.quantile_ms(0.999),
    );
    let max_ms = hist.max_ms();
    let per_connection = memory.per_connection(ok);
    let events_per_frame = if frames > 0 {
        tally.events as f64 / frames as f64
    } else {
        0.0
    };

    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "\n== results ==");
    let _ = writeln!(o, "subscribers                {ok} ({failed} failed to connect, {connect_secs:.1} s to connect)");
    let _ = writeln!(
        o,
        "published                  {published} events in {publish_secs:.1} s = {publish_rate:.0} ev/s (target {}; {publish_errors} publish errors, worst publisher lag {publisher_lag_ms:.0} ms)",
        r.rate
    );
    let _ = writeln!(o, "expected deliveries        {expected}");
    let _ = writeln!(
        o,
        "delivered                  {ours} events in {frames} frames ({events_per_frame:.1} events/frame), drain done at t={last_delivery_secs:.1} s"
    );
    let _ = writeln!(
        o,
        "delivered events/s         {delivered_rate:.0} (over the {} s publish window)",
        r.duration
    );
    let _ = writeln!(o, "loss                       {loss_pct:.3} % (clients that kept up: {keepers} with {keepers_loss_pct:.3} % loss)");
    let _ = writeln!(o, "duplicates                 {duplicates}");
    let _ = writeln!(o, "offset gaps                {gap_events} events");
    let _ = writeln!(o, "conflation notices         {conflation_notices} ({conflated_skipped} events skipped, {conflated_clients} clients)");
    let _ = writeln!(o, "resubscribed after lag     {resubscribed}");
    let _ = writeln!(
        o,
        "disconnects                {disconnects}{}",
        tally
            .first_disconnect
            .as_ref()
            .map(|r| format!(" (first: {r})"))
            .unwrap_or_default()
    );
    if tally.errors > 0 || r.foreign > 0 {
        let _ = writeln!(
            o,
            "subscriber errors          {}; foreign events {}",
            tally.errors, r.foreign
        );
    }
    let _ = writeln!(
        o,
        "latency p50/p90/p99/p99.9  {p50:.2} / {p90:.2} / {p99:.2} / {p999:.2} ms"
    );
    let _ = writeln!(o, "latency max                {max_ms:.2} ms");
    let _ = writeln!(
        o,
        "server RSS                 before {} / connected idle {} / end {}",
        mib(memory.before.rss),
        mib(memory.idle.rss),
        mib(memory.end.rss)
    );
    let _ = writeln!(
        o,
        "server RSS per connection  {per_connection:.0} bytes ({:.2} KiB)",
        per_connection / 1024.0
    );
    let summary = serde_json::json!({
        "mode": "publish",
        "subscribers": ok,
        "connect_failures": failed,
        "rate_target": r.rate,
        "duration": r.duration,
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
        "rss_before": memory.before.rss, "rss_idle": memory.idle.rss, "rss_end": memory.end.rss,
        "rss_per_connection_bytes": per_connection,
    });
    let _ = writeln!(o, "RESULT {summary}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sub_stats::SubStats;
    use std::time::Instant;

    const MIB: f64 = 1024.0 * 1024.0;

    fn connected() -> Connected {
        Connected {
            ok: 2,
            failed: 1,
            secs: 0.31,
            first_error: Some("refused".into()),
        }
    }

    fn memory() -> Memory {
        let gauges = |rss| ServerMetrics {
            rss,
            connections: 2.0,
        };
        Memory {
            before: gauges(10.0 * MIB),
            idle: gauges(10.0 * MIB + 2.0 * 7168.0),
            end: gauges(11.0 * MIB),
        }
    }

    /// Two subscribers of a 10-event run: one kept up, one received 9
    /// (one of them twice) in single-event frames and was then closed.
    fn tally() -> Tally {
        let mut kept = SubStats::starting_at(0);
        let mut closed = SubStats::starting_at(0);
        (kept.events, kept.frames) = (10, 5);
        (closed.events, closed.frames, closed.duplicates) = (9, 9, 1);
        closed.disconnected = Some("close 4008 too slow".into());
        for _ in 0..10 {
            kept.latency.record(2_000_000);
        }
        for _ in 0..9 {
            closed.latency.record(2_000_000);
        }
        Tally::of(vec![kept, closed])
    }

    fn result_json(report: &str) -> serde_json::Value {
        let line = report.lines().find_map(|l| l.strip_prefix("RESULT "));
        serde_json::from_str(line.unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn the_idle_report_is_unchanged() {
        let report = idle(&connected(), &memory());
        let expected = "\n== idle connections ==\n\
            subscribers connected      2 (1 failed, 0.3 s)\n\
            server RSS before          10.0 MiB\n\
            server RSS connected       10.0 MiB\n\
            RSS per idle connection    7168 bytes (7.00 KiB)\n\
            RESULT {\"connect_failures\":1,\"connect_secs\":0.31,\"mode\":\"idle\",\
            \"rss_before\":10485760.0,\"rss_idle\":10500096.0,\
            \"rss_per_connection_bytes\":7168.0,\"subscribers\":2}\n";
        assert_eq!(report, expected);
    }

    #[test]
    fn the_results_report_is_unchanged() {
        let (connected, tally) = (connected(), tally());
        let published = Published {
            events: 10,
            errors: 0,
            lag_max_ms: 1.4,
            start: Instant::now(),
            secs: 3.26,
        };
        let run = Results {
            rate: 200.0,
            duration: 3.0,
            connected: &connected,
            published: &published,
            expected: 20,
            last_delivery_secs: 3.5,
            tally: &tally,
            foreign: 0,
            memory: memory(),
        };
        let report = results(&run);
        let (text, json) = report.split_at(report.find("RESULT ").unwrap_or(0));
        let expected = "\n== results ==\n\
            subscribers                2 (1 failed to connect, 0.3 s to connect)\n\
            published                  10 events in 3.3 s = 3 ev/s (target 200; 0 publish errors, worst publisher lag 1 ms)\n\
            expected deliveries        20\n\
            delivered                  19 events in 14 frames (1.4 events/frame), drain done at t=3.5 s\n\
            delivered events/s         6 (over the 3 s publish window)\n\
            loss                       10.000 % (clients that kept up: 1 with 0.000 % loss)\n\
            duplicates                 1\n\
            offset gaps                0 events\n\
            conflation notices         0 (0 events skipped, 0 clients)\n\
            resubscribed after lag     0\n\
            disconnects                1 (first: close 4008 too slow)\n\
            latency p50/p90/p99/p99.9  2.00 / 2.00 / 2.00 / 2.00 ms\n\
            latency max                2.00 ms\n\
            server RSS                 before 10.0 MiB / connected idle 10.0 MiB / end 11.0 MiB\n\
            server RSS per connection  7168 bytes (7.00 KiB)\n";
        assert_eq!(text, expected);

        let value = result_json(json);
        let keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let expected_keys = [
            "conflated_skipped",
            "conflation_notices",
            "connect_failures",
            "delivered",
            "delivered_per_sec",
            "disconnects",
            "duplicates",
            "duration",
            "expected",
            "frames",
            "gap_events",
            "keepers",
            "keepers_loss_pct",
            "loss_pct",
            "max_ms",
            "mode",
            "p50_ms",
            "p90_ms",
            "p999_ms",
            "p99_ms",
            "publish_errors",
            "publish_rate",
            "published",
            "rate_target",
            "resubscribed",
            "rss_before",
            "rss_end",
            "rss_idle",
            "rss_per_connection_bytes",
            "subscribers",
        ];
        assert_eq!(keys, expected_keys);
        assert_eq!(value["mode"], "publish");
        assert_eq!(
            (value["published"].as_u64(), value["delivered"].as_u64()),
            (Some(10), Some(19))
        );
        assert_eq!(value["loss_pct"], 10.0);
        assert_eq!(value["rss_end"], 11.0 * MIB);
    }

    #[test]
    fn subscriber_errors_and_foreign_events_get_a_line_only_when_present() {
        let render = |foreign, errors| {
            let (connected, mut tally) = (connected(), tally());
            tally.errors = errors;
            let published = Published {
                events: 10,
                errors: 0,
                lag_max_ms: 0.0,
                start: Instant::now(),
                secs: 3.0,
            };
            results(&Results {
                rate: 200.0,
                duration: 3.0,
                connected: &connected,
                published: &published,
                expected: 20,
                last_delivery_secs: 3.5,
                tally: &tally,
                foreign,
                memory: memory(),
            })
        };
        assert!(!render(0, 0).contains("subscriber errors"));
        let line = "\nsubscriber errors          0; foreign events 4\nlatency p50";
        assert!(render(4, 0).contains(line));
        assert!(render(0, 3).contains("subscriber errors          3; foreign events 0\n"));
    }
}
