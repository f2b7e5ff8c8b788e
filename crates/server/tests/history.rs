//! History you can travel, against a real server with a database: a file
//! of historical daily closes replayed with `pulse replay`, read back at
//! every interval after a restart, drawn by the server-rendered page for
//! its range, shown as it was at a past moment, and played back from there.

mod common;

use std::time::Duration;

use common::*;
use pulse_server::clock::now_ms;
use pulse_server::replay::{run, ReplayArgs};
use pulse_server::RunningServer;
use serde_json::Value;

const DAY_MS: i64 = 86_400_000;
/// 2019-01-02T14:30:00Z, the first close's time of day kept for every day.
const FIRST_CLOSE: i64 = 1_546_387_200_000 + 14 * 3_600_000 + 30 * 60_000;
const INTERVALS: [&str; 5] = ["1s", "1m", "5m", "1h", "1d"];

/// 300 weekday closes from 2019-01-02: a deterministic walk around 2,500.
fn daily_closes() -> Vec<(i64, f64)> {
    let mut closes = Vec::new();
    let mut price = 2_510.03;
    let mut day = 0;
    let mut seed: u64 = 2019;
    while closes.len() < 300 {
        let ts = FIRST_CLOSE + day * DAY_MS;
        // 1970-01-01 was a Thursday: day numbers 2 and 3 (mod 7) are weekends.
        let weekday = (ts / DAY_MS + 4) % 7;
        if weekday != 0 && weekday != 6 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let step = ((seed >> 33) % 2_001) as f64 / 1_000.0 - 1.0; // −1 % … +1 %
            price = (price * (1.0 + step / 100.0) * 100.0).round() / 100.0;
            closes.push((ts, price));
        }
        day += 1;
    }
    closes
}

async fn get(server: &RunningServer, path: &str) -> Value {
    let (status, body) = http(server, "GET", path, &[], b"").await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn closes_of(candles: &Value) -> Vec<f64> {
    candles
        .as_array()
        .expect("an array of candles")
        .iter()
        .map(|c| c["close"].as_f64().expect("close"))
        .collect()
}

#[tokio::test]
async fn daily_closes_replayed_read_back_at_every_interval_draw_and_travel() {
    let dir = temp_dir("daily");
    let db = dir.join("pulse.db");
    let closes = daily_closes();
    let csv: String = std::iter::once("symbol,price,volume,ts\n".to_owned())
        .chain(
            closes
                .iter()
                .map(|(ts, price)| format!("SPX,{price},1000,{ts}\n")),
        )
        .collect();
    let file = dir.join("spx-daily.csv");
    std::fs::write(&file, csv).expect("file written");

    let server = start_on(&db, |_| {}).await;
    let summary = run(&ReplayArgs {
        file,
        url: format!("http://{}", server.addr()),
        rate: None,
        token: None,
    })
    .await
    .expect("replay runs");
    assert_eq!(summary.accepted, 300, "{:?}", summary.problems());
    server.shutdown().await.expect("clean shutdown");

    let server = start_on(&db, |_| {}).await;
    let expected: Vec<f64> = closes.iter().map(|c| c.1).collect();
    for interval in INTERVALS {
        let candles = get(&server, &format!("/api/candles/SPX?interval={interval}")).await;
        assert_eq!(closes_of(&candles), expected, "{interval}");
        let first = &candles[0];
        assert_eq!(first["interval"], interval);
        let width = match interval {
            "1s" => 1_000,
            "1m" => 60_000,
            "5m" => 300_000,
            "1h" => 3_600_000,
            _ => DAY_MS,
        };
        assert_eq!(
            first["start"].as_i64(),
            Some(FIRST_CLOSE - FIRST_CLOSE % width)
        );
    }

    // The server's SMA 20 and last close, against the file's own.
    let spx = snapshot_symbol(&server, "SPX").await;
    let last20 = &expected[expected.len() - 20..];
    let sma20 = last20.iter().sum::<f64>() / 20.0;
    assert_eq!(spx["last"].as_f64(), expected.last().copied());
    let sma = spx["sma"].as_f64().expect("an SMA over 300 closes");
    assert!((sma - sma20).abs() < 1e-9, "server {sma}, file {sma20}");

    // Pages: the newest 100, and where the older ones continue.
    let (status, head, page) = http_with_head(
        server.addr(),
        "GET",
        "/api/candles/SPX?interval=1d&limit=100",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(closes_of(&page), expected[200..]);
    let older: i64 = head
        .lines()
        .find_map(|l| l.strip_prefix("x-pulse-older: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("an x-pulse-older header");
    let next = get(
        &server,
        &format!("/api/candles/SPX?interval=1d&limit=100&to={older}"),
    )
    .await;
    assert_eq!(closes_of(&next), expected[100..200]);

    for (path, needle) in [
        (
            "/api/candles/SPX?interval=2d",
            "interval must be one of 1s, 1m, 5m, 1h, 1d",
        ),
        (
            "/api/candles/SPX?interval=1d&from=10&to=5",
            "from must not be after to",
        ),
        ("/api/candles/SPX?interval=1d&limit=0", "limit must be"),
        ("/api/candles/SPX?interval=1d&limit=10001", "limit must be"),
    ] {
        let (status, body) = http(&server, "GET", path, &[], b"").await;
        assert_eq!(status, 400, "{path}");
        assert!(body.to_string().contains(needle), "{path}: {body}");
    }

    // The server-rendered page draws the range asked for in the URL.
    let page = get(&server, "/?symbol=SPX&interval=1d&range=all").await;
    let html = page.as_str().expect("html");
    assert!(
        html.contains("300 candles"),
        "the page shows every daily candle"
    );

    // And the page as it was half an hour before the 151st close.
    let (_, close150) = closes[149];
    let (day151, close151) = closes[150];
    let at = day151 - 30 * 60_000;
    let page = get(
        &server,
        &format!("/?symbol=SPX&interval=1d&range=all&at={at}"),
    )
    .await;
    let html = page.as_str().expect("html");
    assert!(html.contains("150 candles"), "only what existed by then");
    let header = html
        .split_once(r#"data-testid="last-price""#)
        .map(|(_, rest)| &rest[..rest.find("</span>").unwrap_or(0)])
        .expect("a price header");
    assert!(
        header.contains(&format!("{close150:.2}")),
        "the price header shows the close before, {close150:.2}: {header}"
    );
    assert!(
        !html.contains(&format!("{close151:.2}")),
        "nothing of the next day, {close151:.2}"
    );
    assert!(
        html.contains("data-testid=\"travel-clock\""),
        "the player is shown"
    );

    // Playing on from there: the next close, when its candle ended.
    let form = format!(
        "symbol=SPX&view%5Binterval%5D=1d&view%5Brange%5D=All&from={at}&to={}",
        at + 3_600_000
    );
    let (status, played) = rpc(&server, "played", form).await;
    assert_eq!(status, 200, "{played}");
    let events = played["events"].as_array().expect("events");
    let ticks: Vec<&Value> = events.iter().filter_map(|e| e[1].get("Tick")).collect();
    assert_eq!(ticks.len(), 1, "{played}");
    assert_eq!(ticks[0]["price"].as_f64(), Some(close151));
    let minute_end = day151 - day151 % 60_000 + 60_000;
    assert_eq!(ticks[0]["ts"].as_i64(), Some(minute_end));
    let candle = events
        .iter()
        .find_map(|e| e[1].get("Candle"))
        .expect("the chart's candle too");
    assert_eq!(candle[1]["candle"]["close"].as_f64(), Some(close151));
    assert_eq!(played["until"].as_i64(), Some(at + 3_600_000));
    let (status, body) = rpc(
        &server,
        "played",
        format!(
            "symbol=SPX&view%5Binterval%5D=1d&view%5Brange%5D=All&from={at}&to={}",
            at + 2 * 3_600_000 + 1
        ),
    )
    .await;
    assert_eq!(status, 400, "a span longer than an hour: {body}");

    server.shutdown().await.expect("clean shutdown");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dashboard at a past moment, through the server function the page
/// loads it with: the feed, the counts, sentiment and engagement as they
/// stood then, nothing from after it, and no viewers (they are not stored).
#[tokio::test]
async fn every_panel_shows_the_state_at_a_past_moment() {
    let dir = temp_dir("panels");
    let server = start_on(&dir.join("pulse.db"), |_| {}).await;
    let minute = 60_000;
    // A moment in 2020, and what happened around it.
    let at: i64 = 1_584_368_400_000;
    let ticks = serde_json::json!([
        {"symbol": "SPX", "price": 2_400.0, "volume": 1, "ts": at - 50 * minute},
        {"symbol": "SPX", "price": 2_450.0, "volume": 1, "ts": at + 10 * minute},
    ]);
    assert_eq!(post_json(&server, "/api/ticks", &ticks).await.0, 200);
    let posts = serde_json::json!([
        {"author": "ann", "text": "$SPX great rally, love it", "ts": at - 50 * minute},
        {"author": "bob", "text": "$SPX terrible crash, awful", "ts": at - 40 * minute},
        {"author": "cyd", "text": "$SPX after the moment", "ts": at + 10 * minute},
    ]);
    let (status, created) = post_json(&server, "/api/posts", &posts).await;
    assert_eq!(status, 200, "{created}");
    let id = |i: usize| created[i]["id"].as_u64().expect("post id");
    let likes = serde_json::json!([
        {"post_id": id(0), "kind": "like", "delta": 1, "ts": at - 10 * minute},
        {"post_id": id(0), "kind": "like", "delta": 1, "ts": at + 5 * minute},
        {"post_id": id(1), "kind": "like", "delta": 1, "ts": at - 30 * minute},
    ]);
    assert_eq!(post_json(&server, "/api/engagement", &likes).await.0, 200);

    let form =
        format!("symbol=SPX&view%5Binterval%5D=1m&view%5Brange%5D=OneHour&view%5Bat%5D={at}");
    let (status, data) = rpc(&server, "load_dashboard", form).await;
    assert_eq!(status, 200, "{data}");

    let feed = data["feed"].as_array().expect("feed");
    let shown: Vec<u64> = feed.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(shown, [id(1), id(0)], "posts up to then, newest first");
    assert_eq!(
        feed[1]["engagement"]["likes"], 1,
        "one of its two likes had happened"
    );
    assert_eq!(feed[0]["engagement"]["likes"], 1);

    let points = data["sentiment"]["points"]
        .as_array()
        .expect("sentiment points");
    assert_eq!(
        points.len(),
        2,
        "a point per post before the moment: {points:?}"
    );
    assert!(points[0][1].as_f64() > Some(0.0) && points[1][1].as_f64() < points[0][1].as_f64());
    assert_eq!(data["symbol"]["sentiment"]["symbol"], "SPX");

    // The engagement window is the 15 minutes before: only the first like.
    let top = data["engagement"]["top"].as_array().expect("top posts");
    let first = top
        .iter()
        .find(|t| t["post_id"].as_u64() == Some(id(0)))
        .expect("in the top");
    assert_eq!(first["window"]["likes"], 1);
    assert_eq!(first["author"], "ann");
    assert!(top
        .iter()
        .all(|t| t["post_id"].as_u64() != Some(id(1)) || t["window"]["likes"] == 0));

    let rows = data["watchlist"]["rows"].as_array().expect("watchlist");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["last"].as_f64(),
        Some(2_400.0),
        "not the price from after"
    );
    assert_eq!(data["presence"]["sessions"], 0);
    assert!(
        data["positions"].as_object().is_some_and(|p| p.is_empty()),
        "nothing to subscribe to"
    );

    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A span holding more than one call's 5,000 events ends early, at an
/// instant before which it is complete, and the next call goes on from
/// there: every stored candle is played exactly once. The bound is on the
/// answer, whatever kinds its events are: the shown symbol's candles come
/// as a tick and a candle each, so 5,000 candles would be 7,500 events.
#[tokio::test]
async fn a_busy_hour_is_played_in_several_calls_with_nothing_lost_or_twice() {
    let dir = temp_dir("busy");
    let server = start_on(&dir.join("pulse.db"), |_| {}).await;
    let second = 1_000;
    let t0 = (now_ms() - 3 * 3_600_000) / 60_000 * 60_000;
    // An hour of one-second candles of two symbols: 7,200, more than one
    // call answers.
    for batch in 0..4 {
        let ticks: Vec<Value> = (0..900)
            .flat_map(|i| {
                let n = batch * 900 + i;
                ["BUSA", "BUSB"].map(|symbol| {
                    serde_json::json!({"symbol": symbol, "price": 100.0 + n as f64, "volume": 1, "ts": t0 + n * second})
                })
            })
            .collect();
        let (status, body) = post_json(&server, "/api/ticks", &Value::Array(ticks)).await;
        assert_eq!(status, 200, "{body}");
    }
    let end = t0 + 3_600_000;
    let mut from = t0;
    let mut played = Vec::new();
    let mut charted = Vec::new();
    let mut calls = 0;
    while from < end {
        let form =
            format!("symbol=BUSA&view%5Binterval%5D=1s&view%5Brange%5D=Live&from={from}&to={end}");
        let (status, chunk) = rpc(&server, "played", form).await;
        assert_eq!(status, 200, "{chunk}");
        let until = chunk["until"].as_i64().expect("until");
        assert!(until > from && until <= end, "{from} → {until}");
        let events = chunk["events"].as_array().expect("events");
        // The watchlist's ticks of both symbols and the chart's candles
        // of BUSA: at most one call's 5,000 in all.
        assert!(events.len() <= 5_000, "{} events", events.len());
        for event in events {
            if let Some(tick) = event[1].get("Tick") {
                let ts = tick["ts"].as_i64().expect("ts");
                assert!(ts > from && ts <= until, "{ts} outside ({from}, {until}]");
                let symbol = tick["symbol"].as_str().expect("symbol").to_owned();
                played.push((symbol, tick["price"].as_f64().expect("price")));
            }
            if let Some(update) = event[1].get("Candle") {
                let candle = &update[1]["candle"];
                assert_eq!(candle["symbol"], "BUSA", "{update}");
                charted.push(candle["close"].as_f64().expect("close"));
            }
        }
        from = until;
        calls += 1;
        assert!(calls < 10, "the span moves on");
    }
    assert!(calls >= 3, "10,800 events do not fit two calls");
    let expected: Vec<(String, f64)> = (0..3_600)
        .flat_map(|n| ["BUSA", "BUSB"].map(|s| (s.to_owned(), 100.0 + n as f64)))
        .collect();
    assert_eq!(played, expected, "in time order, each once");
    let closes: Vec<f64> = (0..3_600).map(|n| 100.0 + n as f64).collect();
    assert_eq!(charted, closes, "the chart's candles, each once");
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
