//! `/ws`: the WebSocket endpoint speaking the protocol in `pulse_core::protocol`.
//!
//! Each connection runs two tasks: this one reads client frames and moves hub
//! frames into the connection's [`Outbox`]; the writer drains the outbox into
//! the socket. Neither ever waits on another connection.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use pulse_core::protocol::CloseCode;

mod connection;
mod publish;
mod throttle;
mod writer;

use connection::Connection;
use throttle::Throttle;
use writer::write_loop;

use super::api::ApiError;
use super::auth::{bearer_token, may_ingest};
use super::state::AppState;

/// Malformed frames tolerated per connection before it is closed. Rejected
/// records (a publish whose data fails validation) never count: a producer
/// replaying a file with many bad lines must hear about every one.
const MAX_PROTOCOL_ERRORS: u32 = 100;
/// Frames beyond this are refused by the WebSocket layer itself (close 1009);
/// between [`MAX_CLIENT_FRAME_BYTES`] and this the client gets an `error` reply.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    /// Ingest token for connections that publish (alternative to the Authorization header).
    token: Option<String>,
    /// Dashboard session id; connections with one count as active users.
    session: Option<String>,
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    connect_info: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Response {
    let client_ip = connect_info.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |info| {
        let axum::Extension(axum::extract::ConnectInfo(addr)) = info;
        addr.ip()
    });
    if let Err(message) = check_origin(&headers, &state.config.allowed_origins) {
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message).into_response();
    }
    let presented = bearer_token(&headers).or(params.token.as_deref());
    let can_publish = may_ingest(state.config.ingest_token.as_deref(), presented);
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        // A small read buffer keeps idle connections cheap (clients send
        // little; a larger frame just takes more reads): 1 KiB instead of 4
        // took idle memory from 9.8 to 6.8 KiB per connection (BENCHMARKS.md).
        // Frames of one outbox batch gather in the write buffer and go out in
        // one syscall at the flush; the buffer only grows when data is queued.
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| {
            // Bounded so a client cannot make the presence map hold huge keys.
            let session = params.session.filter(|s| !s.is_empty() && s.len() <= 64);
            // An IPv6 /64 is one client, as for the rate limits and connection caps.
            let presence = super::presence::join(
                &state.presence,
                session,
                super::rate_limit::client_key(client_ip),
            );
            async move {
                Connection::new(state, can_publish).run(socket).await;
                drop(presence);
            }
        })
}

/// Browsers always send `Origin` on an upgrade; it must name this server or
/// an allowed origin (cross-site WebSocket hijacking). The same rule as every
/// state-changing request ([`super::csrf::check`]); clients without `Origin`
/// are programs, not browsers, and are let through.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    super::csrf::check(headers, host, allowed).map_err(|refused| refused.to_string())
}

/// The close a read error deserves (RFC 6455 §7.4.1): 1007 for text that is
/// not UTF-8, 1009 for a frame over the size limit, 1002 for other protocol
/// violations; `None` when the connection is simply gone.
fn close_for_read_error(error: axum::Error) -> Option<(CloseCode, &'static str)> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match *error.into_inner().downcast::<WsError>().ok()? {
        WsError::Utf8(_) => Some((CloseCode::InvalidData, "text frame is not valid UTF-8")),
        WsError::Capacity(_) => Some((CloseCode::TooBig, "frame too large")),
        WsError::Protocol(_) => Some((CloseCode::ProtocolError, "WebSocket protocol violation")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn same_origin_and_listed_origins_are_allowed() {
        assert!(check_origin(&headers(None, "127.0.0.1:3000"), &[]).is_ok());
        assert!(check_origin(
            &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
            &[]
        )
        .is_ok());
        assert!(check_origin(
            &headers(Some("https://evil.example"), "127.0.0.1:3000"),
            &[]
        )
        .is_err());
        let allowed = vec!["https://dash.example".to_owned()];
        assert!(check_origin(
            &headers(Some("https://dash.example"), "127.0.0.1:3000"),
            &allowed
        )
        .is_ok());
    }
}
