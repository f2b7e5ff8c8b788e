//! Every export kind, in both formats, read back by `pulse replay`'s own
//! reader: the records carry exactly the fields (and values) exported.

use serde_json::{json, Map, Value};

use pulse_core::model::{
    Candle, CandleInterval, Counts, Engagement, EngagementKind, Post, Sentiment, SentimentLabel,
    Tick,
};

use super::*;
use crate::replay::{Entry, Records};

fn file(rows: &[ExportRows], kind: Kind, format: Format) -> Vec<u8> {
    let mut out = preamble(kind, format);
    for chunk in rows {
        out.extend(write(chunk, format).expect("writes"));
    }
    out
}

/// The records `pulse replay` reads from the file: topic and payloads.
fn replayed(bytes: &[u8], format: Format) -> Vec<(&'static str, Vec<Map<String, Value>>)> {
    let records = match format {
        Format::Csv => Records::csv(bytes).expect("a CSV header"),
        Format::Ndjson => Records::ndjson(bytes),
    };
    records
        .map(|entry| match entry.expect("readable") {
            Entry::Record(record) => (record.topic, record.payloads),
            Entry::Invalid { line, message } => panic!("line {line}: {message}"),
        })
        .collect()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

const FORMATS: [Format; 2] = [Format::Csv, Format::Ndjson];

#[test]
fn ticks_read_back_as_the_same_ticks() {
    let ticks = vec![
        Tick {
            symbol: "BRK.B".into(),
            price: 0.1 + 0.2,
            volume: 0.0,
            ts: 1_700_000_000_000,
        },
        Tick {
            symbol: "AAPL".into(),
            price: 187.5,
            volume: 1e12,
            ts: 1_700_000_000_001,
        },
    ];
    // Two chunks: the CSV header comes once.
    let rows = [
        ExportRows::Ticks(ticks[..1].to_vec()),
        ExportRows::Ticks(ticks[1..].to_vec()),
    ];
    for format in FORMATS {
        let bytes = file(&rows, Kind::Ticks, format);
        let records = replayed(&bytes, format);
        let got: Vec<Tick> = records
            .into_iter()
            .map(|(topic, mut payloads)| {
                assert_eq!((topic, payloads.len()), ("ticks", 1));
                serde_json::from_value(Value::Object(payloads.remove(0))).expect("a tick")
            })
            .collect();
        assert_eq!(got, ticks, "{format:?}: bit for bit");
    }
    let csv = String::from_utf8(file(&rows, Kind::Ticks, Format::Csv)).unwrap();
    assert_eq!(
        csv,
        "symbol,price,volume,ts\nBRK.B,0.30000000000000004,0,1700000000000\nAAPL,187.5,1000000000000,1700000000001\n"
    );
}

#[test]
fn posts_keep_quotes_commas_and_newlines_and_replay_as_posts() {
    let post = Post {
        id: 42,
        author: "ann, \"the\" analyst".into(),
        text: "$AAPL up, \"really\"\nsecond line ✓".into(),
        ts: 1_700_000_000_000,
        sentiment: Sentiment {
            compound: 0.5,
            pos: 0.25,
            neu: 0.75,
            neg: 0.0,
            label: SentimentLabel::Positive,
        },
        symbols: vec!["AAPL".into(), "MSFT".into()],
    };
    let counts = Counts {
        likes: 3,
        shares: 1,
        comments: 0,
    };
    let rows = [ExportRows::Posts(vec![(post.clone(), counts)])];
    for format in FORMATS {
        let bytes = file(&rows, Kind::Posts, format);
        let records = replayed(&bytes, format);
        assert_eq!(records.len(), 1, "{format:?}");
        let (topic, payloads) = &records[0];
        assert_eq!(*topic, "posts");
        let data = &payloads[0];
        assert_eq!(data["author"], post.author.as_str());
        assert_eq!(data["text"], post.text.as_str());
        assert_eq!(data["ts"], post.ts, "{format:?}: the post keeps its time");
        let new_post: pulse_core::model::NewPost =
            serde_json::from_value(Value::Object(data.clone())).expect("the server takes it");
        assert_eq!(new_post.ts, Some(post.ts));
    }
    let ndjson: Value =
        serde_json::from_slice(&file(&rows, Kind::Posts, Format::Ndjson)).expect("json");
    assert_eq!(
        ndjson,
        json!({"id": 42, "author": post.author, "text": post.text, "ts": post.ts,
               "label": "positive", "compound": 0.5, "pos": 0.25, "neu": 0.75, "neg": 0.0,
               "symbols": ["AAPL", "MSFT"], "likes": 3, "shares": 1, "comments": 0})
    );
    let csv = String::from_utf8(file(&rows, Kind::Posts, Format::Csv)).unwrap();
    assert!(csv.starts_with(&(columns(Kind::Posts).join(",") + "\n")));
    assert!(csv.contains(",AAPL MSFT,3,1,0\n"), "{csv}");
}

#[test]
fn engagement_replays_as_engagement_for_the_same_post() {
    let events = vec![
        Engagement {
            post_id: 7,
            kind: EngagementKind::Share,
            delta: -1,
            ts: 1_700_000_000_000,
        },
        Engagement {
            post_id: 8,
            kind: EngagementKind::Comment,
            delta: 2,
            ts: 1_700_000_000_000,
        },
    ];
    let rows = [ExportRows::Engagement(events.clone())];
    for format in FORMATS {
        let records = replayed(&file(&rows, Kind::Engagement, format), format);
        let got: Vec<Engagement> = records
            .into_iter()
            .map(|(topic, mut payloads)| {
                assert_eq!(topic, "engagement");
                serde_json::from_value(Value::Object(payloads.remove(0))).expect("an event")
            })
            .collect();
        assert_eq!(got, events, "{format:?}");
    }
}

#[test]
fn candles_replay_as_the_ticks_of_the_same_candle() {
    let candle = Candle {
        symbol: "AAPL".into(),
        interval: CandleInterval::OneMinute,
        start: 1_700_000_040_000,
        open: 10.0,
        high: 12.5,
        low: 9.75,
        close: 11.0,
        volume: 30.5,
    };
    let rows = [ExportRows::Candles(vec![candle.clone()])];
    for format in FORMATS {
        let records = replayed(&file(&rows, Kind::Candles, format), format);
        assert_eq!(records.len(), 1);
        let (topic, payloads) = &records[0];
        assert_eq!(*topic, "ticks");
        let expect = [
            (10.0, 30.5, candle.start),
            (12.5, 0.0, candle.start + 1),
            (9.75, 0.0, candle.start + 2),
            (11.0, 0.0, candle.start + 3),
        ];
        let got: Vec<(f64, f64, i64)> = payloads
            .iter()
            .map(|tick| {
                let tick: Tick = serde_json::from_value(Value::Object(tick.clone())).expect("tick");
                assert_eq!(tick.symbol, "AAPL");
                (tick.price, tick.volume, tick.ts)
            })
            .collect();
        assert_eq!(got, expect, "{format:?}");
    }
    let line = String::from_utf8(file(&rows, Kind::Candles, Format::Ndjson)).unwrap();
    assert_eq!(
        object(serde_json::from_str(&line).unwrap()),
        object(serde_json::to_value(&candle).unwrap())
    );
}

#[test]
fn an_empty_export_is_a_header_or_nothing() {
    for kind in [Kind::Ticks, Kind::Candles, Kind::Posts, Kind::Engagement] {
        let csv = String::from_utf8(preamble(kind, Format::Csv)).unwrap();
        assert_eq!(csv, columns(kind).join(",") + "\n");
        assert!(
            Records::csv(csv.as_bytes()).is_ok(),
            "{kind:?}: replay takes the header"
        );
        assert!(preamble(kind, Format::Ndjson).is_empty());
    }
}

#[test]
fn csv_numbers_read_back_to_the_same_value() {
    let values = [
        0.0,
        1.0,
        -3.0,
        1e-300,
        5e-324,
        0.1,
        123_456_789.123_456_78,
        999_999_999_999_999.0,
        1e15,
        1e300,
        f64::MAX,
        -1e-7,
    ];
    let candles: Vec<Candle> = values
        .iter()
        .map(|&v| Candle {
            symbol: "N".into(),
            interval: CandleInterval::OneSecond,
            start: 0,
            open: v,
            high: v,
            low: v,
            close: v,
            volume: v,
        })
        .collect();
    let csv = write(&ExportRows::Candles(candles), Format::Csv).expect("writes");
    let text = String::from_utf8(csv).expect("UTF-8");
    let read: Vec<f64> = text
        .lines()
        .map(|line| line.rsplit(',').next().unwrap().parse().expect("a number"))
        .collect();
    assert_eq!(read, values, "{text}");
    assert!(text.starts_with("N,1s,0,0,0,0,0,0\nN,1s,0,1,"), "{text}");
}
