//! What kind of failure an error is, whichever transport reports it.
//!
//! Each server error is classified into one [`ErrorKind`] once; HTTP, the
//! server functions and the WebSocket each map the kind to their own
//! answer (a status, an RPC code, an `error` frame code) in one place, so
//! the same failure is never, say, a 400 over one transport and a 404
//! over another.

use serde::{Deserialize, Serialize};

/// Whose fault a failure is, and what the caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is wrong (bad argument, failed validation): fix it.
    Invalid,
    /// What the request refers to does not exist (or no longer).
    NotFound,
    /// The request needs credentials it does not carry.
    Unauthorized,
    /// The request is refused whoever makes it (e.g. cross-site).
    Forbidden,
    /// Too many requests from this client: retry later.
    RateLimited,
    /// The server cannot take it now (storage failing); nothing was
    /// accepted, so retrying later or elsewhere is safe.
    Unavailable,
    /// A fault of the server.
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [Self; 7] = [
        Self::Invalid,
        Self::NotFound,
        Self::Unauthorized,
        Self::Forbidden,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The HTTP status of this kind.
    pub fn status(self) -> u16 {
        match self {
            Self::Invalid => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The generic error code (the serde name): what a transport without a
    /// more specific code answers.
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_serde_names_and_statuses_are_distinct_errors() {
        let mut statuses = std::collections::BTreeSet::new();
        for kind in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.code())
            );
            assert!((400..600).contains(&kind.status()), "{kind:?}");
            assert!(statuses.insert(kind.status()), "{kind:?} shares a status");
        }
        assert_eq!(ErrorKind::NotFound.status(), 404);
    }
}
