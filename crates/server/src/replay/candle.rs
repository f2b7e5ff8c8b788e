//! A candle record (`symbol,interval,start,open,high,low,close,volume`, as
//! `GET /api/export?kind=candles` writes it) replayed as the ticks that make
//! exactly that candle at its interval:
//!
//! | tick | ts | price | volume |
//! |---|---|---|---|
//! | open | `start` | open | the whole volume |
//! | high | `start + 1` | high | 0 (left out when high is the open or the close) |
//! | low | `start + 2` | low | 0 (left out when low is the open or the close) |
//! | close | `start + 3` | close | 0 (left out when the last tick already closes at it) |
//!
//! The open is the earliest tick and the close the latest, so they come out
//! right whatever else; all four lie in the bucket's first 4 ms (every
//! interval is at least 1 s), so the candle of today's date (or this hour)
//! never needs a tick from the future, which the server refuses. The ticks go
//! out in time order, as the server's market engine needs. The shorter
//! candles they make (1 s candles of a replayed 1 min candle) are not the
//! original's: only the candle's own interval, and longer ones rolled up
//! from it, is reproduced.

use serde_json::{Map, Value};

use pulse_core::model::{CandleInterval, MAX_VOLUME};

/// Ticks one candle becomes, at most.
pub const MAX_TICKS: usize = 4;

/// Whether a record is a candle: it has the fields no other kind has.
pub fn is_candle(record: &Map<String, Value>) -> bool {
    ["open", "high", "low", "close", "start"]
        .iter()
        .all(|field| record.contains_key(*field))
}

/// The ticks that reproduce the candle, oldest first, or why the record
/// is not a candle that can be replayed.
pub fn ticks(record: &Map<String, Value>) -> Result<Vec<Map<String, Value>>, String> {
    let symbol = record
        .get("symbol")
        .and_then(Value::as_str)
        .ok_or("a candle needs a symbol")?;
    let interval: CandleInterval = match record.get("interval") {
        Some(Value::String(name)) => name
            .parse()
            .map_err(|e: pulse_core::model::UnknownInterval| e.to_string())?,
        _ => return Err("a candle needs its interval (1s, 1m, ...)".into()),
    };
    let start = record
        .get("start")
        .and_then(Value::as_i64)
        .ok_or("start must be Unix milliseconds")?;
    let number = |field: &str| -> Result<f64, String> {
        record
            .get(field)
            .and_then(Value::as_f64)
            .filter(|value| value.is_finite())
            .ok_or_else(|| format!("{field} must be a finite number"))
    };
    let (open, high, low, close) = (
        number("open")?,
        number("high")?,
        number("low")?,
        number("close")?,
    );
    let volume = match record.get("volume") {
        None => 0.0,
        Some(_) => number("volume")?,
    };
    let width = interval.millis();
    if start.rem_euclid(width) != 0 {
        return Err(format!(
            "start {start} is not the start of a {interval} bucket (a multiple of {width} ms)"
        ));
    }
    if !(low <= open.min(close) && high >= open.max(close)) {
        return Err(format!(
            "not a candle: low {low} and high {high} must enclose open {open} and close {close}"
        ));
    }
    if volume > MAX_VOLUME {
        return Err(format!(
            "volume {volume} is more than one tick may carry ({MAX_VOLUME:e})"
        ));
    }
    let last = start.checked_add(3).ok_or("start is out of range")?;
    let tick = |ts: i64, price: f64, volume: f64| {
        let mut tick = Map::new();
        tick.insert("symbol".into(), symbol.into());
        tick.insert("price".into(), price.into());
        tick.insert("volume".into(), volume.into());
        tick.insert("ts".into(), ts.into());
        tick
    };
    let mut ticks = vec![tick(start, open, volume)];
    let mut last_price = open;
    for (offset, price) in [(1, high), (2, low)] {
        if price != open && price != close {
            ticks.push(tick(start.saturating_add(offset), price, 0.0));
            last_price = price;
        }
    }
    if last_price != close {
        ticks.push(tick(last, close, 0.0));
    }
    debug_assert!(ticks.len() <= MAX_TICKS);
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::analytics::market::{MarketConfig, MarketEngine};
    use pulse_core::model::{Candle, Tick};

    /// A UTC midnight: the start of a bucket of every interval.
    const T0: i64 = 1_700_006_400_000;

    fn record(interval: &str, o: f64, h: f64, l: f64, c: f64, v: f64) -> Map<String, Value> {
        serde_json::json!({
            "symbol": "AAA", "interval": interval, "start": T0,
            "open": o, "high": h, "low": l, "close": c, "volume": v,
        })
        .as_object()
        .cloned()
        .expect("an object")
    }

    /// The candles a market engine makes of the ticks.
    fn replayed(ticks: &[Map<String, Value>], interval: CandleInterval) -> Vec<Candle> {
        let mut engine = MarketEngine::new(MarketConfig::default());
        for tick in ticks {
            let tick: Tick = serde_json::from_value(Value::Object(tick.clone())).expect("a tick");
            assert!(tick.validate(T0 + 86_400_000).is_ok(), "{tick:?}");
            engine.apply(&tick);
        }
        engine.candles("AAA", interval)
    }

    #[test]
    fn the_ticks_make_the_same_candle_whatever_coincides() {
        let shapes = [
            (10.0, 12.0, 9.0, 11.0),  // all distinct
            (10.0, 12.0, 9.0, 12.0),  // close at the high
            (10.0, 10.0, 9.0, 9.5),   // open at the high
            (10.0, 12.0, 10.0, 11.0), // open at the low
            (10.0, 12.0, 9.0, 9.0),   // close at the low
            (10.0, 10.0, 10.0, 10.0), // one price
            (10.0, 10.0, 9.0, 10.0),  // open = close = high
            (10.0, 11.0, 10.0, 10.0), // open = close = low
            (12.0, 12.0, 9.0, 9.0),   // open high, close low
        ];
        for interval in CandleInterval::ALL {
            for (o, h, l, c) in shapes {
                for volume in [0.0, 1.5, MAX_VOLUME] {
                    let ticks =
                        ticks(&record(interval.as_str(), o, h, l, c, volume)).expect("replayable");
                    assert!(ticks.len() <= MAX_TICKS);
                    let candles = replayed(&ticks, interval);
                    assert_eq!(candles.len(), 1, "{interval} {o} {h} {l} {c}: {candles:?}");
                    let got = &candles[0];
                    assert_eq!(
                        (got.start, got.open, got.high, got.low, got.close, got.volume),
                        (T0, o, h, l, c, volume),
                        "{interval} {o} {h} {l} {c} from {ticks:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn records_that_are_no_candle_are_refused_with_a_reason() {
        let mut unaligned = record("1m", 1.0, 1.0, 1.0, 1.0, 1.0);
        unaligned.insert("start".into(), (T0 + 1_000).into());
        let mut no_symbol = record("1m", 1.0, 1.0, 1.0, 1.0, 1.0);
        no_symbol.remove("symbol");
        let mut text_price = record("1m", 1.0, 1.0, 1.0, 1.0, 1.0);
        text_price.insert("open".into(), "cheap".into());
        for (record, words) in [
            (record("1m", 10.0, 9.0, 8.0, 9.5, 1.0), "enclose"),
            (record("1m", 10.0, 12.0, 10.5, 11.0, 1.0), "enclose"),
            (record("7m", 1.0, 1.0, 1.0, 1.0, 1.0), "interval"),
            (record("1m", 1.0, 1.0, 1.0, 1.0, MAX_VOLUME * 2.0), "volume"),
            (unaligned, "bucket"),
            (no_symbol, "symbol"),
            (text_price, "open must be"),
        ] {
            let error = ticks(&record).expect_err("refused");
            assert!(error.contains(words), "{record:?}: {error}");
        }
        assert!(is_candle(&record("1m", 1.0, 1.0, 1.0, 1.0, 1.0)));
        let tick = serde_json::json!({"symbol": "A", "price": 1, "volume": 1});
        assert!(!is_candle(tick.as_object().expect("object")));
    }
}
