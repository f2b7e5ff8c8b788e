//! The WebSocket protocol on `/ws`: JSON text frames tagged by `op`.
//!
//! Shared by the server (which parses [`ClientMessage`]) and the browser
//! (which parses [`ServerMessage`]). Event frames are encoded by the hub once
//! per event, not through [`ServerMessage`], so every subscriber shares the
//! same bytes.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::analytics::engagement::Counts;
use crate::analytics::sentiment_window::SentimentStats;
use crate::model::{validate_symbol, EngagementKind, Post, TimestampMs};

/// Largest client frame the server accepts.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// A stream the hub fans out; plays the role of a Django Channels group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Every tick of every symbol.
    Ticks,
    /// Ticks of one symbol.
    SymbolTicks(String),
    /// Candle updates of one symbol.
    Candles(String),
    Posts,
    Sentiment,
    Engagement,
    Presence,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic '{0}'; topics are ticks, ticks:<SYMBOL>, candles:<SYMBOL>, posts, sentiment, engagement, presence")]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let with_symbol = |symbol: &str, make: fn(String) -> Topic| {
            validate_symbol(symbol)
                .map(|()| make(symbol.to_owned()))
                .map_err(|_| UnknownTopic(s.to_owned()))
        };
        match s {
            "ticks" => Ok(Self::Ticks),
            "posts" => Ok(Self::Posts),
            "sentiment" => Ok(Self::Sentiment),
            "engagement" => Ok(Self::Engagement),
            "presence" => Ok(Self::Presence),
            _ => {
                if let Some(symbol) = s.strip_prefix("ticks:") {
                    with_symbol(symbol, Topic::SymbolTicks)
                } else if let Some(symbol) = s.strip_prefix("candles:") {
                    with_symbol(symbol, Topic::Candles)
                } else {
                    Err(UnknownTopic(s.to_owned()))
                }
            }
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ticks => f.write_str("ticks"),
            Self::SymbolTicks(symbol) => write!(f, "ticks:{symbol}"),
            Self::Candles(symbol) => write!(f, "candles:{symbol}"),
            Self::Posts => f.write_str("posts"),
            Self::Sentiment => f.write_str("sentiment"),
            Self::Engagement => f.write_str("engagement"),
            Self::Presence => f.write_str("presence"),
        }
    }
}

impl Topic {
    /// The topics that are not per symbol: what a snapshot reads positions of
    /// (besides the tracked symbols' own topics).
    pub const GLOBAL: [Topic; 5] = [
        Topic::Ticks,
        Topic::Posts,
        Topic::Sentiment,
        Topic::Engagement,
        Topic::Presence,
    ];

    /// Market-data topics may be conflated for slow consumers (latest tick per symbol).
    pub fn is_market_data(&self) -> bool {
        matches!(self, Self::Ticks | Self::SymbolTicks(_))
    }

    /// The symbol of a per-symbol topic.
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Self::SymbolTicks(symbol) | Self::Candles(symbol) => Some(symbol),
            _ => None,
        }
    }

    /// A topic whose events each carry a whole state (the active users), so
    /// a new subscriber is sent the latest one at once instead of waiting
    /// for the next change.
    pub fn is_state(&self) -> bool {
        matches!(self, Self::Presence)
    }
}

/// Payload of `posts` events: a post with its current engagement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedPost {
    #[serde(flatten)]
    pub post: Post,
    pub engagement: Counts,
}

/// Payload of `sentiment` events, sent whenever a post changes a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentimentUpdate {
    /// `"overall"` or a symbol.
    pub scope: String,
    pub ts: TimestampMs,
    pub stats: SentimentStats,
}

/// Payload of `engagement` events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngagementEvent {
    pub post_id: u64,
    pub kind: EngagementKind,
    pub delta: i64,
    pub ts: TimestampMs,
    pub totals: Counts,
}

/// Where a client left a topic: the epoch it saw and the last offset it received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: String,
    pub offset: u64,
}

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

/// Longest text `analyze` accepts, in characters.
pub const MAX_ANALYZE_CHARS: usize = 10_000;

/// One event as it appears inside `event` and `batch` frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    pub topic: String,
    pub offset: u64,
    pub data: serde_json::Value,
}

/// Server → client, as the browser parses it.
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
        sentiment: crate::model::Sentiment,
    },
}

/// Machine-readable error codes of `error` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// Valid JSON, but not a known message shape (unknown op, missing field).
    InvalidMessage,
    UnknownTopic,
    /// A frame over [`MAX_CLIENT_FRAME_BYTES`] or a binary frame.
    FrameTooLarge,
    BinaryNotSupported,
    /// `publish` without the ingest token.
    Unauthorized,
    /// Published data failed validation.
    InvalidData,
    /// Published data refers to something unknown (a post never seen or too old).
    NotFound,
    /// The topic cannot be published to by clients.
    ReadOnlyTopic,
    /// The connection already holds its limit of subscriptions.
    TooManySubscriptions,
    /// Storage is failing: nothing was accepted; try another node or later.
    Unavailable,
    /// The server could not complete the request.
    Internal,
}

impl ErrorCode {
    /// Errors about the frame itself rather than what it asks for; only
    /// these count towards closing a connection for misbehaving.
    pub fn is_malformed_frame(self) -> bool {
        matches!(
            self,
            Self::InvalidJson
                | Self::InvalidMessage
                | Self::FrameTooLarge
                | Self::BinaryNotSupported
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownTopic => "unknown_topic",
            Self::FrameTooLarge => "frame_too_large",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::Unauthorized => "unauthorized",
            Self::InvalidData => "invalid_data",
            Self::NotFound => "not_found",
            Self::ReadOnlyTopic => "read_only_topic",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_their_names() {
        for name in [
            "ticks",
            "ticks:AAPL",
            "candles:BRK.B",
            "posts",
            "sentiment",
            "engagement",
            "presence",
        ] {
            let topic: Topic = name.parse().unwrap();
            assert_eq!(topic.to_string(), name);
        }
    }

    #[test]
    fn unknown_and_malformed_topics_are_rejected() {
        for bad in [
            "",
            "tick",
            "ticks:",
            "ticks:aapl",
            "candles:TOO-LONG-SYMBOL",
            "Posts",
        ] {
            assert!(bad.parse::<Topic>().is_err(), "{bad}");
        }
    }

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
}
