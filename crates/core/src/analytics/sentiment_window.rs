//! Rolling sentiment of the most recent posts, overall or for one symbol.

use std::collections::VecDeque;

use crate::model::{SentimentLabel, TimestampMs};

// The aggregate a window reports, a wire payload defined in the protocol.
use crate::protocol::payload::SentimentStats;

/// Posts in each rolling window the server publishes on `sentiment`; the
/// dashboard's own window over the feed uses the same size.
pub const SENTIMENT_WINDOW: usize = 200;

/// The last `capacity` posts' scores, with running sums so every update and
/// read is O(1).
#[derive(Clone, Debug, PartialEq)]
pub struct SentimentWindow {
    capacity: usize,
    samples: VecDeque<(TimestampMs, f64, SentimentLabel)>,
    sum: f64,
    counts: [u64; 3],
}

fn slot(label: SentimentLabel) -> usize {
    match label {
        SentimentLabel::Positive => 0,
        SentimentLabel::Neutral => 1,
        SentimentLabel::Negative => 2,
    }
}

impl SentimentWindow {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            samples: VecDeque::new(),
            sum: 0.0,
            counts: [0; 3],
        }
    }

    pub fn push(&mut self, ts: TimestampMs, compound: f64, label: SentimentLabel) {
        let compound = if compound.is_finite() { compound } else { 0.0 };
        if self.samples.len() == self.capacity {
            if let Some((_, old, old_label)) = self.samples.pop_front() {
                self.sum -= old;
                self.counts[slot(old_label)] -= 1;
            }
        }
        self.samples.push_back((ts, compound, label));
        self.sum += compound;
        self.counts[slot(label)] += 1;
    }

    pub fn stats(&self) -> SentimentStats {
        let posts = self.samples.len() as u64;
        SentimentStats {
            posts,
            // Recomputing from the sum keeps this O(1); float drift over a
            // bounded window of bounded values is negligible.
            mean_compound: if posts == 0 {
                0.0
            } else {
                self.sum / posts as f64
            },
            positive: self.counts[0],
            neutral: self.counts[1],
            negative: self.counts[2],
        }
    }

    /// `(ts, compound)` of the posts in the window, oldest first.
    pub fn series(&self) -> impl Iterator<Item = (TimestampMs, f64)> + '_ {
        self.samples.iter().map(|&(ts, c, _)| (ts, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SentimentLabel::*;

    #[test]
    fn mean_and_counts_follow_the_window() {
        let mut window = SentimentWindow::new(3);
        assert_eq!(window.stats(), SentimentStats::default());
        window.push(1, 0.5, Positive);
        window.push(2, -0.7, Negative);
        window.push(3, 0.0, Neutral);
        let stats = window.stats();
        assert_eq!(
            (stats.posts, stats.positive, stats.neutral, stats.negative),
            (3, 1, 1, 1)
        );
        assert!((stats.mean_compound - (-0.2 / 3.0)).abs() < 1e-12);
        // The oldest (0.5, positive) falls out: (-0.7 + 0 + 0.9) / 3.
        window.push(4, 0.9, Positive);
        let stats = window.stats();
        assert_eq!((stats.positive, stats.negative), (1, 1));
        assert!((stats.mean_compound - 0.2 / 3.0).abs() < 1e-12);
        assert_eq!(
            window.series().map(|(ts, _)| ts).collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }

    #[test]
    fn non_finite_scores_count_as_zero() {
        let mut window = SentimentWindow::new(2);
        window.push(1, f64::NAN, Neutral);
        assert_eq!(window.stats().mean_compound, 0.0);
    }
}
