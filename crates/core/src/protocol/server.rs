//! Server → client frames, as the browser parses them.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use crate::model::Sentiment;

/// One event as it appears inside `event` and `batch` frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    pub topic: String,
    pub offset: u64,
    pub data: serde_json::Value,
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ServerMessage {
    Subscribed {
        topic: String,
        epoch: String,
        offset: u64,
        recovered: bool,
    },
    Unsubscribed {
        topic: String,
    },
    Event(EventFrame),
    Batch {
        events: Vec<EventFrame>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The `id` of the request that failed, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    /// Acknowledges a `publish` that carried an `id`: the data is accepted.
    Published {
        id: serde_json::Value,
        topic: String,
        offset: u64,
    },
    /// Answer to `analyze`.
    Analysis {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
        sentiment: Sentiment,
    },
    /// The connection fell behind on market data: `skipped` queued events of
    /// `topic` were dropped and only the newest per symbol follows. Purely a
    /// notice; offsets keep counting, so nothing needs resuming.
    Conflated {
        // Fields in alphabetical order: the frame used to be built from a
        // sorted JSON map, and the bytes stay the same.
        skipped: u64,
        topic: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_parse_event_and_batch_frames() {
        let frame = r#"{"op":"batch","events":[{"topic":"ticks","offset":1,"data":{"x":1}},{"topic":"ticks","offset":2,"data":{"x":2}}]}"#;
        let ServerMessage::Batch { events } = serde_json::from_str(frame).unwrap() else {
            panic!("not a batch");
        };
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].offset, 2);
        let error = serde_json::to_string(&ServerMessage::Error {
            code: ErrorCode::UnknownTopic,
            message: "nope".into(),
            id: None,
        })
        .unwrap();
        assert_eq!(
            error,
            r#"{"op":"error","code":"unknown_topic","message":"nope"}"#
        );
    }

    #[test]
    fn conflated_notice_keeps_its_wire_bytes() {
        let notice = ServerMessage::Conflated {
            skipped: 2,
            topic: "ticks:AAPL".into(),
        };
        let text = serde_json::to_string(&notice).unwrap();
        // What `json!({"op", "topic", "skipped"})` produced before the variant existed.
        let old = serde_json::json!({"op": "conflated", "topic": "ticks:AAPL", "skipped": 2usize});
        assert_eq!(text, old.to_string());
        assert_eq!(
            text,
            r#"{"op":"conflated","skipped":2,"topic":"ticks:AAPL"}"#
        );
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&text).unwrap(),
            notice
        );
    }
}
