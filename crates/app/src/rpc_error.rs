//! The error every server function answers with. Like the HTTP API, a failed
//! call gets a status that says whose fault it is and a JSON body in the
//! HTTP API's shape (`{"error":{"code":"invalid","message":"...","field":"text"}}`),
//! instead of server_fn's default: 500 and plain text for everything.
//!
//! The variants are the [`ErrorKind`]s: the code is the kind's
//! [`code`](ErrorKind::code) and the status its [`status`](ErrorKind::status).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::Bytes;
use pulse_core::error::ErrorKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `remote = "Self"`: the derives give the inner `{"code",...}` object as
/// inherent `RpcError::serialize`/`deserialize`; the trait impls below wrap
/// it in `{"error": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case", remote = "Self")]
pub enum RpcError {
    /// The caller's arguments are wrong (400); `field` names the one at fault.
    #[error("{message}")]
    Invalid {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
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

impl Serialize for RpcError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Body<'a>(&'a RpcError);
        impl Serialize for Body<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                RpcError::serialize(self.0, serializer)
            }
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Body<'a>,
        }
        Envelope { error: Body(self) }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RpcError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(with = "RpcError")]
            error: RpcError,
        }
        Envelope::deserialize(deserializer).map(|envelope| envelope.error)
    }
}

impl RpcError {
    /// An error of `kind` without a field.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        match kind {
            ErrorKind::Invalid => Self::Invalid {
                message,
                field: None,
            },
            ErrorKind::NotFound => Self::NotFound { message },
            ErrorKind::Unauthorized => Self::Unauthorized { message },
            ErrorKind::Forbidden => Self::Forbidden { message },
            ErrorKind::RateLimited => Self::RateLimited { message },
            ErrorKind::Unavailable => Self::Unavailable { message },
            ErrorKind::Internal => Self::Internal { message },
        }
    }

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

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        self.kind().status()
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
        server_side::answer_with_status(self);
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_else(|_| {
                Bytes::from_static(br#"{"error":{"code":"internal","message":"error"}}"#)
            })
    }
}

#[cfg(feature = "ssr")]
use server_side::handling_request;

/// What only the server needs: the request being answered, seen through the
/// [`Backend`](crate::backend::Backend).
#[cfg(feature = "ssr")]
mod server_side {
    use super::RpcError;
    use crate::backend::Backend;

    fn backend() -> Option<std::sync::Arc<dyn Backend>> {
        leptos::prelude::use_context()
    }

    /// Whether this runs while the server answers a request.
    pub(super) fn handling_request() -> bool {
        backend().is_some_and(|backend| backend.in_request())
    }

    /// Gives the response the error's status. Not for a plain HTML form post
    /// (no script): server_fn answers it with a redirect back to the page
    /// carrying the error, which a status must not replace.
    pub(super) fn answer_with_status(error: &RpcError) {
        let Some(backend) = backend().filter(|backend| backend.in_request()) else {
            return;
        };
        let from_plain_form = backend
            .request_header("accept")
            .is_some_and(|accept| accept.contains("text/html"));
        if !from_plain_form {
            backend.respond(
                Some(error.status()),
                &[("content-type", "application/json")],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_travel_in_the_http_apis_shape_and_come_back_equal() {
        let error = RpcError::invalid(Some("text"), "must not be empty");
        let bytes = error.ser();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            serde_json::json!({"error": {"code": "invalid", "field": "text", "message": "must not be empty"}})
        );
        assert_eq!(RpcError::de(bytes), error);
        assert_eq!(error.status(), 400);
        let without_field = RpcError::new(ErrorKind::NotFound, "no such post");
        assert_eq!(
            serde_json::to_value(&without_field).unwrap(),
            serde_json::json!({"error": {"code": "not_found", "message": "no such post"}})
        );
        assert_eq!(RpcError::de(without_field.ser()), without_field);
    }

    #[test]
    fn each_variant_is_its_kind_with_the_kinds_code_and_status() {
        for kind in ErrorKind::ALL {
            let error = RpcError::new(kind, "m");
            assert_eq!(error.kind(), kind);
            assert_eq!(error.status(), kind.status());
            let json = serde_json::to_value(&error).unwrap();
            assert_eq!(json["error"]["code"], kind.code(), "{json}");
            assert_eq!(RpcError::de(error.ser()), error);
        }
    }

    #[test]
    fn the_old_flat_shape_is_not_an_rpc_error() {
        // A body without the envelope (not ours) decodes to `Internal`.
        let flat = Bytes::from_static(br#"{"code":"not_found","message":"gone"}"#);
        assert!(matches!(RpcError::de(flat), RpcError::Internal { .. }));
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
