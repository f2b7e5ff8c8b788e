//! One subscriber connection: connect and subscribe (with retries), report
//! readiness, then count every frame until the run stops or the server
//! closes the connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

use crate::shared::Shared;
use crate::sub_stats::SubStats;
use crate::ws::{self, Ws};

/// What every subscriber connects to and how.
pub struct SubscriberPlan {
    /// Subscriber `i` connects to `urls[i % urls.len()]`.
    pub urls: Vec<Arc<str>>,
    pub topic: Arc<str>,
    pub attempts: u32,
    /// Bounds how many connect at the same time.
    pub permits: Semaphore,
    pub quickack: bool,
}

/// Tells the connect phase whether this subscriber made it (or why not).
pub type Ready = mpsc::UnboundedSender<Result<(), String>>;

/// The subscriber task; `None` when it never connected.
pub async fn subscriber(
    index: usize,
    plan: Arc<SubscriberPlan>,
    shared: Arc<Shared>,
    ready: Ready,
    stop: watch::Receiver<bool>,
) -> Option<SubStats> {
    let url = Arc::clone(&plan.urls[index % plan.urls.len()]);
    let (ws, offset) = match connect_with_retries(&plan, &url, &stop).await? {
        Ok(ok) => ok,
        Err(error) => {
            let _ = ready.send(Err(error));
            return None;
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(Ok(()));
    drop(ready);
    let mut ws = ws;
    let stats = receive(&mut ws, SubStats::starting_at(offset), &plan, &shared, stop).await;
    shared.connected.fetch_sub(1, Ordering::Relaxed);
    if stats.disconnected.is_none() {
        // Close politely; the server has not.
        let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
    }
    Some(stats)
}

/// Up to `plan.attempts` tries, holding a connect permit throughout;
/// `None` if the semaphore is closed, `Err` with the last failure.
async fn connect_with_retries(
    plan: &SubscriberPlan,
    url: &str,
    stop: &watch::Receiver<bool>,
) -> Option<Result<(Ws, u64), String>> {
    let _permit = plan.permits.acquire().await.ok()?;
    let mut last_error = String::new();
    for attempt in 1..=plan.attempts.max(1) {
        if *stop.borrow() {
            break;
        }
        match connect_subscriber(url, &plan.topic).await {
            Ok(ok) => return Some(Ok(ok)),
            Err(error) => {
                last_error = format!("{error:#}");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
    Some(Err(last_error))
}

/// Connects, subscribes and waits for `subscribed`; returns the socket and the start offset.
async fn connect_subscriber(url: &str, topic: &str) -> Result<(Ws, u64)> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws::config()), true).await?;
    let subscribe = serde_json::json!({"op": "subscribe", "topics": [topic]}).to_string();
    ws.send(Message::text(subscribe)).await?;
    let wait = async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message? {
                let value: serde_json::Value = serde_json::from_str(text.as_str())?;
                match value["op"].as_str() {
                    Some("subscribed") => return Ok(value["offset"].as_u64().unwrap_or(0)),
                    Some("error") => bail!("subscribe refused: {text}"),
                    _ => {}
                }
            }
        }
        bail!("connection closed before `subscribed`")
    };
    let offset = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| anyhow!("no `subscribed` reply within 30 s"))??;
    Ok((ws, offset))
}

/// Counts frames until `stop` or the end of the connection.
async fn receive(
    ws: &mut Ws,
    mut stats: SubStats,
    plan: &SubscriberPlan,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) -> SubStats {
    let stop_signal = stop.wait_for(|stop| *stop);
    tokio::pin!(stop_signal);
    loop {
        let message = tokio::select! {
            biased;
            message = ws.next() => message,
            _ = &mut stop_signal => break,
        };
        if plan.quickack {
            // Diagnostic: ACK at once instead of delaying the ACK, which
            // hides Nagle stalls of a sender without TCP_NODELAY. The flag is
            // not sticky in Linux, so it is set again after every read.
            if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                let _ = tcp.set_quickack(true);
            }
        }
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                stats.disconnected = Some(close_reason(frame.as_ref()));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                stats.disconnected = Some(format!("error: {error}"));
                break;
            }
            None => {
                stats.disconnected = Some("connection ended".into());
                break;
            }
        };
        let received_ns = shared.sends.now_ns();
        stats.on_text(text.as_str(), received_ns, shared);
    }
    stats
}

/// How the report names a server close.
fn close_reason(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("close {} {}", u16::from(frame.code), frame.reason),
        None => "close without reason".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn close_reasons_name_the_code_and_reason() {
        let frame = CloseFrame {
            code: CloseCode::Library(4008),
            reason: "too slow".into(),
        };
        assert_eq!(close_reason(Some(&frame)), "close 4008 too slow");
        assert_eq!(close_reason(None), "close without reason");
    }
}
