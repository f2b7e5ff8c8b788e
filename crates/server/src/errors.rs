//! The server's errors classified once into [`ErrorKind`]s, and the two
//! transport mappings that are not HTTP's ([`crate::api::ApiError`] maps
//! the kind to a status): to a server function's [`RpcError`] and to a
//! WebSocket [`ErrorCode`]. Every transport answers the same failure with
//! the same kind: an unknown post is `NotFound` (404) everywhere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pulse_app::rpc_error::RpcError;
pub use pulse_core::error::ErrorKind;
use pulse_core::protocol::ErrorCode;

use crate::broker::BrokerError;
use crate::ingest::IngestError;
use crate::reactions::ReactionError;
use crate::storage::StorageError;

impl IngestError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::UnknownPost { .. } => ErrorKind::NotFound,
            Self::Storage(error) => error.kind(),
            Self::Broker(error) => error.kind(),
            Self::Reaction(error) => error.kind(),
        }
    }
}

impl StorageError {
    /// A query or write failing while the server runs is the database's
    /// state, not the request's: nothing was changed, so retrying later is
    /// safe. Opening or migrating only happens at start.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable(_) | Self::Sqlite(_) => ErrorKind::Unavailable,
            Self::Open { .. } | Self::Unusable { .. } => ErrorKind::Internal,
        }
    }
}

impl BrokerError {
    /// Server data that does not serialize is a bug.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

impl ReactionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotAToggle => ErrorKind::Invalid,
            Self::InFlight | Self::AddressLimit(..) => ErrorKind::RateLimited,
        }
    }
}

/// The `error` frame code of a kind. The WebSocket has no forbidden or
/// rate-limited answer (publishes over the rate are slowed, not refused),
/// so those two take the nearest code.
pub fn ws_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::Invalid => ErrorCode::InvalidData,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::Unauthorized | ErrorKind::Forbidden => ErrorCode::Unauthorized,
        ErrorKind::RateLimited | ErrorKind::Unavailable => ErrorCode::Unavailable,
        ErrorKind::Internal => ErrorCode::Internal,
    }
}

/// The status and JSON body of `error`, for answers outside a server
/// function (the admission middleware).
pub fn rpc_response(error: RpcError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(error)).into_response()
}

impl From<IngestError> for RpcError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Invalid { ref error, .. } => {
                Self::invalid(Some(error.field), error.message.clone())
            }
            IngestError::UnknownPost { post_id, .. } => Self::new(
                error.kind(),
                format!("post {post_id} is unknown (never posted, or too old to react to)"),
            ),
            IngestError::Storage(error) => error.into(),
            IngestError::Broker(error) => Self::new(error.kind(), error.to_string()),
            IngestError::Reaction(error) => error.into(),
        }
    }
}

impl From<ReactionError> for RpcError {
    fn from(error: ReactionError) -> Self {
        match error {
            ReactionError::NotAToggle => Self::invalid(
                Some("kind"),
                "Only likes and shares can be toggled; kind must be like or share.",
            ),
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

impl From<StorageError> for RpcError {
    fn from(error: StorageError) -> Self {
        match error.kind() {
            ErrorKind::Unavailable => Self::new(
                ErrorKind::Unavailable,
                format!("nothing was accepted: {error}"),
            ),
            kind => Self::new(kind, error.to_string()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pulse_core::model::ValidationError;

    /// One error of each variant (the HTTP mapping's tests use them too).
    pub(crate) fn ingest_errors() -> Vec<IngestError> {
        vec![
            IngestError::Invalid {
                index: 2,
                error: ValidationError {
                    field: "price",
                    message: "must be > 0".into(),
                },
            },
            IngestError::UnknownPost {
                index: 0,
                post_id: 42,
            },
            IngestError::Storage(StorageError::Unavailable("disk full".into())),
            IngestError::Broker(BrokerError::Serialize(
                serde_json::from_str::<u8>("x").unwrap_err(),
            )),
        ]
    }

    #[test]
    fn an_unknown_post_is_not_found_over_every_transport() {
        let error = IngestError::UnknownPost {
            index: 0,
            post_id: 42,
        };
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(ws_code(error.kind()), ErrorCode::NotFound);
        let rpc = RpcError::from(error);
        assert_eq!((rpc.kind(), rpc.status()), (ErrorKind::NotFound, 404));
    }

    #[test]
    fn every_transport_answers_an_ingest_error_with_its_kind() {
        for error in ingest_errors() {
            let kind = error.kind();
            let debug = format!("{error:?}");
            let rpc = RpcError::from(error);
            assert_eq!(rpc.kind(), kind, "{debug}");
        }
        let kinds: Vec<ErrorKind> = ingest_errors().iter().map(IngestError::kind).collect();
        assert_eq!(
            kinds,
            [
                ErrorKind::Invalid,
                ErrorKind::NotFound,
                ErrorKind::Unavailable,
                ErrorKind::Internal
            ]
        );
    }

    #[test]
    fn reactions_and_storage_are_classified() {
        assert_eq!(ReactionError::NotAToggle.kind(), ErrorKind::Invalid);
        assert_eq!(ReactionError::InFlight.kind(), ErrorKind::RateLimited);
        assert_eq!(
            RpcError::from(ReactionError::AddressLimit(3, "like")).status(),
            429
        );
        let full = StorageError::Unavailable("queue full".into());
        assert_eq!(RpcError::from(full).status(), 503);
        let query = StorageError::Sqlite(rusqlite::Error::InvalidQuery);
        assert_eq!(query.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn each_kind_has_a_websocket_code_of_the_same_meaning() {
        assert_eq!(ws_code(ErrorKind::Invalid), ErrorCode::InvalidData);
        assert_eq!(ws_code(ErrorKind::Unavailable), ErrorCode::Unavailable);
        assert_eq!(ws_code(ErrorKind::Internal), ErrorCode::Internal);
        assert_eq!(ws_code(ErrorKind::Unauthorized), ErrorCode::Unauthorized);
        for kind in ErrorKind::ALL {
            assert!(!ws_code(kind).is_malformed_frame(), "{kind:?}");
        }
    }
}
