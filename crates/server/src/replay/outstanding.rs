//! Publishes sent and not yet answered. A record may be several publishes
//! (a candle is up to [`super::candle::MAX_TICKS`] ticks), so each publish
//! gets the id `line × PARTS + part`: answers map back to the file's line
//! without a table, and a line is settled once none of its publishes is
//! outstanding.

use std::collections::BTreeMap;

use super::candle::MAX_TICKS;

/// Publish ids per line.
const PARTS: u64 = MAX_TICKS as u64;

/// The id of publish `part` of the record on `line`.
pub fn publish_id(line: u64, part: usize) -> u64 {
    line.saturating_mul(PARTS)
        .saturating_add(part as u64 % PARTS)
}

fn line_of(id: u64) -> u64 {
    id / PARTS
}

/// A publish sent and not yet answered.
struct InFlight {
    frame: String,
    rate_limited: u32,
}

/// What an answer settled.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled {
    pub line: u64,
    /// No other publish of the line is outstanding.
    pub last: bool,
}

#[derive(Default)]
pub struct Outstanding {
    publishes: BTreeMap<u64, InFlight>,
    bytes: usize,
}

impl Outstanding {
    pub fn len(&self) -> usize {
        self.publishes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.publishes.is_empty()
    }

    /// Bytes of the frames kept for retries.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn insert(&mut self, id: u64, frame: String) {
        self.bytes += frame.len();
        if let Some(old) = self.publishes.insert(
            id,
            InFlight {
                frame,
                rate_limited: 0,
            },
        ) {
            self.bytes -= old.frame.len();
        }
    }

    /// The frame to send again.
    pub fn frame(&self, id: u64) -> Option<String> {
        self.publishes.get(&id).map(|p| p.frame.clone())
    }

    /// Counts one more `rate_limited` answer; `false` (and nothing counted)
    /// once `max` were counted, or for an id that is not outstanding.
    pub fn retry(&mut self, id: u64, max: u32) -> bool {
        match self.publishes.get_mut(&id) {
            Some(publish) if publish.rate_limited < max => {
                publish.rate_limited += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes an answered publish (`None`: not outstanding, e.g. a repeat).
    pub fn settle(&mut self, id: u64) -> Option<Settled> {
        let done = self.publishes.remove(&id)?;
        self.bytes -= done.frame.len();
        let line = line_of(id);
        let first = publish_id(line, 0);
        let last = self
            .publishes
            .range(first..first.saturating_add(PARTS))
            .next()
            .is_none();
        Some(Settled { line, last })
    }

    /// Lines with a publish still outstanding, in order, each once.
    pub fn lines(&self) -> Vec<u64> {
        let mut lines: Vec<u64> = self.publishes.keys().map(|&id| line_of(id)).collect();
        lines.dedup();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_settled_when_its_last_publish_is() {
        let mut out = Outstanding::default();
        for part in 0..3 {
            out.insert(publish_id(7, part), format!("frame {part}"));
        }
        out.insert(publish_id(8, 0), "x".into());
        assert_eq!((out.len(), out.bytes()), (4, 22));
        assert_eq!(out.lines(), [7, 8]);
        assert_eq!(
            out.settle(publish_id(7, 1)),
            Some(Settled {
                line: 7,
                last: false
            })
        );
        assert_eq!(out.settle(publish_id(7, 1)), None, "answered twice");
        assert!(out.retry(publish_id(7, 0), 1));
        assert!(!out.retry(publish_id(7, 0), 1), "retries are bounded");
        assert_eq!(out.frame(publish_id(7, 0)).as_deref(), Some("frame 0"));
        assert_eq!(
            out.settle(publish_id(7, 0)),
            Some(Settled {
                line: 7,
                last: false
            })
        );
        assert_eq!(
            out.settle(publish_id(7, 2)),
            Some(Settled {
                line: 7,
                last: true
            })
        );
        assert_eq!(
            out.settle(publish_id(8, 0)),
            Some(Settled {
                line: 8,
                last: true
            })
        );
        assert!(out.is_empty());
        assert_eq!(out.bytes(), 0);
    }
}
