//! What fan-out carries: events serialized once, grouped into frames that
//! every subscriber of a topic writes as the same bytes.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

/// One published event, serialized once.
#[derive(Clone, Debug)]
pub struct Event {
    pub offset: u64,
    /// `{"topic":..,"offset":..,"data":..}` — the body shared by `event` and `batch` frames.
    pub body: Box<str>,
    /// Events with the same key supersede each other when a slow consumer is
    /// conflated (the symbol of a tick); `None` means never conflate.
    pub conflation_key: Option<Arc<str>>,
    /// Producer timestamp (Unix ms) when the data carries one, for latency metrics.
    pub source_ts: Option<i64>,
}

/// What the broadcast channel carries: one or more consecutive events of a
/// topic, already encoded as a WebSocket text frame (kept as the socket's
/// own type so no subscriber copies it).
#[derive(Debug)]
pub struct Frame {
    pub topic: Arc<str>,
    /// The topic's counters; writers add what they deliver.
    pub stats: Arc<TopicStats>,
    pub conflatable: bool,
    pub events: Vec<Arc<Event>>,
    pub text: Utf8Bytes,
}

impl Frame {
    pub fn last_offset(&self) -> u64 {
        self.events.last().map_or(0, |event| event.offset)
    }

    /// Encodes events as one `event` frame, or a `batch` frame when there are several.
    pub fn encode(events: &[Arc<Event>]) -> String {
        match events {
            [single] => {
                let mut text = String::with_capacity(single.body.len() + 14);
                text.push_str(r#"{"op":"event","#);
                text.push_str(&single.body[1..]);
                text
            }
            _ => {
                let len = events.iter().map(|e| e.body.len() + 1).sum::<usize>();
                let mut text = String::with_capacity(len + 28);
                text.push_str(r#"{"op":"batch","events":["#);
                for (i, event) in events.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(&event.body);
                }
                text.push_str("]}");
                text
            }
        }
    }
}

/// Per-topic counters for `/metrics`.
#[derive(Debug, Default)]
pub struct TopicStats {
    /// Events published on the topic.
    pub published: AtomicU64,
    /// Events written to subscribers (one per subscriber per event).
    pub delivered: AtomicU64,
}

/// A topic's figures at one moment, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: Arc<str>,
    pub subscribers: usize,
    pub published: u64,
    pub delivered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn single_and_batch_frames_share_event_bodies() {
        let event = |offset| {
            Arc::new(Event {
                offset,
                body: format!(r#"{{"topic":"posts","offset":{offset},"data":null}}"#).into(),
                conflation_key: None,
                source_ts: None,
            })
        };
        let single: Value = serde_json::from_str(&Frame::encode(&[event(1)])).unwrap();
        assert_eq!(
            single,
            json!({"op":"event","topic":"posts","offset":1,"data":null})
        );
        let batch: Value = serde_json::from_str(&Frame::encode(&[event(1), event(2)])).unwrap();
        assert_eq!(batch["op"], "batch");
        assert_eq!(batch["events"][1]["offset"], 2);
    }
}
