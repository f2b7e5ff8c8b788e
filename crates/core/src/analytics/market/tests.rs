//! Engine tests: candles, sessions, late and duplicate ticks, seeding.

use super::*;

const T0: TimestampMs = 1_780_000_020_000; // a whole minute: 29_666_667 min

fn tick(symbol: &str, price: f64, volume: f64, ts: TimestampMs) -> Tick {
    Tick {
        symbol: symbol.into(),
        price,
        volume,
        ts,
    }
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_approx(actual: Option<f64>, expected: f64) {
    match actual {
        Some(a) => assert!(approx(a, expected), "{a} != {expected}"),
        None => panic!("None != {expected}"),
    }
}

fn engine() -> MarketEngine {
    MarketEngine::new(MarketConfig {
        history_1s: 5,
        history_1m: 5,
        indicator_interval: CandleInterval::OneSecond,
        sma_period: 3,
        ema_period: 3,
        volatility_window: 3,
        late_tolerance_ms: 2_000,
        max_symbols: 3,
    })
}

#[test]
fn check_batch_names_the_first_tick_that_would_be_ignored() {
    let mut e = engine();
    e.apply(&tick("AAPL", 10.0, 1.0, T0 + 10_000));
    // Late by more than the 2 s tolerance: a backfill, which the engine
    // takes, and which does not move the newest tick the batch's later
    // ticks are measured against.
    let backfill = [
        tick("AAPL", 10.0, 1.0, T0 + 11_000),
        tick("AAPL", 10.0, 1.0, T0 + 7_000),
        tick("AAPL", 10.0, 1.0, T0 + 11_000),
    ];
    assert_eq!(e.check_batch(&backfill), Err((2, IgnoreReason::Duplicate)));
    assert_eq!(e.check_batch(&backfill[..2]), Ok(()));
    let duplicate = [tick("AAPL", 10.0, 1.0, T0 + 10_000)];
    assert_eq!(e.check_batch(&duplicate), Err((0, IgnoreReason::Duplicate)));
    // The engine tracks at most 3 symbols: AAPL plus two new ones fit, a third does not.
    let many = [
        tick("B", 1.0, 1.0, T0),
        tick("C", 1.0, 1.0, T0),
        tick("B", 1.0, 2.0, T0),
        tick("D", 1.0, 1.0, T0),
    ];
    assert_eq!(e.check_batch(&many), Err((3, IgnoreReason::TooManySymbols)));
    let fine = [tick("AAPL", 11.0, 1.0, T0 + 9_000), tick("B", 1.0, 1.0, T0)];
    assert_eq!(e.check_batch(&fine), Ok(()));
    // Checking changed nothing; applying what it accepted applies everything.
    assert!(!e.tracks("B"));
    assert!(fine.iter().all(|t| e.apply(t).is_applied()));
}

#[test]
fn forgetting_a_symbol_frees_its_slot() {
    let mut e = engine();
    for s in ["A", "B", "C"] {
        e.apply(&tick(s, 1.0, 1.0, T0));
    }
    assert_eq!(
        e.check_batch(&[tick("D", 1.0, 1.0, T0)]),
        Err((0, IgnoreReason::TooManySymbols))
    );
    assert!(e.forget("A"));
    assert_eq!(e.symbol_count(), 2);
    assert!(e.apply(&tick("D", 1.0, 1.0, T0)).is_applied());
}

#[test]
fn t0_is_minute_aligned() {
    assert_eq!(T0 % 60_000, 0);
}

#[test]
fn session_stats_vwap_and_change() {
    let mut e = engine();
    // prices/volumes: 100×1, 102×3, 99×2 (ts increasing).
    e.apply(&tick("AAPL", 100.0, 1.0, T0));
    e.apply(&tick("AAPL", 102.0, 3.0, T0 + 100));
    e.apply(&tick("AAPL", 99.0, 2.0, T0 + 200));
    let s = e.summary("AAPL").unwrap();
    assert_eq!(s.open, 100.0);
    assert_eq!(s.last, 99.0);
    assert_eq!(s.last_ts, T0 + 200);
    assert_eq!(s.change, -1.0); // 99 - 100
    assert_approx(s.change_pct, -1.0); // -1/100·100
    assert_eq!((s.high, s.low), (102.0, 99.0));
    assert_eq!(s.volume, 6.0);
    // VWAP = (100·1 + 102·3 + 99·2)/6 = (100 + 306 + 198)/6 = 604/6
    assert_approx(s.vwap, 604.0 / 6.0);
    assert_eq!(s.tick_count, 3);

    // Zero volume: no VWAP rather than NaN.
    e.apply(&tick("MSFT", 10.0, 0.0, T0));
    assert_eq!(e.summary("MSFT").unwrap().vwap, None);
    assert_eq!(e.summary("NOPE"), None);
    assert_eq!(
        e.summaries()
            .iter()
            .map(|s| s.symbol.as_str())
            .collect::<Vec<_>>(),
        ["AAPL", "MSFT"]
    );
}

#[test]
fn candles_bucket_ohlcv_and_boundary_starts_new_candle() {
    let mut e = engine();
    e.apply(&tick("AAPL", 10.0, 1.0, T0));
    e.apply(&tick("AAPL", 12.0, 2.0, T0 + 400));
    e.apply(&tick("AAPL", 9.0, 1.0, T0 + 999));
    // Exactly on the boundary: belongs to the next 1 s candle.
    let out = e.apply(&tick("AAPL", 11.0, 5.0, T0 + 1_000));
    assert_eq!(out.status, TickStatus::Applied);
    // 1 s candle closed + new 1 s candle + 1 m candle updated.
    let summary: Vec<_> = out
        .updates
        .iter()
        .map(|u| (u.candle.interval, u.candle.start, u.closed))
        .collect();
    assert_eq!(
        summary,
        [
            (CandleInterval::OneSecond, T0, true),
            (CandleInterval::OneSecond, T0 + 1_000, false),
            (CandleInterval::OneMinute, T0, false),
        ]
    );
    let s1 = e.candles("AAPL", CandleInterval::OneSecond);
    assert_eq!(s1.len(), 2);
    let c = &s1[0];
    assert_eq!(
        (c.open, c.high, c.low, c.close, c.volume),
        (10.0, 12.0, 9.0, 9.0, 4.0)
    );
    assert_eq!(c.symbol, "AAPL");
    let m1 = e.candles("AAPL", CandleInterval::OneMinute);
    assert_eq!(m1.len(), 1);
    assert_eq!(
        (m1[0].open, m1[0].high, m1[0].low, m1[0].close, m1[0].volume),
        (10.0, 12.0, 9.0, 11.0, 9.0)
    );
    // The minute boundary also opens a new 1 m candle.
    let out = e.apply(&tick("AAPL", 13.0, 1.0, T0 + 60_000));
    assert!(out
        .updates
        .iter()
        .any(|u| u.candle.interval == CandleInterval::OneMinute
            && u.candle.start == T0
            && u.closed));
    assert_eq!(e.candles("AAPL", CandleInterval::OneMinute).len(), 2);
}

#[test]
fn indicators_in_summary_use_candle_closes() {
    let mut e = engine();
    // One tick per second → 1 s closes 1, 2, 3, 4, 5.
    for (i, p) in [1.0, 2.0, 3.0, 4.0, 5.0].into_iter().enumerate() {
        e.apply(&tick("X", p, 1.0, T0 + i as i64 * 1_000));
    }
    let s = e.summary("X").unwrap();
    // SMA(3) of 3,4,5 = 4; EMA(3): seed 2, then 3, then 4 (see ema test).
    assert_approx(s.sma, 4.0);
    assert_approx(s.ema, 4.0);
    // closes 3,4,5: r1 = ln(4/3), r2 = ln(5/4); stddev = |r1 - r2|/√2.
    let expected = ((4.0f64 / 3.0).ln() - (5.0f64 / 4.0).ln()).abs() / 2f64.sqrt();
    assert_approx(s.volatility, expected);
    let closes: Vec<f64> = e
        .candles("X", CandleInterval::OneSecond)
        .iter()
        .map(|c| c.close)
        .collect();
    assert_eq!(closes, [1.0, 2.0, 3.0, 4.0, 5.0]);

    // Too few candles → None.
    e.apply(&tick("Y", 1.0, 1.0, T0));
    let s = e.summary("Y").unwrap();
    assert_eq!((s.sma, s.ema, s.volatility), (None, None, None));
}

#[test]
fn gaps_produce_no_fake_candles() {
    let mut e = engine();
    e.apply(&tick("X", 1.0, 1.0, T0));
    e.apply(&tick("X", 2.0, 1.0, T0 + 10_500));
    let starts: Vec<_> = e
        .candles("X", CandleInterval::OneSecond)
        .iter()
        .map(|c| c.start)
        .collect();
    assert_eq!(starts, [T0, T0 + 10_000]);
}

#[test]
fn rings_are_bounded() {
    let mut e = engine(); // 5 candles per interval
    for i in 0..1_000 {
        e.apply(&tick("X", 1.0 + i as f64, 1.0, T0 + i * 1_000));
    }
    let s1 = e.candles("X", CandleInterval::OneSecond);
    assert_eq!(s1.len(), 5);
    assert_eq!(s1[0].start, T0 + 995_000, "oldest dropped first");
    assert_eq!(s1[4].start, T0 + 999_000);
    // 1000 s span 17 minutes; only the last 5 retained.
    let m1 = e.candles("X", CandleInterval::OneMinute);
    assert_eq!(m1.len(), 5);
    assert_eq!(m1[4].start, T0 + 960_000);
    assert_eq!(e.summary("X").unwrap().tick_count, 1_000);

    // Symbol count is bounded too (max_symbols = 3).
    e.apply(&tick("A", 1.0, 1.0, T0));
    e.apply(&tick("B", 1.0, 1.0, T0));
    let out = e.apply(&tick("C", 1.0, 1.0, T0));
    assert_eq!(
        out.status,
        TickStatus::Ignored(IgnoreReason::TooManySymbols)
    );
    assert_eq!(e.symbols().count(), 3);
}

#[test]
fn zero_history_keeps_no_candles() {
    let mut e = MarketEngine::new(MarketConfig {
        history_1s: 0,
        ..MarketConfig::default()
    });
    let out = e.apply(&tick("X", 1.0, 1.0, T0));
    assert_eq!(out.updates.len(), 1, "only the 1 m candle");
    assert!(e.candles("X", CandleInterval::OneSecond).is_empty());
}

#[test]
fn duplicates_are_ignored() {
    let mut e = engine();
    let t = tick("X", 10.0, 2.0, T0);
    assert!(e.apply(&t).is_applied());
    let out = e.apply(&t);
    assert_eq!(out.status, TickStatus::Ignored(IgnoreReason::Duplicate));
    assert!(out.updates.is_empty());
    // Same ts but different volume is a distinct trade.
    assert!(e.apply(&tick("X", 10.0, 3.0, T0)).is_applied());
    let s = e.summary("X").unwrap();
    assert_eq!((s.volume, s.tick_count, s.ignored_duplicate), (5.0, 2, 1));
}

#[test]
fn late_ticks_within_tolerance_revise_past_candles() {
    let mut e = engine(); // tolerance 2 s
    e.apply(&tick("X", 10.0, 1.0, T0 + 500));
    e.apply(&tick("X", 11.0, 1.0, T0 + 1_500));
    // 1.2 s behind the newest: applied to the closed T0 candle, and since
    // it is earlier than that candle's first tick it becomes its open.
    let out = e.apply(&tick("X", 20.0, 1.0, T0 + 300));
    assert_eq!(out.status, TickStatus::AppliedLate);
    assert_eq!(out.updates.len(), 2);
    assert!(out.updates[0].closed, "revision of a closed 1 s candle");
    assert!(!out.updates[1].closed, "the 1 m candle is still open");
    let s1 = e.candles("X", CandleInterval::OneSecond);
    let c = &s1[0];
    assert_eq!(
        (c.open, c.high, c.low, c.close, c.volume),
        (20.0, 20.0, 10.0, 10.0, 2.0)
    );
    let s = e.summary("X").unwrap();
    assert_eq!(s.last, 11.0, "last does not move backwards");
    assert_eq!(s.open, 20.0, "session open is the earliest tick");
    assert_eq!((s.high, s.volume), (20.0, 3.0));

    // 2.5 s behind the newest: beyond the tolerance, a backfill. The
    // session and `last` stay; no 1 s candle is retained that far back in
    // a ring with room, so one is inserted; the 1 min candle is revised.
    let out = e.apply(&tick("X", 5.0, 1.0, T0 - 1_000));
    assert_eq!(out.status, TickStatus::Backfilled);
    let s = e.summary("X").unwrap();
    assert_eq!(
        (s.low, s.last, s.volume, s.backfilled),
        (10.0, 11.0, 3.0, 1)
    );
    assert!(out.detached.is_empty(), "{out:?}");
    assert!(
        !out.updates.is_empty(),
        "the 1 min candle is revised: {out:?}"
    );
    assert!(out.updates.iter().all(|u| u.closed));

    assert_eq!(
        e.candles("X", CandleInterval::OneSecond)[0].start,
        T0 - 1_000
    );

    // A late tick at the newest candle but an earlier ts keeps the close.
    e.apply(&tick("X", 30.0, 1.0, T0 + 1_100));
    let s1 = e.candles("X", CandleInterval::OneSecond);
    assert_eq!((s1[2].open, s1[2].close, s1[2].high), (30.0, 11.0, 30.0));
    assert_eq!(e.summary("X").unwrap().last, 11.0);

    // Equal ts: the later arrival sets close and last.
    e.apply(&tick("X", 12.0, 1.0, T0 + 1_500));
    assert_eq!(e.summary("X").unwrap().last, 12.0);
}

#[test]
fn late_tick_into_gap_inserts_closed_candle_in_order() {
    let mut e = engine();
    e.apply(&tick("X", 1.0, 1.0, T0));
    e.apply(&tick("X", 3.0, 1.0, T0 + 2_000));
    let out = e.apply(&tick("X", 2.0, 1.0, T0 + 1_000));
    assert_eq!(out.status, TickStatus::AppliedLate);
    assert_eq!(out.updates[0].candle.start, T0 + 1_000);
    assert!(out.updates[0].closed);
    let starts: Vec<_> = e
        .candles("X", CandleInterval::OneSecond)
        .iter()
        .map(|c| c.start)
        .collect();
    assert_eq!(starts, [T0, T0 + 1_000, T0 + 2_000]);
}

#[test]
fn late_tick_older_than_full_ring_only_updates_session() {
    let mut e = MarketEngine::new(MarketConfig {
        history_1s: 2,
        late_tolerance_ms: 10_000,
        ..MarketConfig::default()
    });
    e.apply(&tick("X", 1.0, 1.0, T0 + 5_000));
    e.apply(&tick("X", 1.0, 1.0, T0 + 6_000));
    let out = e.apply(&tick("X", 2.0, 1.0, T0 + 1_000));
    assert_eq!(out.status, TickStatus::AppliedLate);
    // Only the 1 m candle changes; the 1 s ring is full and newer.
    assert_eq!(out.updates.len(), 1);
    assert_eq!(out.updates[0].candle.interval, CandleInterval::OneMinute);
    assert_eq!(e.candles("X", CandleInterval::OneSecond).len(), 2);
    assert_eq!(e.summary("X").unwrap().volume, 3.0);
}

#[test]
fn close_due_closes_quiet_candles_once() {
    let mut e = engine();
    e.apply(&tick("X", 1.0, 1.0, T0 + 10));
    assert!(e.close_due(T0 + 999).is_empty());
    let closed = e.close_due(T0 + 1_000);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].candle.interval, CandleInterval::OneSecond);
    assert!(closed[0].closed);
    assert!(e.close_due(T0 + 1_000).is_empty(), "reported once");
    let closed = e.close_due(T0 + 60_000);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].candle.interval, CandleInterval::OneMinute);
    // The next tick opens a new candle without re-closing the old one.
    let out = e.apply(&tick("X", 2.0, 1.0, T0 + 61_000));
    assert!(out.updates.iter().all(|u| !u.closed));
    assert_eq!(out.updates.len(), 2);
}

#[test]
fn odd_and_negative_timestamps_do_not_panic() {
    let mut e = engine();
    // -1 ms lies in the second [-1000, 0) and the minute [-60000, 0).
    e.apply(&tick("X", 1.0, 1.0, -1));
    let c = e.candles("X", CandleInterval::OneSecond);
    assert_eq!(c[0].start, -1_000);
    assert_eq!(e.candles("X", CandleInterval::OneMinute)[0].start, -60_000);
    e.apply(&tick("X", 1.0, 1.0, 0));
    assert_eq!(e.candles("X", CandleInterval::OneSecond)[1].start, 0);

    let mut e = engine();
    let out = e.apply(&tick("X", 1.0, 1.0, i64::MIN));
    assert_eq!(
        out.status,
        TickStatus::Ignored(IgnoreReason::TimestampOutOfRange)
    );
    e.apply(&tick("X", 1.0, 1.0, i64::MAX));
    e.apply(&tick("X", 2.0, 1.0, i64::MIN + 1_000_000));
    assert!(e.close_due(i64::MAX).len() <= 2);
    e.close_due(i64::MIN);
    assert!(e.summary("X").is_some());
}

#[test]
fn invalid_values_are_ignored_without_state() {
    let mut e = engine();
    for (p, v) in [
        (f64::NAN, 1.0),
        (f64::INFINITY, 1.0),
        (0.0, 1.0),
        (-1.0, 1.0),
        (1.0, f64::NAN),
        (1.0, -1.0),
    ] {
        let out = e.apply(&tick("X", p, v, T0));
        assert_eq!(out.status, TickStatus::Ignored(IgnoreReason::InvalidValue));
    }
    assert_eq!(e.symbols().count(), 0);
}

fn candle(symbol: &str, interval: CandleInterval, start: TimestampMs, ohlcv: [f64; 5]) -> Candle {
    let [open, high, low, close, volume] = ohlcv;
    Candle {
        symbol: symbol.into(),
        interval,
        start,
        open,
        high,
        low,
        close,
        volume,
    }
}

#[test]
fn seeding_restores_candles_and_session() {
    let mut e = engine();
    let m = CandleInterval::OneMinute;
    let n = e.seed_candles([
        candle("X", m, T0 + 60_000, [11.0, 14.0, 10.0, 13.0, 1.0]),
        candle("X", m, T0 + 5, [10.0, 12.0, 8.0, 11.0, 2.0]), // unaligned start
        candle("X", m, T0, [1.0, 1.0, 1.0, 1.0, 1.0]),        // same interval: skipped
        candle("X", m, T0 + 120_000, [f64::NAN, 1.0, 1.0, 1.0, 1.0]), // invalid
    ]);
    assert_eq!(n, 2);
    let c = e.candles("X", m);
    assert_eq!(
        c.iter().map(|c| c.start).collect::<Vec<_>>(),
        [T0, T0 + 60_000]
    );
    let s = e.summary("X").unwrap();
    assert_eq!(
        (s.open, s.last, s.high, s.low, s.volume),
        (10.0, 13.0, 14.0, 8.0, 3.0)
    );
    assert_eq!((s.tick_count, s.last_ts), (0, T0 + 60_000));
    // Typical prices: (12+8+11)/3 = 31/3 (vol 2), (14+10+13)/3 = 37/3 (vol 1).
    // VWAP = (62/3 + 37/3)/3 = 99/9 = 11.
    assert_approx(s.vwap, 11.0);

    // The newest seeded candle is still open and closes by wall time...
    let closed = e.close_due(T0 + 120_000);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].candle.start, T0 + 60_000);
    // ...and live ticks continue the session.
    let out = e.apply(&tick("X", 15.0, 1.0, T0 + 120_500));
    assert_eq!(out.status, TickStatus::Applied);
    let s = e.summary("X").unwrap();
    assert_eq!(
        (s.open, s.last, s.high, s.tick_count),
        (10.0, 15.0, 15.0, 1)
    );

    // Live candles win over seeded ones.
    let before = e.candles("X", m);
    e.seed_candles([candle("X", m, T0 + 120_000, [1.0, 1.0, 1.0, 1.0, 9.0])]);
    assert_eq!(e.candles("X", m), before);
}

#[test]
fn seeding_marks_only_the_newest_candle_open() {
    let mut e = engine();
    let s = CandleInterval::OneSecond;
    e.seed_candles([
        candle("X", s, T0, [1.0, 1.0, 1.0, 1.0, 1.0]),
        candle("X", s, T0 + 1_000, [1.0, 1.0, 1.0, 1.0, 1.0]),
    ]);
    // A tick in the newest seeded second updates it as an open candle.
    let out = e.apply(&tick("X", 2.0, 1.0, T0 + 1_500));
    let u = &out.updates[0];
    assert_eq!(
        (u.candle.start, u.closed, u.candle.close),
        (T0 + 1_000, false, 2.0)
    );
}

#[test]
fn summaries_name_their_interval_on_the_wire() {
    let mut e = engine();
    e.apply(&tick("X", 1.0, 1.0, T0));
    let s = serde_json::to_value(e.summary("X").unwrap()).unwrap();
    assert_eq!(s["indicator_interval"], "1s");
    assert_eq!(s["symbol"], "X");
}

#[test]
fn a_backfill_revises_held_candles_and_names_the_intervals_it_is_too_old_for() {
    let mut e = engine(); // rings of 5 candles
    let minute = 60_000;
    // 1 min ring: T0 .. T0+4 min; 1 s ring: the last 5 seconds.
    for ts in (0..4)
        .map(|i| T0 + i * minute)
        .chain((0..5).map(|i| T0 + 4 * minute + i * 1_000))
    {
        e.apply(&tick("B", 10.0, 1.0, ts));
    }
    let live = e.summary("B").unwrap();
    // Inside the 1 min ring, too old for the 1 s one (it holds 5 seconds).
    let out = e.apply(&tick("B", 12.0, 2.0, T0 + minute + 30_000));
    assert_eq!(out.status, TickStatus::Backfilled);
    assert_eq!(out.detached, [CandleInterval::OneSecond]);
    assert_eq!(out.updates.len(), 1);
    let revised = &out.updates[0];
    assert!(revised.closed);
    assert_eq!(
        (
            revised.candle.start,
            revised.candle.high,
            revised.candle.close,
            revised.candle.volume
        ),
        (T0 + minute, 12.0, 12.0, 3.0)
    );
    // Older than both rings.
    let out = e.apply(&tick("B", 9.0, 1.0, T0 - 10 * minute));
    assert_eq!(out.detached, CandleInterval::STORED);
    assert!(out.updates.is_empty());
    assert_eq!(e.candles("B", CandleInterval::OneMinute).len(), 5);
    let after = e.summary("B").unwrap();
    assert_eq!(
        (after.last, after.volume, after.high),
        (live.last, live.volume, live.high)
    );
    assert_eq!(after.backfilled, 2);
    // A live tick still moves the edge.
    let out = e.apply(&tick("B", 11.0, 1.0, T0 + 5 * minute));
    assert_eq!(out.status, TickStatus::Applied);
}
