//! All subscribers' stats merged into the run's totals, and the loss figures
//! derived from them.

use crate::histogram::Histogram;
use crate::sub_stats::SubStats;

pub struct Tally {
    /// Latencies of this run's events; `hist.total` is what was delivered.
    pub hist: Histogram,
    /// Events of every origin (the events/frame figure).
    pub events: u64,
    pub frames: u64,
    pub duplicates: u64,
    pub gap_events: u64,
    pub conflation_notices: u64,
    pub conflated_skipped: u64,
    /// Subscribers that got at least one conflation notice.
    pub conflated_clients: u64,
    pub resubscribed: u64,
    pub errors: u64,
    pub disconnects: u64,
    pub first_disconnect: Option<String>,
    /// Subscribers that were neither disconnected nor conflated.
    pub keepers: u64,
    /// Unique events the keepers received.
    pub keepers_events: u64,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            hist: Histogram::new(),
            events: 0,
            frames: 0,
            duplicates: 0,
            gap_events: 0,
            conflation_notices: 0,
            conflated_skipped: 0,
            conflated_clients: 0,
            resubscribed: 0,
            errors: 0,
            disconnects: 0,
            first_disconnect: None,
            keepers: 0,
            keepers_events: 0,
        }
    }

    pub fn of(all: Vec<SubStats>) -> Self {
        let mut tally = Self::new();
        for stats in all {
            tally.add(stats);
        }
        tally
    }

    pub fn add(&mut self, stats: SubStats) {
        self.events += stats.events;
        self.frames += stats.frames;
        self.duplicates += stats.duplicates;
        self.gap_events += stats.gap_events;
        self.conflation_notices += stats.conflation_notices;
        self.conflated_skipped += stats.conflated_skipped;
        self.conflated_clients += u64::from(stats.conflation_notices > 0);
        self.resubscribed += stats.resubscribed;
        self.errors += stats.errors;
        if let Some(reason) = stats.disconnected {
            self.disconnects += 1;
            self.first_disconnect.get_or_insert(reason);
        } else if stats.conflation_notices == 0 {
            self.keepers += 1;
            self.keepers_events += stats.events - stats.duplicates;
        }
        self.hist.merge(&stats.latency);
    }

    /// This run's events delivered, duplicates included.
    pub fn delivered(&self) -> u64 {
        self.hist.total
    }

    /// Share of the `expected` deliveries (published × subscribers) that no
    /// subscriber received.
    pub fn loss_pct(&self, expected: u64) -> f64 {
        let unique = self.delivered().saturating_sub(self.duplicates);
        percent_missing(expected, unique)
    }

    /// The same among subscribers that kept up, for whom no loss is expected.
    pub fn keepers_loss_pct(&self, published: u64) -> f64 {
        percent_missing(self.keepers * published, self.keepers_events)
    }
}

fn percent_missing(expected: u64, got: u64) -> f64 {
    if expected > 0 {
        100.0 * expected.saturating_sub(got) as f64 / expected as f64
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(events: u64, duplicates: u64, latencies: u64) -> SubStats {
        let mut stats = SubStats::starting_at(0);
        stats.events = events;
        stats.frames = events;
        stats.duplicates = duplicates;
        for _ in 0..latencies {
            stats.latency.record(1_000_000);
        }
        stats
    }

    #[test]
    fn keepers_are_subscribers_neither_disconnected_nor_conflated() {
        let kept = stats(10, 1, 10);
        let mut closed = stats(4, 0, 4);
        closed.disconnected = Some("close 4008 too slow".into());
        let mut second = stats(2, 0, 2);
        second.disconnected = Some("connection ended".into());
        let mut conflated = stats(6, 0, 6);
        conflated.conflation_notices = 2;
        conflated.conflated_skipped = 4;
        let tally = Tally::of(vec![kept, closed, second, conflated]);
        assert_eq!((tally.keepers, tally.keepers_events), (1, 9));
        assert_eq!(tally.disconnects, 2);
        assert_eq!(
            tally.first_disconnect.as_deref(),
            Some("close 4008 too slow")
        );
        assert_eq!((tally.conflated_clients, tally.conflated_skipped), (1, 4));
        assert_eq!((tally.events, tally.frames, tally.duplicates), (22, 22, 1));
        assert_eq!(tally.delivered(), 22);
    }

    #[test]
    fn loss_counts_unique_deliveries_against_the_expected() {
        // Two subscribers, 10 events published: 20 expected, 19 received of
        // which 1 twice, so 18 unique.
        let tally = Tally::of(vec![stats(10, 0, 10), stats(9, 1, 9)]);
        assert!((tally.loss_pct(20) - 10.0).abs() < 1e-9);
        assert!((tally.keepers_loss_pct(10) - 10.0).abs() < 1e-9);
        assert_eq!(tally.loss_pct(0), 0.0);
        assert_eq!(Tally::new().keepers_loss_pct(10), 0.0);
    }
}
