//! One publisher connection: sends its share of the ticks at a fixed rate,
//! stamping each one's send time in the send table just before it leaves.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Message;

use crate::shared::Shared;
use crate::ws::{self, Ws};

/// Symbols the ticks rotate through on the `ticks` topic.
const SYMBOLS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "BTC-USD",
];

/// What one publisher did.
pub struct PubResult {
    pub sent: u64,
    /// `error` replies from the server (e.g. rate limited, bad token).
    pub errors: u64,
    /// How far the publisher fell behind its schedule at worst.
    pub lag_max_ms: f64,
}

/// Events per publisher, summing to `total` (the first ones take the remainder).
pub fn shares(total: u64, publishers: u64) -> Vec<u64> {
    (0..publishers)
        .map(|p| total / publishers + u64::from(p < total % publishers))
        .collect()
}

/// The publisher task: `total` events at `rate` per second.
pub async fn publisher(
    url: Arc<str>,
    token: Option<String>,
    symbol: Option<String>,
    rate: f64,
    total: u64,
    shared: Arc<Shared>,
) -> Result<PubResult> {
    let ws = connect(&url, token).await?;
    let (mut sink, stream) = ws.split();
    let reader = count_errors(stream);
    let (sent, lag_max_ms) = send_paced(&mut sink, symbol.as_deref(), rate, total, &shared).await?;
    // Give error replies a moment to arrive, then close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    let errors = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    Ok(PubResult {
        sent,
        errors,
        lag_max_ms,
    })
}

async fn connect(url: &str, token: Option<String>) -> Result<Ws> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(ws::config()), true)
        .await
        .context("publisher could not connect")?;
    Ok(ws)
}

/// Counts error replies (and answers pings) without blocking the sender.
fn count_errors(mut stream: SplitStream<Ws>) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut errors = 0u64;
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                if text.as_str().contains(r#""op":"error""#) {
                    errors += 1;
                    if errors <= 3 {
                        eprintln!("loadgen: publisher got an error: {}", text.as_str());
                    }
                }
            }
        }
        errors
    })
}

/// Sends every millisecond what is due by then, in one flush; returns the
/// events sent and the worst lag (ms).
async fn send_paced(
    sink: &mut SplitSink<Ws, Message>,
    symbol: Option<&str>,
    rate: f64,
    total: u64,
    shared: &Shared,
) -> Result<(u64, f64)> {
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    let mut lag_max_ms = 0f64;
    let mut text = String::with_capacity(160);
    while sent < total {
        ticker.tick().await;
        let due = due(start.elapsed().as_secs_f64(), rate, total);
        if due > sent {
            lag_max_ms = lag_max_ms.max((due - sent) as f64 / rate * 1000.0);
        }
        let ts = unix_ms();
        let mut fed = false;
        while sent < due {
            let Some(seq) = shared.sends.claim() else {
                // The other publishers took the rest.
                sent = total;
                break;
            };
            write_tick(&mut text, seq, symbol, ts);
            shared.sends.mark_sent(seq);
            sink.feed(Message::text(text.clone()))
                .await
                .context("publisher connection failed")?;
            fed = true;
            sent += 1;
        }
        if fed {
            sink.flush().await.context("publisher connection failed")?;
        }
    }
    Ok((sent, lag_max_ms))
}

/// Events due `elapsed` seconds into publishing.
fn due(elapsed: f64, rate: f64, total: u64) -> u64 {
    ((elapsed * rate) as u64).min(total)
}

/// The `publish` frame of tick `seq`: `volume` carries the sequence number.
fn write_tick(text: &mut String, seq: u64, symbol: Option<&str>, ts: u64) {
    let symbol = symbol.unwrap_or(SYMBOLS[(seq % SYMBOLS.len() as u64) as usize]);
    let price = 100.0 + (seq % 1000) as f64 / 8.0;
    text.clear();
    let _ = write!(
        text,
        r#"{{"op":"publish","topic":"ticks","data":{{"symbol":"{symbol}","price":{price},"volume":{seq},"ts":{ts}}}}}"#
    );
}

/// Wall clock for the tick's `ts` (the server checks it is recent).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::scan_events;

    fn tick(seq: u64, symbol: Option<&str>) -> serde_json::Value {
        let mut text = String::new();
        write_tick(&mut text, seq, symbol, 1_700_000_000_000);
        serde_json::from_str(&text).unwrap_or_default()
    }

    #[test]
    fn shares_sum_to_the_total_and_differ_by_at_most_one() {
        assert_eq!(shares(10, 3), [4, 3, 3]);
        assert_eq!(shares(2, 4), [1, 1, 0, 0]);
        assert_eq!(shares(600, 1), [600]);
        assert_eq!(shares(0, 2), [0, 0]);
    }

    #[test]
    fn ticks_are_publish_frames_carrying_the_sequence_number() {
        let value = tick(9, None);
        assert_eq!(value["op"], "publish");
        assert_eq!(value["topic"], "ticks");
        assert_eq!(value["data"]["volume"], 9);
        assert_eq!(value["data"]["symbol"], "MSFT");
        assert_eq!(value["data"]["price"], 101.125);
        assert_eq!(value["data"]["ts"], 1_700_000_000_000u64);
        assert_eq!(tick(9, Some("ZZZ"))["data"]["symbol"], "ZZZ");
        assert_eq!(tick(1000, None)["data"]["price"], 100);
    }

    #[test]
    fn the_scanner_reads_back_the_sequence_of_a_published_tick() {
        // The server forwards `data` inside an event frame.
        let data = tick(123_456, None)["data"].to_string();
        let frame = format!(r#"{{"op":"event","topic":"ticks","offset":3,"data":{data}}}"#);
        let mut seen = Vec::new();
        scan_events(&frame, |offset, seq| seen.push((offset, seq)));
        assert_eq!(seen, [(3, Some(123_456))]);
    }

    #[test]
    fn pacing_is_rate_times_elapsed_capped_at_the_total() {
        assert_eq!(due(0.0, 200.0, 600), 0);
        assert_eq!(due(0.0049, 200.0, 600), 0);
        assert_eq!(due(0.5, 200.0, 600), 100);
        assert_eq!(due(10.0, 200.0, 600), 600);
    }
}
