//! Latency histogram: log-linear, 32 sub-buckets per power of two, in µs
//! (~3 % precision). Fixed buckets let every subscriber record without
//! allocating per event and make merging a sum.

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

/// One subscriber's latencies: `u32` counts, allocated on the first event so
/// 10,000 idle subscribers cost nothing.
#[derive(Debug, Default)]
pub struct Recorder {
    counts: Vec<u32>,
    max_ns: u64,
}

impl Recorder {
    pub fn record(&mut self, ns: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let bucket = bucket_of(ns / 1000);
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
        self.max_ns = self.max_ns.max(ns);
    }
}

/// All subscribers' latencies merged, for the percentiles of the report.
pub struct Histogram {
    counts: Vec<u64>,
    /// Latencies recorded (this run's events, duplicates included).
    pub total: u64,
    pub max_ns: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max_ns: 0,
        }
    }

    pub fn merge(&mut self, recorder: &Recorder) {
        if recorder.counts.is_empty() {
            return;
        }
        for (sum, count) in self.counts.iter_mut().zip(&recorder.counts) {
            *sum += u64::from(*count);
            self.total += u64::from(*count);
        }
        self.max_ns = self.max_ns.max(recorder.max_ns);
    }

    /// Value (ms) at quantile `q`: the middle of the bucket holding that rank,
    /// but never above the largest value seen.
    pub fn quantile_ms(&self, q: f64) -> f64 {
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

    pub fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(latencies_ns: &[u64]) -> Histogram {
        let mut recorder = Recorder::default();
        for &ns in latencies_ns {
            recorder.record(ns);
        }
        let mut hist = Histogram::new();
        hist.merge(&recorder);
        hist
    }

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
        assert_eq!(bucket_range(bucket_of(MAX_US)).1, MAX_US);
    }

    #[test]
    fn buckets_are_within_about_three_percent() {
        for b in LINEAR..BUCKETS {
            let (low, high) = bucket_range(b);
            assert!(
                (high - low) as f64 <= low as f64 / SUB as f64 * 1.01,
                "{low}..{high}"
            );
        }
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles() {
        let hist = merged(&[]);
        assert_eq!(hist.total, 0);
        assert!(hist.quantile_ms(0.5).is_nan());
    }

    #[test]
    fn percentiles_pick_the_bucket_holding_the_rank() {
        // 1..=100 ms, one event each: p50 is the 50th value, p99 the 99th.
        let ns: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        let hist = merged(&ns);
        assert_eq!(hist.total, 100);
        for (q, expected_ms) in [(0.5, 50.0), (0.9, 90.0), (0.99, 99.0), (0.001, 1.0)] {
            let got = hist.quantile_ms(q);
            assert!(
                (got - expected_ms).abs() <= expected_ms * 0.04,
                "q={q}: {got} ms, expected ~{expected_ms}"
            );
        }
        assert_eq!(hist.max_ms(), 100.0);
    }

    #[test]
    fn a_percentile_is_the_middle_of_its_bucket() {
        // 50 ms falls in the 49,152..=50,175 µs bucket.
        let hist = merged(&[50_000_000, 60_000_000]);
        assert_eq!(bucket_range(bucket_of(50_000)), (49_152, 50_175));
        assert_eq!(hist.quantile_ms(0.5), 49.6635);
    }

    #[test]
    fn small_values_are_exact_and_percentiles_never_exceed_the_max() {
        let hist = merged(&[5_000, 5_000, 5_000, 40_000]);
        assert_eq!(hist.quantile_ms(0.5), 0.005);
        assert_eq!(hist.quantile_ms(0.75), 0.005);
        assert_eq!(hist.quantile_ms(1.0), 0.04);
        // 98.4 ms lands low in the 98.304..100.351 ms bucket: capped at the max.
        let capped = merged(&[98_400_000]);
        assert_eq!(capped.quantile_ms(0.999), 98.4);
    }

    #[test]
    fn merging_sums_counts_and_keeps_the_largest_max() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.record(1_000_000);
        b.record(2_000_000);
        b.record(3_000_000);
        let mut hist = Histogram::new();
        hist.merge(&a);
        hist.merge(&b);
        hist.merge(&Recorder::default());
        assert_eq!(hist.total, 3);
        assert_eq!(hist.max_ns, 3_000_000);
        assert!((hist.quantile_ms(0.5) - 2.0).abs() < 0.05);
    }

    #[test]
    fn values_beyond_the_cap_land_in_the_cap_bucket() {
        let mut recorder = Recorder::default();
        recorder.record(u64::MAX);
        assert_eq!(recorder.counts[bucket_of(MAX_US)], 1);
        assert_eq!(recorder.max_ns, u64::MAX);
    }
}
