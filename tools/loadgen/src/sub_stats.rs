//! What one subscriber saw, counted per frame. Subscribers keep only
//! counters and a histogram so 10,000 of them stay cheap; they are merged
//! at the end (see `tally`).

use std::sync::atomic::Ordering;

use crate::frame::{is_event_frame, scan_events};
use crate::histogram::Recorder;
use crate::shared::Shared;

#[derive(Debug, Default)]
pub struct SubStats {
    pub events: u64,
    pub frames: u64,
    pub duplicates: u64,
    /// Events missing between consecutive offsets.
    pub gap_events: u64,
    pub conflation_notices: u64,
    pub conflated_skipped: u64,
    /// `subscribed` replies after the first one (server resumed after lagging).
    pub resubscribed: u64,
    pub errors: u64,
    /// Close reason when the connection ended before the run did.
    pub disconnected: Option<String>,
    /// Latencies of this run's events.
    pub latency: Recorder,
    /// Highest offset seen so far; the `subscribed` reply's offset at first.
    last_offset: u64,
}

impl SubStats {
    /// Stats of a subscriber whose `subscribed` reply carried `offset`.
    pub fn starting_at(offset: u64) -> Self {
        Self {
            last_offset: offset,
            ..Self::default()
        }
    }

    /// Counts one text frame received `received_ns` into the run.
    pub fn on_text(&mut self, text: &str, received_ns: u64, shared: &Shared) {
        if is_event_frame(text) {
            self.on_events(text, received_ns, shared);
        } else {
            self.on_control(text);
        }
    }

    fn on_events(&mut self, text: &str, received_ns: u64, shared: &Shared) {
        self.frames += 1;
        let mut ours = 0;
        scan_events(text, |offset, seq| {
            self.events += 1;
            if offset <= self.last_offset {
                self.duplicates += 1;
            } else {
                self.gap_events += offset - self.last_offset - 1;
                self.last_offset = offset;
            }
            match seq.and_then(|seq| shared.sends.sent_at(seq)) {
                Some(sent) => {
                    ours += 1;
                    self.latency.record(received_ns.saturating_sub(sent));
                }
                None => {
                    shared.foreign.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        shared.delivered.fetch_add(ours, Ordering::Relaxed);
    }

    /// Non-event frames are rare, so a full parse is fine here.
    fn on_control(&mut self, text: &str) {
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        match value["op"].as_str() {
            Some("conflated") => {
                self.conflation_notices += 1;
                self.conflated_skipped += value["skipped"].as_u64().unwrap_or(0);
            }
            Some("subscribed") => {
                // The server re-attached us after we lagged; the backlog follows.
                self.resubscribed += 1;
            }
            Some("error") => {
                self.errors += 1;
                if self.errors == 1 {
                    eprintln!("loadgen: subscriber got an error: {text}");
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(offset: u64, volume: u64) -> String {
        format!(
            r#"{{"op":"event","topic":"ticks","offset":{offset},"data":{{"symbol":"A","price":1.0,"volume":{volume}.0,"ts":1}}}}"#
        )
    }

    #[test]
    fn offsets_count_duplicates_and_gaps() {
        let shared = Shared::new(0);
        let mut stats = SubStats::starting_at(5);
        for offset in [5, 6, 9, 8, 10] {
            stats.on_text(&event(offset, 0), 0, &shared);
        }
        assert_eq!((stats.events, stats.frames), (5, 5));
        // 5 is the subscribe offset and 8 came after 9.
        assert_eq!(stats.duplicates, 2);
        // 7 and 8 were missing when 9 arrived.
        assert_eq!(stats.gap_events, 2);
    }

    #[test]
    fn only_this_runs_events_are_timed_and_delivered() {
        let shared = Shared::new(3);
        shared.sends.mark_sent(0);
        shared.sends.mark_sent(1);
        let sent = shared.sends.sent_at(1).unwrap_or(0);
        let mut stats = SubStats::starting_at(0);
        let batch = r#"{"op":"batch","events":[{"topic":"ticks","offset":1,"data":{"volume":0.0}},{"topic":"ticks","offset":2,"data":{"volume":1.0}},{"topic":"ticks","offset":3,"data":{"volume":2.0}},{"topic":"ticks","offset":4,"data":{"volume":77.0}}]}"#;
        stats.on_text(batch, sent + 5_000_000, &shared);
        assert_eq!((stats.events, stats.frames), (4, 1));
        // 2 was claimed by nobody and 77 is outside the table.
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 2);
        assert_eq!(shared.foreign.load(Ordering::Relaxed), 2);
        let mut hist = crate::histogram::Histogram::new();
        hist.merge(&stats.latency);
        assert_eq!(hist.total, 2);
        assert!((4.9..=5.2).contains(&hist.quantile_ms(0.5)));
    }

    #[test]
    fn control_frames_count_conflation_resubscribes_and_errors() {
        let shared = Shared::new(0);
        let mut stats = SubStats::starting_at(0);
        stats.on_text(
            r#"{"op":"conflated","topic":"ticks","skipped":12}"#,
            0,
            &shared,
        );
        stats.on_text(
            r#"{"op":"conflated","topic":"ticks","skipped":3}"#,
            0,
            &shared,
        );
        stats.on_text(
            r#"{"op":"subscribed","topic":"ticks","offset":40}"#,
            0,
            &shared,
        );
        stats.on_text(r#"{"op":"error","code":"rate_limited"}"#, 0, &shared);
        stats.on_text("not json", 0, &shared);
        assert_eq!((stats.conflation_notices, stats.conflated_skipped), (2, 15));
        assert_eq!((stats.resubscribed, stats.errors), (1, 1));
        assert_eq!((stats.events, stats.frames), (0, 0));
    }
}
