//! Frame scanning: a targeted byte scan instead of a full JSON parse, because
//! loadgen parses every delivered event on the server's machine and its CPU
//! competes with the server's. Event frames look like
//!
//! ```text
//! {"op":"event","topic":"ticks","offset":7,"data":{"symbol":"A","price":1.0,"volume":7.0,"ts":..}}
//! {"op":"batch","events":[{"topic":"ticks","offset":7,"data":{..}},...]}
//! ```
//!
//! and the tick's symbol cannot contain quotes, so the keys are unambiguous.

const OFFSET_KEY: &str = "\"offset\":";
const VOLUME_KEY: &str = "\"volume\":";

/// Whether `text` is an `event` or `batch` frame (the server writes `op` first).
pub fn is_event_frame(text: &str) -> bool {
    text.starts_with(r#"{"op":"event""#) || text.starts_with(r#"{"op":"batch""#)
}

/// The JSON number at the start of `text`.
fn number_at(text: &str) -> &str {
    let end = text
        .bytes()
        .position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Calls `each(offset, seq)` for every event of an event/batch frame; `seq`
/// is the tick's `volume` when it is a whole non-negative number, i.e. one
/// this run may have published.
pub fn scan_events(text: &str, mut each: impl FnMut(u64, Option<u64>)) {
    let mut rest = text;
    let Some(mut at) = rest.find(OFFSET_KEY) else {
        return;
    };
    loop {
        rest = &rest[at + OFFSET_KEY.len()..];
        let offset = number_at(rest).parse::<u64>().unwrap_or(0);
        let next = rest.find(OFFSET_KEY);
        let segment = &rest[..next.unwrap_or(rest.len())];
        let seq = segment.find(VOLUME_KEY).and_then(|v| {
            let volume = number_at(&segment[v + VOLUME_KEY.len()..])
                .parse::<f64>()
                .ok()?;
            (volume >= 0.0 && volume.fract() == 0.0 && volume < 9e15).then_some(volume as u64)
        });
        each(offset, seq);
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<(u64, Option<u64>)> {
        let mut seen = Vec::new();
        scan_events(text, |o, s| seen.push((o, s)));
        seen
    }

    #[test]
    fn scans_events_and_batches() {
        let mut seen = scan(
            r#"{"op":"event","topic":"ticks","offset":7,"data":{"symbol":"A","price":1.5,"volume":42.0,"ts":1}}"#,
        );
        seen.extend(scan(
            r#"{"op":"batch","events":[{"topic":"ticks","offset":8,"data":{"symbol":"A","price":1,"volume":3,"ts":1}},{"topic":"ticks","offset":9,"data":{"x":1}},{"topic":"ticks","offset":10,"data":{"volume":1.5}}]}"#,
        ));
        assert_eq!(seen, [(7, Some(42)), (8, Some(3)), (9, None), (10, None)]);
    }

    #[test]
    fn a_volume_belongs_to_its_own_event_in_a_batch() {
        // The second event has no volume: it must not borrow the third's.
        let seen = scan(
            r#"{"op":"batch","events":[{"topic":"ticks","offset":1,"data":{"volume":5.0}},{"topic":"ticks","offset":2,"data":{"symbol":"B"}},{"topic":"ticks","offset":3,"data":{"volume":6.0}}]}"#,
        );
        assert_eq!(seen, [(1, Some(5)), (2, None), (3, Some(6))]);
    }

    #[test]
    fn volumes_that_cannot_be_sequence_numbers_are_foreign() {
        let frame = |volume: &str| {
            format!(r#"{{"op":"event","topic":"ticks","offset":4,"data":{{"volume":{volume}}}}}"#)
        };
        assert_eq!(scan(&frame("1e3")), [(4, Some(1000))]);
        assert_eq!(scan(&frame("0")), [(4, Some(0))]);
        for volume in ["-1.0", "2.25", "9e15", "1e300", "\"7\""] {
            assert_eq!(scan(&frame(volume)), [(4, None)], "volume {volume}");
        }
    }

    #[test]
    fn frames_without_offsets_have_no_events() {
        assert_eq!(
            scan(r#"{"op":"conflated","topic":"ticks","skipped":3}"#),
            []
        );
        assert_eq!(scan(""), []);
    }

    #[test]
    fn recognises_event_frames_by_their_op() {
        assert!(is_event_frame(
            r#"{"op":"event","topic":"ticks","offset":1}"#
        ));
        assert!(is_event_frame(r#"{"op":"batch","events":[]}"#));
        assert!(!is_event_frame(
            r#"{"op":"subscribed","topic":"ticks","offset":0}"#
        ));
        assert!(!is_event_frame(r#"{"op":"conflated","skipped":1}"#));
        assert!(!is_event_frame(r#"{ "op":"event"}"#));
    }
}
