//! The writer task: drains the outbox into the socket.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;

use crate::clock::now_ms;
use crate::outbox::{Outbox, Outgoing};

pub(super) async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        let (items, close) = outbox.next_batch().await;
        let count = items.len() as u64;
        let mut bytes = 0u64;
        // The oldest producer timestamp in this write, for the latency histogram.
        let mut oldest_source_ts: Option<i64> = None;
        for item in items {
            let message = match item {
                Outgoing::Shared(frame) => {
                    frame
                        .stats
                        .delivered
                        .fetch_add(frame.events.len() as u64, Relaxed);
                    if let Some(ts) = frame.events.first().and_then(|e| e.source_ts) {
                        oldest_source_ts = Some(oldest_source_ts.map_or(ts, |o: i64| o.min(ts)));
                    }
                    Message::Text(frame.text.clone())
                }
                Outgoing::Own(text) => Message::Text(text),
                Outgoing::Ping => Message::Ping(Default::default()),
            };
            if let Message::Text(text) = &message {
                bytes += text.len() as u64;
            }
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
        metrics.frames_out.fetch_add(count, Relaxed);
        metrics.bytes_out.fetch_add(bytes, Relaxed);
        if let Some(ts) = oldest_source_ts {
            // One observation per write keeps the histogram cheap at high fan-out.
            metrics.observe_delivery(now_ms().saturating_sub(ts).max(0) as u64);
        }
        if let Some(close) = close {
            let frame = CloseFrame {
                code: close.code.code(),
                reason: Utf8Bytes::from(close.reason),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return;
        }
    }
}
