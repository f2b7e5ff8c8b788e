//! Client → server frames.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::StreamPosition;

/// Largest client frame the server accepts.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// Longest text `analyze` accepts, in characters.
pub const MAX_ANALYZE_CHARS: usize = 10_000;

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe {
        topics: Vec<String>,
        #[serde(default, skip_serializing_if = "HashMap::is_empty")]
        since: HashMap<String, StreamPosition>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    /// With an `id`, success is acknowledged by `published`.
    Publish {
        topic: String,
        data: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    /// Score a text for sentiment; nothing is stored or published.
    Analyze {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
        text: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_from_documented_frames() {
        let frame = r#"{"op":"subscribe","topics":["ticks:AAPL","posts"],"since":{"ticks:AAPL":{"epoch":"e1","offset":41}}}"#;
        let msg: ClientMessage = serde_json::from_str(frame).unwrap();
        let ClientMessage::Subscribe { topics, since } = msg else {
            panic!("not a subscribe: {msg:?}");
        };
        assert_eq!(topics, ["ticks:AAPL", "posts"]);
        assert_eq!(since["ticks:AAPL"].offset, 41);

        let msg: ClientMessage = serde_json::from_str(r#"{"op":"ping","id":7}"#).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Ping {
                id: Some(serde_json::json!(7))
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"dance"}"#).is_err());
    }
}
