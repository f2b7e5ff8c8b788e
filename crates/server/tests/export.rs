//! `GET /api/export` against the real `pulse` binary on a random port:
//! every kind in both formats holds exactly what was ingested; candle,
//! tick, post and engagement exports replayed by `pulse replay` into an
//! empty server reproduce the same candles and posts; bad arguments are
//! 400s; the fifth concurrent export is a 503 and a client that goes away
//! frees its slot; and a slowly read export of 400,000 rows keeps the
//! server's memory flat.

mod common;
#[path = "export/node.rs"]
mod node;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use node::{replay, write_file, Node};

/// Now, as the server's clock has it.
fn now_ms() -> i64 {
    pulse_server::clock::now_ms()
}

/// Three hours ago on a minute boundary, the same for the whole run (the
/// data below is generated again to compare with).
fn base() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| (now_ms() - 3 * 3_600_000) / 60_000 * 60_000)
}

/// Ticks of AAA and BBB over ~8 minutes, three hours ago: pairs share a
/// timestamp, prices wander so candles get every shape (open at the high,
/// close at the low, one-tick candles, ...).
fn ticks() -> Vec<Value> {
    let base = base();
    (0..600i64)
        .map(|i| {
            json!({
                "symbol": if i % 3 == 2 { "BBB" } else { "AAA" },
                "price": 100.0 + ((i * 37) % 23) as f64 * 0.25 + (i as f64 / 7.0).sin(),
                "volume": (i % 7) as f64 * 1.5,
                "ts": base + (i / 2) * 1_500 + 250,
            })
        })
        .collect()
}

fn posts() -> Vec<Value> {
    let base = base() + 3_600_000;
    (0..30i64)
        .map(|i| {
            json!({
                "author": format!("ann, \"{i}\""),
                "text": format!("$AAA looks great, \"really\" ✓\nline two of post {i}; $BBB is awful"),
                "ts": base + i * 10_000,
            })
        })
        .collect()
}

/// Engagement on posts 1..=30 (a server's first posts).
fn engagement() -> Vec<Value> {
    let base = base() + 2 * 3_600_000;
    (0..90i64)
        .map(|i| {
            json!({
                "post_id": 1 + i % 30,
                "kind": (["like", "share", "comment"][i as usize % 3]),
                "delta": if i % 11 == 0 { -1 } else { 1 + i % 2 },
                "ts": base + (i / 3) * 1_000,
            })
        })
        .collect()
}

/// A server holding [`ticks`], [`posts`] and [`engagement`].
async fn filled(name: &str) -> Node {
    let node = Node::start(name).await;
    node.post("/api/ticks", &Value::Array(ticks())).await;
    node.post("/api/posts", &Value::Array(posts())).await;
    node.post("/api/engagement", &Value::Array(engagement()))
        .await;
    node
}

fn csv_rows(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(body);
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn ndjson_rows(body: &[u8]) -> Vec<Value> {
    std::str::from_utf8(body)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// The CSV rows as JSON objects, numbers as the server would type them.
fn csv_objects(body: &[u8]) -> Vec<Value> {
    let (header, rows) = csv_rows(body);
    rows.into_iter()
        .map(|row| {
            let object = header
                .iter()
                .zip(row)
                .map(|(name, value)| {
                    let typed = match value.parse::<i64>() {
                        Ok(n) if name != "symbol" && name != "author" && name != "text" => json!(n),
                        _ => match value.parse::<f64>() {
                            Ok(x) if name != "symbol" && name != "author" && name != "text" => {
                                json!(x)
                            }
                            _ => json!(value),
                        },
                    };
                    (name.clone(), typed)
                })
                .collect::<serde_json::Map<_, _>>();
            Value::Object(object)
        })
        .collect()
}

/// Numbers compared as f64 (CSV has no integer/float distinction).
fn same_numbers(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_numbers(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_numbers(v, w))
        }
        _ => a == b,
    }
}

fn assert_rows(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (n, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(same_numbers(g, w), "{what} row {n}: got {g}, want {w}");
    }
}

#[tokio::test]
async fn every_kind_exports_what_was_ingested_in_both_formats() {
    let node = filled("kinds").await;
    // Ticks by time, then arrival.
    let ticks = ticks();
    let mut by_time: Vec<(i64, usize, Value)> = ticks
        .iter()
        .enumerate()
        .map(|(n, t)| (t["ts"].as_i64().unwrap(), n, t.clone()))
        .collect();
    by_time.sort_by_key(|(ts, n, _)| (*ts, *n));
    let want: Vec<Value> = by_time.into_iter().map(|(_, _, t)| t).collect();

    let (status, head, body) = node.get("/api/export?kind=ticks").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/csv; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-disposition: attachment; filename=\"pulse-ticks.csv\""),
        "{head}"
    );
    assert_eq!(csv_rows(&body).0, ["symbol", "price", "volume", "ts"]);
    assert_rows(&csv_objects(&body), &want, "ticks csv");

    let (_, head, body) = node.get("/api/export?kind=ticks&format=ndjson").await;
    assert!(
        head.contains("content-type: application/x-ndjson"),
        "{head}"
    );
    assert!(head.contains("filename=\"pulse-ticks.ndjson\""), "{head}");
    assert_rows(&ndjson_rows(&body), &want, "ticks ndjson");

    let (from, to) = (
        want[100]["ts"].as_i64().unwrap(),
        want[400]["ts"].as_i64().unwrap(),
    );
    let body = node
        .export(&format!(
            "kind=ticks&symbol=BBB&from={from}&to={to}&format=ndjson"
        ))
        .await;
    let subset: Vec<Value> = want
        .iter()
        .filter(|t| {
            let ts = t["ts"].as_i64().unwrap();
            t["symbol"] == "BBB" && ts >= from && ts <= to
        })
        .cloned()
        .collect();
    assert!(subset.len() > 50);
    assert_rows(&ndjson_rows(&body), &subset, "BBB ticks in range");

    // Candles: exactly what /api/candles answers.
    for (interval, at_least) in [("1s", 100), ("1m", 5), ("5m", 2), ("1h", 1), ("1d", 1)] {
        let api = node
            .get_json(&format!("/api/candles/AAA?interval={interval}"))
            .await;
        let api = api.as_array().expect("candles").clone();
        assert!(api.len() >= at_least, "{interval}: {}", api.len());
        let (_, head, csv) = node
            .get(&format!(
                "/api/export?kind=candles&symbol=AAA&interval={interval}"
            ))
            .await;
        // (The helper lower-cases the head.)
        assert!(
            head.contains(&format!("filename=\"pulse-candles-aaa-{interval}.csv\"")),
            "{head}"
        );
        assert_rows(&csv_objects(&csv), &api, "candles csv");
        let nd = node
            .export(&format!(
                "kind=candles&symbol=AAA&interval={interval}&format=ndjson"
            ))
            .await;
        assert_rows(&ndjson_rows(&nd), &api, "candles ndjson");
    }

    // Posts with their scores and totals, oldest first: what /api/posts has.
    let api = node.get_json("/api/posts?limit=500").await;
    let mut want: Vec<Value> = api
        .as_array()
        .expect("posts")
        .iter()
        .map(|feed| {
            let (post, counts) = (feed, &feed["engagement"]);
            json!({
                "id": post["id"], "author": post["author"], "text": post["text"], "ts": post["ts"],
                "label": post["sentiment"]["label"], "compound": post["sentiment"]["compound"],
                "pos": post["sentiment"]["pos"], "neu": post["sentiment"]["neu"],
                "neg": post["sentiment"]["neg"], "symbols": post["symbols"],
                "likes": counts["likes"], "shares": counts["shares"], "comments": counts["comments"],
            })
        })
        .collect();
    want.reverse();
    assert_eq!(want.len(), 30);
    assert!(want.iter().any(|p| p["likes"].as_i64() > Some(0)));
    assert_eq!(
        want[0]["symbols"],
        json!(["AAA", "BBB"]),
        "tracked symbols are attributed"
    );
    let nd = node.export("kind=posts&format=ndjson").await;
    assert_rows(&ndjson_rows(&nd), &want, "posts ndjson");
    let csv = node.export("kind=posts").await;
    let csv_want: Vec<Value> = want
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["symbols"] = json!("AAA BBB");
            p
        })
        .collect();
    assert_rows(&csv_objects(&csv), &csv_want, "posts csv");

    // Engagement by time, then arrival.
    let events = engagement();
    let mut by_time: Vec<(i64, usize, Value)> = events
        .iter()
        .enumerate()
        .map(|(n, e)| (e["ts"].as_i64().unwrap(), n, e.clone()))
        .collect();
    by_time.sort_by_key(|(ts, n, _)| (*ts, *n));
    let want: Vec<Value> = by_time.into_iter().map(|(_, _, e)| e).collect();
    assert_rows(
        &csv_objects(&node.export("kind=engagement").await),
        &want,
        "engagement csv",
    );
    assert_rows(
        &ndjson_rows(&node.export("kind=engagement&format=ndjson").await),
        &want,
        "engagement ndjson",
    );
    // An empty range: the header only.
    let empty = node
        .export("kind=engagement&from=1000000000000&to=1000000000001")
        .await;
    assert_eq!(empty, b"post_id,kind,delta,ts\n");
}

#[tokio::test]
async fn exports_replayed_into_an_empty_server_reproduce_its_candles_and_posts() {
    let source = filled("replay-source").await;
    async fn candles(node: &Node, interval: &str) -> Value {
        node.get_json(&format!("/api/candles/AAA?interval={interval}"))
            .await
    }
    for (interval, format) in [
        ("1m", "csv"),
        ("1m", "ndjson"),
        ("1s", "csv"),
        ("1s", "ndjson"),
        ("5m", "csv"),
        ("1h", "ndjson"),
        ("1d", "csv"),
    ] {
        let body = source
            .export(&format!(
                "kind=candles&symbol=AAA&interval={interval}&format={format}"
            ))
            .await;
        let target = Node::start("replay-target").await;
        let file = write_file(&target, &format!("candles.{format}"), &body);
        let (stdout, stderr) = replay(&target, &file);
        let records = body.iter().filter(|&&b| b == b'\n').count() - usize::from(format == "csv");
        assert!(
            stdout.contains(&format!("{records} records sent: {records} accepted")),
            "{stdout}"
        );
        assert_eq!(
            stderr, "",
            "no progress drawn when stderr is not a terminal"
        );
        let want = candles(&source, interval).await;
        assert!(want.as_array().is_some_and(|c| !c.is_empty()), "{interval}");
        assert_eq!(
            candles(&target, interval).await,
            want,
            "{interval} {format}"
        );
        // The longer intervals come out the same too (1 s candles hold
        // everything, so the 1 min ones of a 1 s export do as well).
        let longer = ["1s", "1m", "5m", "1h", "1d"];
        let from = longer.iter().position(|&i| i == interval).expect("known") + 1;
        for coarser in &longer[from..] {
            assert_eq!(
                candles(&target, coarser).await,
                candles(&source, coarser).await,
                "{coarser} from {interval}"
            );
        }
    }

    // Ticks, then posts, then engagement: the same feed with the same ids.
    let target = Node::start("replay-all").await;
    for (kind, format) in [("ticks", "ndjson"), ("posts", "csv"), ("engagement", "csv")] {
        let body = source.export(&format!("kind={kind}&format={format}")).await;
        let file = write_file(&target, &format!("{kind}.{format}"), &body);
        let (stdout, _) = replay(&target, &file);
        assert!(
            stdout.contains(" 0 rejected, 0 unanswered"),
            "{kind}: {stdout}"
        );
    }
    assert_eq!(
        target.get_json("/api/posts?limit=500").await,
        source.get_json("/api/posts?limit=500").await
    );
    for interval in ["1s", "1m", "1h"] {
        for symbol in ["AAA", "BBB"] {
            let path = format!("/api/candles/{symbol}?interval={interval}");
            assert_eq!(
                target.get_json(&path).await,
                source.get_json(&path).await,
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn bad_arguments_are_400s_naming_the_field() {
    let node = Node::start("errors").await;
    for (query, field) in [
        ("", "kind"),
        ("kind=trades", "kind"),
        ("kind=ticks&format=xlsx", "format"),
        ("kind=ticks&symbol=aapl", "symbol"),
        ("kind=candles", "symbol"),
        ("kind=candles&symbol=AAA&interval=7m", "interval"),
        ("kind=posts&symbol=AAA", "symbol"),
        ("kind=engagement&interval=1m", "interval"),
        ("kind=ticks&from=yesterday", "from"),
        ("kind=ticks&to=12.5", "to"),
        ("kind=ticks&from=20&to=10", "from"),
    ] {
        let (status, answer) =
            common::http_to(node.addr, "GET", &format!("/api/export?{query}"), &[], b"").await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_parameter",
            "{query}: {answer}"
        );
        assert_eq!(answer["error"]["field"], field, "{query}: {answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

/// Sends an export request on a socket with a tiny receive buffer and does
/// not read: the export stalls once the buffers between are full.
async fn stalled_export(node: &Node) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4 * 1024).expect("buffer size");
    let mut stream = socket.connect(node.addr).await.expect("connects");
    let request = format!(
        "GET /api/export?kind=ticks HTTP/1.1\r\nHost: {}\r\n\r\n",
        node.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    stream
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_fifth_concurrent_export_is_refused_and_a_gone_client_frees_its_slot() {
    let node = Node::start("bound").await;
    node.insert_ticks(200_000, 3, 5);
    let mut stalled = Vec::new();
    for n in 1..=4 {
        stalled.push(stalled_export(&node).await);
        until("the export to start", async || {
            node.metric("pulse_exports_running").await == n as f64
        })
        .await;
    }
    assert_eq!(node.metric("pulse_limit{name=\"max_exports\"}").await, 4.0);
    let (head, body) = common::exchange(node.addr, "GET", "/api/export?kind=posts", "", b"").await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after: 5"), "{head}");
    let answer: Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(answer["error"]["code"], "too_many_exports", "{answer}");

    // Two clients hang up mid-download: their exports stop, well before
    // the 30 s write timeout would end them.
    stalled.truncate(2);
    until("the gone clients' exports to stop", async || {
        node.metric("pulse_exports_running").await == 2.0
    })
    .await;
    let body = node.export("kind=ticks&symbol=S3&format=ndjson").await;
    assert_eq!(ndjson_rows(&body).len(), 40_000);
    drop(stalled);
    until("every export to stop", async || {
        node.metric("pulse_exports_running").await == 0.0
    })
    .await;
}

#[tokio::test]
async fn a_large_export_read_slowly_keeps_the_servers_memory_flat() {
    const ROWS: usize = 400_000;
    let node = Node::start("memory").await;
    node.insert_ticks(ROWS, 4, 8);
    // Warm up (code pages, thread pools, allocator arenas), then measure.
    let small = node.export("kind=ticks&symbol=S1&to=1700000001000").await;
    assert!(small.len() > 1_000);
    let before = node.rss_bytes();

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("buffer size");
    let mut stream = socket.connect(node.addr).await.expect("connects");
    let request = format!(
        "GET /api/export?kind=ticks HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        node.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let started = Instant::now();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut peak = before;
    let mut reads = 0u64;
    loop {
        let n = stream.read(&mut buf).await.expect("reads");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        reads += 1;
        // For 3 s about 1 MB/s, a fraction of what even a debug build
        // produces (~5 MB/s): a server that buffered ahead would hold most
        // of the export by then. Then the rest as fast as it comes.
        if started.elapsed() < Duration::from_secs(3) {
            if reads.is_multiple_of(8) {
                peak = peak.max(node.rss_bytes());
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    let elapsed = started.elapsed();
    peak = peak.max(node.rss_bytes());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let body = common::dechunk(&raw[split + 4..]);
    let lines = body.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, ROWS + 1, "every row and the header");
    let grown = peak.saturating_sub(before) as f64 / 1_048_576.0;
    eprintln!(
        "{} MB in {elapsed:?}; RSS {:.1} MiB before, peak +{grown:.2} MiB",
        body.len() / 1_000_000,
        before as f64 / 1_048_576.0
    );
    // Holding the export (or its rows) would take more than twice the bound.
    assert!(body.len() > 2 * 5 * 1_048_576, "{} bytes", body.len());
    assert!(
        grown < 5.0,
        "RSS grew by {grown:.2} MiB while streaming {} bytes",
        body.len()
    );
}

#[tokio::test]
async fn an_in_memory_node_exports_what_it_holds_and_says_what_it_does_not_keep() {
    let server = common::start(|_| {}).await;
    let base = now_ms() - 60_000;
    let ticks: Vec<Value> = (0..20i64)
        .map(|i| json!({"symbol": (["MEMB", "MEMA"][i as usize % 2]), "price": 10 + i, "volume": 1, "ts": base + i * 100}))
        .collect();
    let (status, _) = common::post_json(&server, "/api/ticks", &Value::Array(ticks.clone())).await;
    assert_eq!(status, 200);
    let (head, body) = common::get_raw(&server, "/api/export?kind=ticks&format=ndjson", "").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let rows = ndjson_rows(&common::dechunk(&body));
    // Per symbol (in name order), each oldest first.
    let mut want = ticks;
    want.sort_by_key(|t| {
        (
            t["symbol"].as_str().unwrap().to_owned(),
            t["ts"].as_i64().unwrap(),
        )
    });
    assert_rows(&rows, &want, "in-memory ticks");

    let (status, answer) =
        common::http(&server, "GET", "/api/export?kind=engagement", &[], b"").await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "not_kept");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--in-memory"));
    server.shutdown().await.expect("clean shutdown");
}
