//! Longer candles made from shorter ones: 5 min, 1 h and 1 day candles are
//! not kept anywhere, they are folded from 1 min candles when read. The same
//! fold runs on the server (over storage rows, streamed) and in the browser
//! (over the live 1 min series), so both draw the same candles.
//!
//! A rolled-up candle's open is its first source candle's open, its close
//! the last one's close, high and low the extremes and volume the sum. That
//! is exactly the candle the ticks would have made directly, because every
//! bucket boundary of a longer interval is also a boundary of the source
//! interval (all widths divide one another and buckets are aligned to the
//! Unix epoch).

use crate::model::{Candle, CandleInterval};
use crate::time::bucket_start;

/// Folds candles sorted by `start` into candles of `interval`, one bucket
/// at a time, so a stream of any length is rolled up in constant memory.
#[derive(Clone, Debug)]
pub struct Rollup {
    interval: CandleInterval,
    current: Option<Candle>,
}

impl Rollup {
    pub fn new(interval: CandleInterval) -> Self {
        Self {
            interval,
            current: None,
        }
    }

    /// Adds the next source candle; returns the previous bucket's candle
    /// when this one opens a new bucket. A source candle wider than the
    /// target interval, or one that cannot be bucketed, is skipped.
    pub fn push(&mut self, source: &Candle) -> Option<Candle> {
        if source.interval.millis() > self.interval.millis() {
            return None;
        }
        let start = bucket_start(source.start, self.interval.millis())?;
        match &mut self.current {
            Some(current) if current.symbol == source.symbol && current.start == start => {
                current.high = current.high.max(source.high);
                current.low = current.low.min(source.low);
                current.close = source.close;
                current.volume += source.volume;
                if !current.volume.is_finite() {
                    current.volume = f64::MAX;
                }
                None
            }
            _ => {
                let opened = Candle {
                    interval: self.interval,
                    start,
                    ..source.clone()
                };
                self.current.replace(opened)
            }
        }
    }

    /// The last bucket's candle, if any.
    pub fn finish(self) -> Option<Candle> {
        self.current
    }
}

/// `candles` (sorted by start) rolled up into `interval`; candles already of
/// `interval` come back as they are.
pub fn rollup(candles: &[Candle], interval: CandleInterval) -> Vec<Candle> {
    let mut out = Vec::new();
    let mut fold = Rollup::new(interval);
    for candle in candles {
        out.extend(fold.push(candle));
    }
    out.extend(fold.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::market::{MarketConfig, MarketEngine};
    use crate::model::Tick;

    const MINUTE: i64 = 60_000;

    fn ticks() -> Vec<Tick> {
        // Three days of irregular ticks: several per minute, quiet hours,
        // prices that wander, timestamps on bucket boundaries.
        let mut out = Vec::new();
        let mut price = 100.0;
        let mut ts = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000;
        let mut step = 0u64;
        while out.len() < 6_000 {
            step = step
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let jump = (step >> 33) % 4_000_000; // up to ~67 min
            ts += if step.is_multiple_of(7) {
                0
            } else {
                jump as i64
            };
            price *= 1.0 + ((step >> 20) % 200) as f64 / 10_000.0 - 0.01;
            out.push(Tick {
                symbol: "R".into(),
                price,
                volume: ((step >> 40) % 50) as f64,
                ts,
            });
        }
        out
    }

    /// Candles of `interval` straight from the ticks, by definition.
    fn direct(ticks: &[Tick], interval: CandleInterval) -> Vec<Candle> {
        let mut out: Vec<Candle> = Vec::new();
        for tick in ticks {
            let start = bucket_start(tick.ts, interval.millis()).unwrap();
            match out.last_mut() {
                Some(c) if c.start == start => {
                    c.high = c.high.max(tick.price);
                    c.low = c.low.min(tick.price);
                    c.close = tick.price;
                    c.volume += tick.volume;
                }
                _ => out.push(Candle {
                    symbol: tick.symbol.clone(),
                    interval,
                    start,
                    open: tick.price,
                    high: tick.price,
                    low: tick.price,
                    close: tick.price,
                    volume: tick.volume,
                }),
            }
        }
        out
    }

    fn assert_same(rolled: &[Candle], direct: &[Candle]) {
        assert_eq!(rolled.len(), direct.len());
        for (r, d) in rolled.iter().zip(direct) {
            assert_eq!((r.interval, r.start), (d.interval, d.start));
            assert_eq!(
                (r.open, r.high, r.low, r.close),
                (d.open, d.high, d.low, d.close)
            );
            assert!(
                (r.volume - d.volume).abs() <= 1e-9 * d.volume.max(1.0),
                "{r:?} {d:?}"
            );
        }
    }

    #[test]
    fn longer_candles_from_the_engines_minutes_equal_candles_from_the_ticks() {
        let ticks = ticks();
        let mut engine = MarketEngine::new(MarketConfig {
            history_1m: 100_000,
            ..MarketConfig::default()
        });
        for tick in &ticks {
            assert!(engine.apply(tick).is_applied());
        }
        let minutes = engine.candles("R", CandleInterval::OneMinute);
        assert_same(&minutes, &direct(&ticks, CandleInterval::OneMinute));
        for interval in [
            CandleInterval::FiveMinutes,
            CandleInterval::OneHour,
            CandleInterval::OneDay,
        ] {
            let expected = direct(&ticks, interval);
            assert!(
                expected.len() > 2,
                "{interval}: the data spans several buckets"
            );
            assert_same(&rollup(&minutes, interval), &expected);
            // Rolling up an already rolled-up series changes nothing, and a
            // 5 min series rolls up into the same hours and days.
            assert_same(&rollup(&expected, interval), &expected);
            if interval != CandleInterval::FiveMinutes {
                let fives = rollup(&minutes, CandleInterval::FiveMinutes);
                assert_same(&rollup(&fives, interval), &expected);
            }
        }
    }

    #[test]
    fn buckets_split_by_symbol_and_wider_sources_are_skipped() {
        let candle = |symbol: &str, interval, start| Candle {
            symbol: symbol.into(),
            interval,
            start,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 1.0,
        };
        let rolled = rollup(
            &[
                candle("A", CandleInterval::OneMinute, 0),
                candle("B", CandleInterval::OneMinute, MINUTE),
                candle("B", CandleInterval::OneDay, 2 * MINUTE),
            ],
            CandleInterval::OneHour,
        );
        assert_eq!(rolled.len(), 2);
        assert_eq!(
            (rolled[0].symbol.as_str(), rolled[1].symbol.as_str()),
            ("A", "B")
        );
        assert!(rolled.iter().all(|c| c.start == 0 && c.volume == 1.0));
    }

    #[test]
    fn volume_saturates_instead_of_overflowing() {
        let big = Candle {
            symbol: "A".into(),
            interval: CandleInterval::OneMinute,
            start: 0,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: f64::MAX,
        };
        let second = Candle {
            start: MINUTE,
            ..big.clone()
        };
        let rolled = rollup(&[big, second], CandleInterval::OneDay);
        assert_eq!(rolled[0].volume, f64::MAX);
    }
}
