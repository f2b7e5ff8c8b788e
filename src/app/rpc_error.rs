//! The error every server function answers with. Like the HTTP API, a failed
//! call gets a status that says whose fault it is and a JSON body
//! (`{"code":"invalid","field":"text","message":"..."}`), instead of
//! server_fn's default: 500 and plain text for everything.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RpcError {
    /// The caller's arguments are wrong (400); `field` names the one at fault.
    #[error("{message}")]
    Invalid {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        message: String,
    },
    /// What the call refers to does not exist (404).
    #[error("{message}")]
    NotFound { message: String },
    /// The call needs the ingest token (401): posting is not public.
    #[error("{message}")]
    Unauthorized { message: String },
    /// A cross-site request (403).
    #[error("{message}")]
    Forbidden { message: String },
    /// Too many calls from this client, or too many reactions from its
    /// network (429).
    #[error("{message}")]
    RateLimited { message: String },
    /// Storage cannot take writes now; nothing was accepted (503).
    #[error("{message}")]
    Unavailable { message: String },
    /// Anything else, including a server that could not be reached (500).
    #[error("{message}")]
    Internal { message: String },
}

impl RpcError {
    pub fn invalid(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::RateLimited { .. } => 429,
            Self::Unavailable { .. } => 503,
            Self::Internal { .. } => 500,
        }
    }
}

impl FromServerFnError for RpcError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> Self {
        match error {
            // Arguments the server could not read are the caller's mistake,
            // and so is a request body that does not decode (elsewhere the
            // same variant means a reply that could not be read).
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                Self::invalid(None, error.to_string())
            }
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(_) if handling_request() => {
                Self::invalid(None, error.to_string())
            }
            other => Self::internal(other.to_string()),
        }
    }

    /// Encodes the error for the response; on the server this is also where
    /// the response gets its status and content type.
    fn ser(&self) -> Bytes {
        #[cfg(feature = "ssr")]
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
            .filter(|_| !from_plain_form())
        {
            use axum::http::{header, HeaderValue, StatusCode};
            response.set_status(
                StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            response.insert_header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from_static(br#"{"code":"internal","message":"error"}"#))
    }
}

#[cfg(feature = "ssr")]
pub use server_side::server_state;
#[cfg(feature = "ssr")]
use server_side::{from_plain_form, handling_request};

/// What only the server needs: the request it answers, its state, and how
/// its errors map to ours.
#[cfg(feature = "ssr")]
mod server_side {
    use super::RpcError;
    use crate::server::ingest::IngestError;
    use crate::server::storage::StorageError;

    /// Whether this runs while the server answers a request.
    pub(super) fn handling_request() -> bool {
        leptos::prelude::use_context::<axum::http::request::Parts>().is_some()
    }

    /// A plain HTML form post (no script): server_fn answers it with a redirect
    /// back to the page carrying the error, which a status must not replace.
    pub(super) fn from_plain_form() -> bool {
        leptos::prelude::use_context::<axum::http::request::Parts>().is_some_and(|parts| {
            parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
        })
    }

    /// The server's state, provided to every server function.
    pub fn server_state() -> Result<crate::server::state::AppState, RpcError> {
        leptos::prelude::use_context().ok_or_else(|| RpcError::internal("server state is missing"))
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
                IngestError::Hub(error) => Self::internal(error.to_string()),
            }
        }
    }

    /// For answers made outside a server function (the admission
    /// middleware): the status and the JSON body.
    impl axum::response::IntoResponse for RpcError {
        fn into_response(self) -> axum::response::Response {
            let status = axum::http::StatusCode::from_u16(self.status())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(self)).into_response()
        }
    }

    impl From<crate::server::reactions::ReactionError> for RpcError {
        fn from(error: crate::server::reactions::ReactionError) -> Self {
            use crate::server::reactions::ReactionError;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_travel_as_tagged_json_and_come_back_equal() {
        let error = RpcError::invalid(Some("text"), "must not be empty");
        let bytes = error.ser();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            serde_json::json!({"code": "invalid", "field": "text", "message": "must not be empty"})
        );
        assert_eq!(RpcError::de(bytes), error);
        assert_eq!(error.status(), 400);
    }

    #[test]
    fn unreadable_arguments_are_the_callers_fault() {
        let error = RpcError::from_server_fn_error(ServerFnErrorErr::Args("bad u64".into()));
        assert_eq!(error.status(), 400);
        let error = RpcError::from_server_fn_error(ServerFnErrorErr::Request("offline".into()));
        assert_eq!(error.status(), 500);
    }

    #[test]
    fn a_body_that_is_not_ours_still_decodes_to_an_error() {
        let error = RpcError::de(Bytes::from_static(b"<html>502 Bad Gateway</html>"));
        assert!(matches!(error, RpcError::Internal { .. }));
    }
}
