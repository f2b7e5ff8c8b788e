//! The WebSocket protocol on `/ws`: JSON text frames tagged by `op`.
//!
//! Shared by the server (which parses [`ClientMessage`]) and the browser
//! (which parses [`ServerMessage`]). Event frames are encoded by the hub once
//! per event, not through [`ServerMessage`], so every subscriber shares the
//! same bytes.
//!
//! - this module: topics, stream positions and error codes;
//! - [`client`]: what clients send;
//! - [`server`]: what the server sends;
//! - [`payload`]: the `data` of each topic's events and the read models
//!   clients parse;
//! - [`close`]: the WebSocket close codes the server uses.

pub mod client;
pub mod close;
pub mod payload;
pub mod server;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::validate_symbol;

pub use client::{ClientMessage, MAX_ANALYZE_CHARS, MAX_CLIENT_FRAME_BYTES};
pub use close::CloseCode;
pub use payload::{
    CandleUpdate, EngagementEvent, EngagementUpdate, FeedPost, RateBucket, Rates, SentimentStats,
    SentimentUpdate, SymbolSummary, TopPost,
};
pub use server::{EventFrame, ServerMessage};

/// A named stream of events: clients subscribe to topics and the hub fans
/// each topic's events out to its subscribers.
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

/// Where a client left a topic: the epoch it saw and the last offset it received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: String,
    pub offset: u64,
}

/// Machine-readable error codes of `error` frames. On the wire each is its
/// [`ErrorCode::as_str`] name; serde goes through that one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// Valid JSON, but not a known message shape (unknown op, missing field).
    InvalidMessage,
    UnknownTopic,
    /// A text frame over [`MAX_CLIENT_FRAME_BYTES`].
    FrameTooLarge,
    /// A binary frame: the protocol is JSON text frames only.
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
    /// Every code, for parsing (list a new variant here too).
    pub const ALL: [ErrorCode; 11] = [
        Self::InvalidJson,
        Self::InvalidMessage,
        Self::UnknownTopic,
        Self::FrameTooLarge,
        Self::BinaryNotSupported,
        Self::Unauthorized,
        Self::InvalidData,
        Self::ReadOnlyTopic,
        Self::TooManySubscriptions,
        Self::Unavailable,
        Self::Internal,
    ];

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

    /// The code's name on the wire (and as a metrics label).
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

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error code name this build does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code '{0}'")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;

        impl serde::de::Visitor<'_> for Name {
            type Value = ErrorCode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error code name")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ErrorCode, E> {
                s.parse()
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(s), &self))
            }
        }

        deserializer.deserialize_str(Name)
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
    fn global_topics_are_the_ones_without_a_symbol() {
        for topic in Topic::GLOBAL {
            assert_eq!(topic.symbol(), None, "{topic}");
        }
        assert_eq!(Topic::GLOBAL.len(), 5);
    }

    #[test]
    fn error_codes_are_snake_case_names_both_ways() {
        let names: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|code| {
                serde_json::to_value(code)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "invalid_json",
                "invalid_message",
                "unknown_topic",
                "frame_too_large",
                "binary_not_supported",
                "unauthorized",
                "invalid_data",
                "read_only_topic",
                "too_many_subscriptions",
                "unavailable",
                "internal",
            ]
        );
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
            let text = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&text).unwrap(), code);
        }
        assert!(serde_json::from_str::<ErrorCode>(r#""nope""#).is_err());
        assert!(serde_json::from_str::<ErrorCode>("7").is_err());
    }
}
