//! `pulse replay` against a real server on a random port: every bad line is
//! listed by its file line number, every good one lands, the token travels
//! in the `Authorization` header, and a dropped connection is reported
//! record by record instead of as one "connection lost".

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use pulse_server::replay::{run, ReplayArgs, ReplayError};
use pulse_server::RunningServer;

/// A file under the temp dir, unique per test and process, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(extension: &str, contents: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pulse-replay-{}-{}.{extension}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("temp file written");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn args(server: &RunningServer, file: &TempFile, token: Option<&str>) -> ReplayArgs {
    ReplayArgs {
        file: file.0.clone(),
        url: format!("http://{}", server.addr()),
        rate: None,
        token: token.map(str::to_owned),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Total volume of `symbol` over its one-minute candles.
async fn candle_volume(server: &RunningServer, symbol: &str) -> f64 {
    let (status, candles) = http(
        server,
        "GET",
        &format!("/api/candles/{symbol}?interval=1m"),
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{candles}");
    candles
        .as_array()
        .expect("a candle array")
        .iter()
        .map(|c| c["volume"].as_f64().expect("volume"))
        .sum()
}

#[tokio::test]
async fn every_bad_line_is_listed_and_every_good_line_lands() {
    let server = start(|_| {}).await;
    // More good records than the replay window, more bad ones than the 100
    // protocol errors after which the server used to close the connection;
    // written with a BOM, CRLF line ends, blank lines and quoted fields.
    let start_ts = now_ms() - 400_000;
    let mut text = String::from("\u{feff}symbol,price,volume,ts\r\n");
    let mut line = 1u64;
    let mut good = 0u64;
    let mut server_rejects = Vec::new();
    let mut local_rejects = Vec::new();
    for i in 0..3_000i64 {
        let ts = start_ts + i * 100;
        line += 1;
        if i % 17 == 0 {
            // Valid CSV that the server refuses.
            text.push_str(&format!("RPLAY,-1,1,{ts}\r\n"));
            server_rejects.push(line);
        } else if i % 500 == 1 {
            // Not even a number: refused before it is sent.
            text.push_str(&format!("RPLAY,\"1,5\",1,{ts}\r\n"));
            local_rejects.push(line);
        } else if i % 250 == 0 {
            text.push_str("\r\n");
            continue;
        } else {
            text.push_str(&format!("\"RPLAY\",{}.25,1,{ts}\r\n", 100 + i % 7));
            good += 1;
        }
    }
    assert!(server_rejects.len() > 150);
    let file = TempFile::new("csv", &text);

    let summary = run(&args(&server, &file, None)).await.expect("replay runs");

    assert_eq!(summary.interrupted, None, "{:?}", summary.problems());
    assert!(summary.unanswered.is_empty(), "{:?}", summary.unanswered);
    assert_eq!(summary.accepted, good);
    assert_eq!(summary.sent, good + server_rejects.len() as u64);
    assert_eq!(summary.invalid, local_rejects.len() as u64);
    let mut expected: Vec<u64> = server_rejects
        .iter()
        .chain(&local_rejects)
        .copied()
        .collect();
    expected.sort_unstable();
    assert_eq!(
        summary.rejected.keys().copied().collect::<Vec<_>>(),
        expected,
        "every bad line, by its line in the file"
    );
    for line in &server_rejects {
        let message = &summary.rejected[line];
        assert!(message.contains("price"), "line {line}: {message}");
    }
    for line in &local_rejects {
        assert!(summary.rejected[line].contains("price is not a finite number"));
    }
    let problems = summary.problems();
    assert!(problems.contains(&format!(
        "line {}: {}",
        server_rejects[0], summary.rejected[&server_rejects[0]]
    )));
    assert!(!summary.succeeded());

    // Every good record is in the candles (volume 1 each).
    assert_eq!(candle_volume(&server, "RPLAY").await, good as f64);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_token_travels_in_the_header_and_a_wrong_one_is_named() {
    let server = start(|config| config.ingest_token = Some("t".into())).await;
    let ts = now_ms() - 10_000;
    let text: String = (0..5)
        .map(|i| {
            format!(
                "{{\"symbol\":\"TOKN\",\"price\":10,\"volume\":2,\"ts\":{}}}\n",
                ts + i
            )
        })
        .collect();
    let file = TempFile::new("ndjson", &text);

    let summary = run(&args(&server, &file, Some("t")))
        .await
        .expect("replay runs");
    assert!(summary.succeeded(), "{:?}", summary.problems());
    assert_eq!(summary.accepted, 5);
    assert_eq!(candle_volume(&server, "TOKN").await, 10.0);

    for token in [Some("wrong"), None] {
        let error = run(&args(&server, &file, token))
            .await
            .expect_err("refused without the right token");
        assert!(matches!(error, ReplayError::Unauthorized { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("--token"), "{message}");
        assert!(message.contains("ingest token"), "{message}");
    }
    // Nothing more was accepted.
    assert_eq!(candle_volume(&server, "TOKN").await, 10.0);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_dropped_connection_is_reported_record_by_record() {
    let server = start(|config| config.test_hooks = true).await;
    let ts = now_ms() - 60_000;
    let mut text = String::from("symbol,price,volume,ts\n");
    for i in 0..400 {
        text.push_str(&format!("DROP,{},1,{}\n", 10 + i % 3, ts + i));
    }
    let file = TempFile::new("csv", &text);
    let mut replay = args(&server, &file, None);
    replay.rate = Some(100.0);
    let task = tokio::spawn(async move { run(&replay).await });
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (status, _) = http(&server, "POST", "/api/debug/drop-connections", &[], b"").await;
    assert_eq!(status, 200);

    let summary = task
        .await
        .expect("no panic")
        .expect("a summary, not an error");
    let reason = summary
        .interrupted
        .as_deref()
        .expect("the replay says it stopped");
    assert!(reason.contains("1012"), "{reason}");
    let first_unsent = summary
        .unsent_from
        .expect("the first line not sent is named");
    assert!(first_unsent > 2 && first_unsent <= 401, "{first_unsent}");
    assert!(summary.accepted > 0);
    assert_eq!(
        summary.accepted + summary.rejected.len() as u64 + summary.unanswered.len() as u64,
        summary.sent,
        "every sent record is acknowledged, rejected or listed as unanswered"
    );
    let problems = summary.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("replay stopped early")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("not sent: line")),
        "{problems:?}"
    );
    assert!(!summary.succeeded());
    // Acknowledged records are kept; unanswered ones may or may not be.
    let volume = candle_volume(&server, "DROP").await;
    let (accepted, unanswered) = (summary.accepted as f64, summary.unanswered.len() as f64);
    assert!(
        volume >= accepted && volume <= accepted + unanswered,
        "{volume} vs {accepted}+{unanswered}"
    );
    server.shutdown().await.expect("clean shutdown");
}
