//! History reads: intervals rolled up from stored minutes, backfills merged
//! into stored candles, and the past as time travel reads it.

use super::tests::{node, temp_db, tick};
use super::Keep;
use crate::clock::now_ms;
use pulse_core::analytics::market::rollup;
use pulse_core::model::{Candle, CandleInterval, Engagement, EngagementKind, NewPost, Tick};
use pulse_core::time::bucket_start;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn like(post_id: u64, ts: i64) -> Engagement {
    Engagement {
        post_id,
        kind: EngagementKind::Like,
        delta: 1,
        ts,
    }
}

/// Candles of `interval` from time-ordered ticks, each taken as a candle
/// of its own (the roll-up itself is checked against the ticks in core).
fn direct(ticks: &[Tick], interval: CandleInterval) -> Vec<Candle> {
    let single: Vec<Candle> = ticks
        .iter()
        .map(|t| Candle {
            symbol: t.symbol.clone(),
            interval: CandleInterval::OneSecond,
            start: t.ts,
            open: t.price,
            high: t.price,
            low: t.price,
            close: t.price,
            volume: t.volume,
        })
        .collect();
    rollup(&single, interval)
}

/// Three days of ticks 7 minutes apart, ending before `now`.
fn three_days(now: i64) -> Vec<Tick> {
    let first = bucket_start(now - 3 * DAY, DAY).unwrap() + 13 * MINUTE;
    (0..)
        .map(|i| {
            tick(
                100.0 + ((i * 37) % 23) as f64 - (i % 5) as f64 * 0.5,
                first + i * 7 * MINUTE,
            )
        })
        .take_while(|t| t.ts < now - MINUTE)
        .collect()
}

#[tokio::test]
async fn longer_intervals_read_back_as_the_ticks_make_them_with_ranges_cut_to_whole_buckets() {
    let path = temp_db("rollup");
    let now = now_ms();
    let (_hub, storage, ingest) = node(&path);
    let ticks = three_days(now);
    assert!(ticks.len() > 600);
    ingest.ticks(ticks.clone(), now).await.unwrap();

    for interval in [
        CandleInterval::FiveMinutes,
        CandleInterval::OneHour,
        CandleInterval::OneDay,
    ] {
        let expected = direct(&ticks, interval);
        let stored = storage
            .candles("AAPL".into(), interval, None, None, 10_000)
            .await
            .unwrap();
        assert_eq!(stored, expected, "{interval}");

        // A range from mid-bucket to mid-bucket: the buckets that start in it.
        let from = expected[1].start + interval.millis() / 2;
        let to = expected[expected.len() - 2].start + interval.millis() / 2;
        let ranged = storage
            .candles("AAPL".into(), interval, Some(from), Some(to), 10_000)
            .await
            .unwrap();
        let wanted: Vec<&Candle> = expected
            .iter()
            .filter(|c| c.start >= from && c.start <= to)
            .collect();
        assert_eq!(ranged.iter().collect::<Vec<_>>(), wanted, "{interval}");

        let newest = storage
            .candles("AAPL".into(), interval, None, None, 2)
            .await
            .unwrap();
        assert_eq!(newest, expected[expected.len() - 2..], "{interval}");
    }
    // The in-memory rings (240 minutes) roll up the same way for what they hold.
    let hours = ingest.candles("AAPL", CandleInterval::OneHour);
    let expected = direct(&ticks, CandleInterval::OneHour);
    assert_eq!(hours.last(), expected.last());
}

#[tokio::test]
async fn a_backfill_lands_in_stored_candles_of_every_interval_without_moving_the_live_edge() {
    let path = temp_db("backfill");
    let now = now_ms();
    let (_hub, storage, ingest) = node(&path);
    // 300 live minutes: more than the engine's 240-minute ring.
    let start = bucket_start(now, MINUTE).unwrap() - 300 * MINUTE;
    let live: Vec<Tick> = (0..300)
        .map(|i| tick(100.0 + i as f64 / 10.0, start + i * MINUTE + 5_000))
        .collect();
    ingest.ticks(live.clone(), now).await.unwrap();
    let edge = ingest.summaries().remove(0);

    // Into the oldest stored minute (no longer in the ring), and into a
    // minute of last year that has no candle yet, later tick first.
    let old = start + 5_000;
    let year_ago = bucket_start(now - 365 * DAY, MINUTE).unwrap();
    let backfill = vec![
        tick(150.0, old + 20_000),
        tick(90.0, old + 30_000),
        tick(7.0, year_ago + 40_000),
        tick(5.0, year_ago + 10_000),
    ];
    let published = ingest.ticks(backfill, now).await.unwrap();
    assert_eq!(published.len(), 4, "every backfilled tick is acknowledged");

    let after = ingest.summaries().remove(0);
    assert_eq!(
        (after.last, after.last_ts, after.volume),
        (edge.last, edge.last_ts, edge.volume)
    );
    assert_eq!(after.backfilled, 4);

    let minute = |at: i64| {
        let storage = std::sync::Arc::clone(&storage);
        async move {
            storage
                .candles(
                    "AAPL".into(),
                    CandleInterval::OneMinute,
                    Some(at),
                    Some(at),
                    1,
                )
                .await
                .unwrap()
                .remove(0)
        }
    };
    // The engine wrote the old minute: its open and close stay (their tick
    // times are not stored), extremes and volume take the backfill.
    let merged = minute(start).await;
    assert_eq!(
        (
            merged.open,
            merged.high,
            merged.low,
            merged.close,
            merged.volume
        ),
        (100.0, 150.0, 90.0, 100.0, 6.0)
    );
    // The new minute knows its ticks' times: earliest opens, latest closes.
    let fresh = minute(year_ago).await;
    assert_eq!(
        (fresh.open, fresh.high, fresh.low, fresh.close, fresh.volume),
        (5.0, 7.0, 5.0, 7.0, 4.0)
    );
    let day = storage
        .candles(
            "AAPL".into(),
            CandleInterval::OneDay,
            Some(year_ago - DAY),
            Some(year_ago),
            5,
        )
        .await
        .unwrap();
    assert_eq!(day.len(), 1);
    assert_eq!((day[0].open, day[0].close, day[0].volume), (5.0, 7.0, 4.0));
    // The live minutes are as they were.
    let newest = storage
        .candles("AAPL".into(), CandleInterval::OneMinute, None, None, 1)
        .await
        .unwrap();
    assert_eq!(newest[0].close, live.last().unwrap().price);

    // And all of it after a restart.
    storage.shutdown().await.unwrap();
    drop((storage, ingest));
    let (_hub, storage, _ingest) = node(&path);
    let again = storage
        .candles(
            "AAPL".into(),
            CandleInterval::OneMinute,
            Some(year_ago),
            Some(year_ago),
            1,
        )
        .await
        .unwrap();
    assert_eq!(again, [fresh]);
}

#[tokio::test]
async fn the_past_reads_what_was_known_at_each_moment() {
    let path = temp_db("past");
    let now = now_ms();
    let (_hub, storage, ingest) = node(&path);
    let t0 = bucket_start(now - 2 * HOUR, MINUTE).unwrap();
    ingest
        .ticks(
            vec![
                tick(10.0, t0 + 1_000),
                tick(11.0, t0 + MINUTE + 1_000),
                tick(12.0, t0 + 2 * MINUTE + 1_000),
            ],
            now,
        )
        .await
        .unwrap();
    let post = |text: &str, ts: i64| NewPost {
        author: "ann".into(),
        text: text.into(),
        ts: Some(ts),
    };
    let posts = ingest
        .posts(
            vec![
                post("$AAPL up", t0 + 30_000),
                post("$AAPL down", t0 + 90_000),
            ],
            now,
        )
        .await
        .unwrap();
    let like = |ts: i64| like(posts[0].id, ts);
    ingest
        .engagements(
            vec![like(t0 + 40_000), like(t0 + 100_000), like(t0 + 200_000)],
            now,
        )
        .await
        .unwrap();

    // At t0 + 2 min, the minute of 11.0 has just ended, the one of 12.0 not
    // begun (its 1 s candle neither).
    let quotes = storage.quotes_at(t0 + 2 * MINUTE, 60).await.unwrap();
    assert_eq!(quotes.len(), 1);
    let quote = &quotes[0];
    assert_eq!((quote.symbol.as_str(), quote.last), ("AAPL", 11.0));
    assert_eq!(
        quote.last_ts,
        t0 + 2 * MINUTE,
        "the end of the latest candle that ended"
    );
    assert_eq!(
        quote.spark.iter().map(|s| s.1).collect::<Vec<_>>(),
        [10.0, 11.0]
    );
    assert!(
        storage.quotes_at(t0, 60).await.unwrap().is_empty(),
        "nothing had ended yet"
    );

    let feed = storage.posts_until(t0 + 95_000, 10).await.unwrap();
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[0].0.id, posts[1].id, "newest first");
    assert_eq!(feed[1].1.likes, 1, "one like by then, of three");
    let between = storage
        .posts_between(t0, t0 + 60_000, 10, t0)
        .await
        .unwrap();
    assert_eq!((between.len(), between[0].1.likes), (1, 0));

    let events = storage
        .engagement_between(t0 + 40_000, t0 + 200_000, 10, Keep::Earliest)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.ts).collect::<Vec<_>>(),
        [t0 + 100_000, t0 + 200_000]
    );
    for (keep, expected) in [
        (Keep::Earliest, [t0 + 40_000, t0 + 100_000]),
        (Keep::Latest, [t0 + 100_000, t0 + 200_000]),
    ] {
        let events = storage
            .engagement_between(t0, t0 + 200_000, 2, keep)
            .await
            .unwrap();
        let times: Vec<i64> = events.iter().map(|e| e.ts).collect();
        assert_eq!(times, expected, "{keep:?}: in time order either way");
    }

    let ended = storage
        .candles_ended_between(
            Some("AAPL".into()),
            CandleInterval::OneMinute,
            t0,
            t0 + 2 * MINUTE,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        ended.iter().map(|c| c.close).collect::<Vec<_>>(),
        [10.0, 11.0]
    );
    let by_id = storage
        .posts_by_id(vec![posts[0].id, 999], t0 + 150_000)
        .await
        .unwrap();
    assert_eq!((by_id.len(), by_id[&posts[0].id].1.likes), (1, 2));
}

/// The engagement panel at a moment reads a bounded number of its window's
/// events; when the window holds more, the newest are the ones counted, so
/// the rates just before the moment are right (the oldest ones used to be
/// kept, which showed a busy moment as quiet).
#[tokio::test]
async fn a_busy_engagement_window_in_the_past_counts_its_newest_events() {
    let path = temp_db("busy-window");
    let now = now_ms();
    let (_hub, storage, ingest) = node(&path);
    let at = bucket_start(now - HOUR, MINUTE).unwrap();
    let posts = ingest
        .posts(
            vec![NewPost {
                author: "ann".into(),
                text: "$AAPL".into(),
                ts: Some(at - 20 * MINUTE),
            }],
            now,
        )
        .await
        .unwrap();
    let like = |ts: i64| like(posts[0].id, ts);
    // 15 likes early in the window, then 10 in its last few seconds.
    let mut likes: Vec<Engagement> = (0..15).map(|i| like(at - 14 * MINUTE + i)).collect();
    likes.extend((0..10).map(|i| like(at - 3_000 + i)));
    ingest.engagements(likes, now).await.unwrap();

    let counted = |state: &pulse_app::engagement_panel::EngagementState| {
        state.buckets.iter().map(|b| b.likes).sum::<i64>()
    };
    let whole = crate::past::engagement_at(&storage, at, 100).await.unwrap();
    let bounded = crate::past::engagement_at(&storage, at, 10).await.unwrap();
    assert_eq!(
        counted(&whole),
        10,
        "the rate buckets cover the last 10 minutes"
    );
    assert_eq!(counted(&bounded), 10, "the bound keeps the newest events");
    assert_eq!(bounded.top.len(), 1);
    assert_eq!(
        bounded.top[0].window.likes, 10,
        "of the window, the newest 10 counted"
    );
    assert_eq!(whole.top[0].window.likes, 25);
}

/// The past watchlist lists every stored symbol with a candle that had
/// ended, in name order, however the symbols were stored (the list is
/// found by seeking the primary key from one symbol to the next).
#[tokio::test]
async fn the_past_watchlist_lists_every_stored_symbol_in_name_order() {
    let path = temp_db("past-symbols");
    let now = now_ms();
    let (_hub, storage, ingest) = node(&path);
    let t0 = bucket_start(now - 2 * HOUR, MINUTE).unwrap();
    let names = ["MSFT", "A", "ZZZZ", "9X", "AA", "B-1"];
    let ticks: Vec<Tick> = names
        .iter()
        .enumerate()
        .map(|(i, symbol)| Tick {
            symbol: (*symbol).into(),
            price: 10.0 + i as f64,
            volume: 1.0,
            ts: t0 + 1_000,
        })
        .collect();
    ingest.ticks(ticks, now).await.unwrap();
    // A symbol whose only candle ends after the moment is not listed.
    let late = Tick {
        symbol: "LATE".into(),
        price: 1.0,
        volume: 1.0,
        ts: t0 + 5 * MINUTE,
    };
    ingest.ticks(vec![late], now).await.unwrap();
    let quotes = storage.quotes_at(t0 + 2 * MINUTE, 10).await.unwrap();
    let listed: Vec<&str> = quotes.iter().map(|q| q.symbol.as_str()).collect();
    let mut expected = names.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    let msft = quotes.iter().find(|q| q.symbol == "MSFT").unwrap();
    assert_eq!(msft.last, 10.0);
}
