//! Time bucketing shared by the engines and the dashboard.

use crate::model::TimestampMs;

/// Start of the bucket of `width` ms that holds `ts`: `ts` rounded down to a
/// multiple of `width`, so a timestamp on a boundary opens the new bucket and
/// negative timestamps bucket the same way as positive ones. `None` if
/// `width` is not positive or the start would underflow `i64`.
pub fn bucket_start(ts: TimestampMs, width: TimestampMs) -> Option<TimestampMs> {
    if width <= 0 {
        return None;
    }
    ts.checked_sub(ts.rem_euclid(width))
}

/// The bounds of the rows that make the buckets of `width` ms starting in
/// `[from, to]` (either open): from the first bucket start at or after
/// `from` to the last millisecond of the bucket holding `to`. A longer
/// candle is then made of all its shorter ones, whatever the range.
pub fn whole_buckets(
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
    width: TimestampMs,
) -> (Option<TimestampMs>, Option<TimestampMs>) {
    let from = from.map(|f| match bucket_start(f, width) {
        Some(start) if start < f => start.saturating_add(width),
        Some(start) => start,
        None => f,
    });
    let to = to.map(|t| bucket_start(t, width).map_or(t, |start| start.saturating_add(width - 1)));
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_buckets_start_in_the_range_and_end_with_their_last_millisecond() {
        assert_eq!(
            whole_buckets(Some(1_500), Some(3_200), 1_000),
            (Some(2_000), Some(3_999))
        );
        assert_eq!(
            whole_buckets(Some(2_000), Some(3_000), 1_000),
            (Some(2_000), Some(3_999))
        );
        assert_eq!(whole_buckets(None, None, 1_000), (None, None));
        assert_eq!(
            whole_buckets(Some(i64::MIN), None, 1_000),
            (Some(i64::MIN), None)
        );
    }

    #[test]
    fn buckets_round_down_including_negative_timestamps() {
        assert_eq!(bucket_start(1_999, 1_000), Some(1_000));
        assert_eq!(bucket_start(2_000, 1_000), Some(2_000), "boundary opens");
        assert_eq!(bucket_start(-1, 10_000), Some(-10_000));
        assert_eq!(bucket_start(0, 60_000), Some(0));
    }

    #[test]
    fn degenerate_inputs_give_none_instead_of_panicking() {
        assert_eq!(bucket_start(i64::MIN, 1_000), None);
        assert_eq!(bucket_start(i64::MIN + 1, 1_000), None);
        assert_eq!(bucket_start(i64::MAX, 1_000), Some(i64::MAX - 807));
        assert_eq!(bucket_start(5, 0), None);
        assert_eq!(bucket_start(5, -10), None);
    }
}
