//! The process's wall clock: the one place the server reads system time
//! (the engines in `pulse-core` get time passed in).

use pulse_core::model::TimestampMs;

/// Current Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}

/// A fresh epoch for every process start: nothing is persisted yet, so
/// history from an earlier run can never be recovered.
pub fn epoch_seed() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_after_2020_and_epochs_differ() {
        assert!(now_ms() > 1_577_836_800_000);
        let first = epoch_seed();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_ne!(first, epoch_seed());
    }
}
