//! Keyset pagination: every row exactly once, in order, whatever the chunk
//! size, with many rows sharing a timestamp across chunk boundaries.

use std::path::PathBuf;

use proptest::prelude::*;
use rusqlite::{params, Connection};

use super::*;

/// A migrated database file of its own, removed on drop.
struct TempDb {
    dir: PathBuf,
    path: PathBuf,
}

impl TempDb {
    fn new() -> (Self, Connection) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pulse-export-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("pulse.db");
        let mut conn = crate::storage::open_connection(&path, false).expect("opens");
        crate::storage::migrate(&mut conn, &path).expect("migrates");
        (Self { dir, path }, conn)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn insert_ticks(conn: &mut Connection, ticks: &[Tick]) {
    let tx = conn.transaction().expect("tx");
    for tick in ticks {
        tx.execute(
            "INSERT INTO ticks (symbol, price, volume, ts) VALUES (?1, ?2, ?3, ?4)",
            params![tick.symbol, tick.price, tick.volume, tick.ts],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
}

fn drain(reader: &mut ExportReader, chunk: usize) -> Vec<ExportRows> {
    let mut chunks = Vec::new();
    while let Some(rows) = reader.next_chunk(chunk).expect("chunk") {
        assert!(
            rows.len() <= chunk,
            "{} rows in a chunk of {chunk}",
            rows.len()
        );
        chunks.push(rows);
    }
    chunks
}

fn ticks_of(chunks: Vec<ExportRows>) -> Vec<Tick> {
    chunks
        .into_iter()
        .flat_map(|rows| match rows {
            ExportRows::Ticks(ticks) => ticks,
            other => panic!("not ticks: {other:?}"),
        })
        .collect()
}

/// Ticks as the export must return them: by ts, then insertion order.
fn expected(ticks: &[Tick], keep: impl Fn(&Tick) -> bool) -> Vec<Tick> {
    let mut indexed: Vec<(usize, &Tick)> =
        ticks.iter().enumerate().filter(|(_, t)| keep(t)).collect();
    indexed.sort_by_key(|&(index, tick)| (tick.ts, index));
    indexed.into_iter().map(|(_, tick)| tick.clone()).collect()
}

fn tick(symbol: &str, n: usize, ts: i64) -> Tick {
    Tick {
        symbol: symbol.into(),
        price: 100.0 + n as f64 / 8.0,
        volume: n as f64,
        ts,
    }
}

#[test]
fn equal_timestamps_across_chunk_boundaries_come_out_once_each() {
    let (db, mut conn) = TempDb::new();
    // 25 ticks on one timestamp, then runs of 3, inserted out of ts order.
    let mut ticks: Vec<Tick> = (0..25).map(|n| tick("AAA", n, 2_000)).collect();
    ticks.extend((25..40).map(|n| {
        tick(
            if n % 2 == 0 { "AAA" } else { "BBB" },
            n,
            1_000 + (n as i64 / 3),
        )
    }));
    ticks.extend((40..50).map(|n| tick("BBB", n, 2_000)));
    insert_ticks(&mut conn, &ticks);
    for chunk in [1, 2, 3, 7, 25, 26, 49, 50, 51, 1_000] {
        let query = ExportQuery::Ticks {
            symbol: None,
            from: None,
            to: None,
        };
        let mut reader = ExportReader::open(&db.path, query).expect("opens");
        assert_eq!(
            ticks_of(drain(&mut reader, chunk)),
            expected(&ticks, |_| true),
            "chunk {chunk}"
        );
        let query = ExportQuery::Ticks {
            symbol: Some("BBB".into()),
            from: Some(1_005),
            to: Some(2_000),
        };
        let mut reader = ExportReader::open(&db.path, query).expect("opens");
        assert_eq!(
            ticks_of(drain(&mut reader, chunk)),
            expected(&ticks, |t| t.symbol == "BBB"
                && (1_005..=2_000).contains(&t.ts)),
            "chunk {chunk}"
        );
    }
}

#[test]
fn rows_committed_after_the_export_started_are_left_out() {
    let (db, mut conn) = TempDb::new();
    let first: Vec<Tick> = (0..10).map(|n| tick("AAA", n, 5_000)).collect();
    insert_ticks(&mut conn, &first);
    let query = ExportQuery::Ticks {
        symbol: None,
        from: None,
        to: None,
    };
    let mut reader = ExportReader::open(&db.path, query).expect("opens");
    let head = reader.next_chunk(4).expect("chunk").expect("rows");
    // Same timestamp, higher ids: a keyset without the id cap would return them.
    insert_ticks(
        &mut conn,
        &(10..20).map(|n| tick("AAA", n, 5_000)).collect::<Vec<_>>(),
    );
    let mut all = ticks_of(vec![head]);
    all.extend(ticks_of(drain(&mut reader, 4)));
    assert_eq!(all, first);
}

#[test]
fn candles_posts_and_engagement_page_by_their_keys() {
    let (db, conn) = TempDb::new();
    for start in (0..30i64).map(|n| 1_700_000_000_000 + n * 60_000) {
        conn.execute(
            "INSERT INTO candles (symbol, interval, start, open, high, low, close, volume)
             VALUES ('AAA', '1m', ?1, 1, 3, 0.5, 2, 10), ('BBB', '1m', ?1, 1, 1, 1, 1, 1),
                    ('AAA', '1s', ?1, 1, 1, 1, 1, 1)",
            params![start],
        )
        .expect("candle");
    }
    for n in 0..17i64 {
        conn.execute(
            "INSERT INTO posts (author, text, ts, compound, pos, neu, neg, label, symbols, likes)
             VALUES ('ann', ?1, ?2, 0.5, 0.4, 0.6, 0, 'positive', '[\"AAA\"]', ?3)",
            params![format!("post {n}, \"quoted\"\nnext line"), 1_000 - n, n],
        )
        .expect("post");
        conn.execute(
            "INSERT INTO engagement (post_id, kind, delta, ts) VALUES (?1, ?2, 1, ?3)",
            params![
                n + 1,
                ["like", "share", "comment"][n as usize % 3],
                7_000 + n / 4
            ],
        )
        .expect("engagement");
    }
    for chunk in [1, 4, 5, 17, 100] {
        let query = ExportQuery::Candles {
            symbol: "AAA".into(),
            interval: CandleInterval::OneMinute,
            from: Some(1_700_000_000_000 + 5 * 60_000),
            to: Some(1_700_000_000_000 + 24 * 60_000),
        };
        let mut reader = ExportReader::open(&db.path, query).expect("opens");
        let starts: Vec<i64> = drain(&mut reader, chunk)
            .into_iter()
            .flat_map(|rows| match rows {
                ExportRows::Candles(candles) => candles,
                other => panic!("{other:?}"),
            })
            .map(|candle| {
                assert_eq!(
                    (candle.symbol.as_str(), candle.interval),
                    ("AAA", CandleInterval::OneMinute)
                );
                assert_eq!((candle.high, candle.low, candle.volume), (3.0, 0.5, 10.0));
                candle.start
            })
            .collect();
        let want: Vec<i64> = (5..=24).map(|n| 1_700_000_000_000 + n * 60_000).collect();
        assert_eq!(starts, want, "chunk {chunk}");

        let query = ExportQuery::Posts {
            from: Some(990),
            to: None,
        };
        let mut reader = ExportReader::open(&db.path, query).expect("opens");
        let posts: Vec<(u64, i64)> = drain(&mut reader, chunk)
            .into_iter()
            .flat_map(|rows| match rows {
                ExportRows::Posts(posts) => posts,
                other => panic!("{other:?}"),
            })
            .map(|(post, counts)| {
                assert_eq!(counts.likes, post.id as i64 - 1);
                assert!(post.text.contains("\"quoted\"\nnext"));
                (post.id, post.ts)
            })
            .collect();
        assert_eq!(
            posts,
            (1..=11)
                .map(|id| (id, 1_001 - id as i64))
                .collect::<Vec<_>>()
        );

        let query = ExportQuery::Engagement {
            from: None,
            to: Some(7_003),
        };
        let mut reader = ExportReader::open(&db.path, query).expect("opens");
        let events: Vec<(u64, i64)> = drain(&mut reader, chunk)
            .into_iter()
            .flat_map(|rows| match rows {
                ExportRows::Engagement(events) => events,
                other => panic!("{other:?}"),
            })
            .map(|event| (event.post_id, event.ts))
            .collect();
        assert_eq!(
            events,
            (0..16)
                .map(|n| (n + 1, 7_000 + n as i64 / 4))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn an_empty_table_or_range_has_no_chunk() {
    let (db, mut conn) = TempDb::new();
    let query = ExportQuery::Engagement {
        from: None,
        to: None,
    };
    let mut reader = ExportReader::open(&db.path, query).expect("opens");
    assert_eq!(reader.next_chunk(10).expect("reads"), None);
    insert_ticks(&mut conn, &[tick("AAA", 1, 10)]);
    let query = ExportQuery::Ticks {
        symbol: None,
        from: Some(11),
        to: None,
    };
    let mut reader = ExportReader::open(&db.path, query).expect("opens");
    assert_eq!(reader.next_chunk(10).expect("reads"), None);
    assert_eq!(reader.next_chunk(10).expect("reads"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any mix of timestamps (few distinct ones, so many equal) and any
    /// chunk size: the chunks concatenate to exactly the sorted rows.
    #[test]
    fn chunks_cover_every_row_exactly_once(
        stamps in proptest::collection::vec((0i64..6, 0usize..3), 0..120),
        chunk in 1usize..12,
    ) {
        let (db, mut conn) = TempDb::new();
        let ticks: Vec<Tick> = stamps
            .iter()
            .enumerate()
            .map(|(n, &(ts, symbol))| tick(["AAA", "BBB", "CCC"][symbol], n, ts))
            .collect();
        insert_ticks(&mut conn, &ticks);
        for symbol in [None, Some("BBB")] {
            let query = ExportQuery::Ticks { symbol: symbol.map(str::to_owned), from: None, to: None };
            let mut reader = ExportReader::open(&db.path, query).expect("opens");
            let got = ticks_of(drain(&mut reader, chunk));
            prop_assert_eq!(got, expected(&ticks, |t| symbol.is_none_or(|s| t.symbol == s)));
        }
    }
}

/// Posts are in id order but their times are not (backfills): a time
/// range is every post whose `ts` lies in it, in id order, from whatever
/// ids hold them, chunk by chunk.
#[test]
fn a_time_range_of_posts_is_found_whatever_ids_hold_it() {
    let (db, conn) = TempDb::new();
    let ts_of = |n: i64| (n * 37) % 50;
    for n in 0..50i64 {
        conn.execute(
            "INSERT INTO posts (author, text, ts, compound, pos, neu, neg, label, symbols)
             VALUES ('ann', 'p', ?1, 0, 0, 1, 0, 'neutral', '[]')",
            params![ts_of(n)],
        )
        .expect("post");
    }
    let want: Vec<u64> = (0..50i64)
        .filter(|n| (10..=20).contains(&ts_of(*n)))
        .map(|n| n as u64 + 1)
        .collect();
    for chunk in [1, 3, 100] {
        for (from, to) in [(Some(10), Some(20)), (Some(50), None), (None, Some(-1))] {
            let query = ExportQuery::Posts { from, to };
            let mut reader = ExportReader::open(&db.path, query).expect("opens");
            let ids: Vec<u64> = drain(&mut reader, chunk)
                .into_iter()
                .flat_map(|rows| match rows {
                    ExportRows::Posts(posts) => posts,
                    other => panic!("{other:?}"),
                })
                .map(|(post, _)| post.id)
                .collect();
            let expected = if from == Some(10) {
                want.clone()
            } else {
                Vec::new()
            };
            assert_eq!(ids, expected, "chunk {chunk}, {from:?}..{to:?}");
        }
    }
}
