//! Candles of the intervals storage does not keep (5 min, 1 h, 1 day),
//! folded from the stored 1 min rows as they stream by ([`Rollup`]): one
//! bucket is held at a time, so a year of daily candles costs the memory
//! of one candle plus a chunk of minutes.

use pulse_core::analytics::market::Rollup;
use pulse_core::model::CandleInterval;

use crate::storage::ExportRows;

use super::stream::{RowSource, StreamError, CHUNK_ROWS};

/// A source of stored candles, rolled up into a longer interval.
pub struct RolledUp {
    inner: Box<dyn RowSource>,
    fold: Option<Rollup>,
}

impl RolledUp {
    /// `inner` yields candles of `interval.source()`, oldest first.
    pub fn new(inner: Box<dyn RowSource>, interval: CandleInterval) -> Self {
        Self {
            inner,
            fold: Some(Rollup::new(interval)),
        }
    }
}

impl RowSource for RolledUp {
    /// At least `limit` rolled-up candles (fewer at the end), at most
    /// `limit` plus one source chunk's worth.
    fn next_chunk(&mut self, limit: usize) -> Result<Option<ExportRows>, StreamError> {
        let mut out = Vec::new();
        while out.len() < limit.max(1) {
            let Some(fold) = self.fold.as_mut() else {
                break;
            };
            match self.inner.next_chunk(CHUNK_ROWS)? {
                Some(ExportRows::Candles(candles)) => {
                    out.extend(candles.iter().filter_map(|candle| fold.push(candle)));
                }
                // Only candles are rolled up; anything else passes as it is.
                Some(other) if out.is_empty() => return Ok(Some(other)),
                Some(_) => {}
                None => {
                    out.extend(self.fold.take().and_then(Rollup::finish));
                }
            }
        }
        Ok((!out.is_empty()).then_some(ExportRows::Candles(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::analytics::market::rollup;
    use pulse_core::model::Candle;

    /// Minutes handed out a few at a time.
    struct Minutes(std::collections::VecDeque<Candle>);

    impl RowSource for Minutes {
        fn next_chunk(&mut self, _limit: usize) -> Result<Option<ExportRows>, StreamError> {
            let take = self.0.len().min(7);
            Ok((take > 0).then(|| ExportRows::Candles(self.0.drain(..take).collect())))
        }
    }

    #[test]
    fn streamed_roll_ups_equal_the_direct_ones() {
        let day0 = 1_700_006_400_000; // a UTC midnight
        let minutes: Vec<Candle> = (0..5_000i64)
            .filter(|n| n % 13 != 0) // quiet minutes
            .map(|n| Candle {
                symbol: "AAA".into(),
                interval: CandleInterval::OneMinute,
                start: day0 + n * 60_000,
                open: 100.0 + (n % 17) as f64,
                high: 130.0 + (n % 5) as f64,
                low: 90.0 - (n % 3) as f64,
                close: 101.0 + (n % 11) as f64,
                volume: n as f64,
            })
            .collect();
        for interval in [
            CandleInterval::FiveMinutes,
            CandleInterval::OneHour,
            CandleInterval::OneDay,
        ] {
            let mut source = RolledUp::new(Box::new(Minutes(minutes.clone().into())), interval);
            let mut got = Vec::new();
            while let Some(rows) = source.next_chunk(10).expect("reads") {
                match rows {
                    ExportRows::Candles(candles) => got.extend(candles),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, rollup(&minutes, interval), "{interval}");
            assert!(got.len() >= 4, "{interval}: {}", got.len());
        }
    }
}
