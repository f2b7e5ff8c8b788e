//! How the server's errors reach a server function's caller: each module's
//! error is classified once here, and [`rpc_response`] answers with it
//! outside a server function (the admission middleware).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pulse_app::rpc_error::RpcError;

use crate::ingest::IngestError;
use crate::reactions::ReactionError;
use crate::storage::StorageError;

/// The status and JSON body of `error`.
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
            IngestError::UnknownPost { post_id, .. } => Self::NotFound {
                message: format!(
                    "post {post_id} is unknown (never posted, or too old to react to)"
                ),
            },
            IngestError::Storage(error) => error.into(),
            IngestError::Broker(error) => Self::internal(error.to_string()),
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
            ReactionError::InFlight | ReactionError::AddressLimit(..) => Self::RateLimited {
                message: error.to_string(),
            },
        }
    }
}

impl From<StorageError> for RpcError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(_) => Self::Unavailable {
                message: format!("nothing was accepted: {error}"),
            },
            other => Self::internal(other.to_string()),
        }
    }
}
