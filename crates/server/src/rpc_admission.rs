//! Admission of the dashboard's server functions (`/rpc/*`), like ingest:
//! a per-client rate (writes strict, reads looser), the posting policy, and
//! the session a write is counted under.
//!
//! - Reads ([`READS`]) share `--rpc-read-rate` per client; every other
//!   server function is a write (`submit_post`, `react_to_post`, and any
//!   added later unless listed) and has `--rpc-write-rate`. Beyond: 429
//!   `rate_limited` with `Retry-After`.
//! - When posting is not public (`--public-posting off`, the default once an
//!   ingest token is set), writes need `Authorization: Bearer <token>`;
//!   without it: 401 `unauthorized`.
//! - A write is counted for the session in the `pulse_sid` cookie; a request
//!   without one gets a new random one (128 bits, `HttpOnly`,
//!   `SameSite=Lax`, `Path=/`, until the browser closes) in the answer.
//!
//! Errors have the server functions' shape, the HTTP API's:
//! `{"error":{"code","message"}}`.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use pulse_app::rpc_error::RpcError;

use super::auth::{bearer_token, token_matches};
use super::errors::rpc_response;
use super::reactions::SessionId;
use super::state::AppState;

/// Server functions that change nothing.
pub const READS: &[&str] = &[
    "load_dashboard",
    "load_symbol",
    "candles",
    "older_posts",
    "sentiment_data",
    "played",
];

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pulse_sid";

/// Who makes an admitted write; server functions read it with [`caller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcCaller {
    pub session: SessionId,
    pub address: IpAddr,
}

/// The caller of the server function running now.
pub fn caller() -> Result<RpcCaller, RpcError> {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<RpcCaller>().copied())
        .ok_or_else(|| RpcError::internal("the request was not admitted"))
}

/// Middleware: admits `/rpc/*` calls, passes everything else through.
/// (Router-wide because leptos_axum mounts each server function on a route
/// of its own.)
pub async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(name) = request.uri().path().strip_prefix("/rpc/") else {
        return next.run(request).await;
    };
    let write = !READS.contains(&name);
    let address = super::api::client_address(request.extensions()).ip();
    let limiter = if write {
        &state.rpc.writes
    } else {
        &state.rpc.reads
    };
    if let Err(wait) = limiter.check(address, Instant::now()) {
        state.metrics.write_rejected("rate_limited");
        let kind = if write { "writes" } else { "reads" };
        let mut response = rpc_response(RpcError::RateLimited {
            message: format!(
                "Too many requests: at most {} {kind} per second from one address. Try again in a moment.",
                limiter.per_second()
            ),
        });
        let secs = super::rate_limit::retry_after_secs(wait);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    if !write {
        return next.run(request).await;
    }
    if let Err(error) = check_posting(&state, request.headers()) {
        state.metrics.write_rejected("unauthorized");
        return rpc_response(error);
    }
    let (session, new) = match session_of(request.headers()) {
        Some(session) => (session, false),
        None => match new_session() {
            Ok(session) => (session, true),
            Err(error) => return rpc_response(error),
        },
    };
    request
        .extensions_mut()
        .insert(RpcCaller { session, address });
    let mut response = next.run(request).await;
    if new {
        let cookie = format!("{SESSION_COOKIE}={session:032x}; Path=/; HttpOnly; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The posting policy: public, or only with the ingest token.
fn check_posting(state: &AppState, headers: &HeaderMap) -> Result<(), RpcError> {
    if state.config.posting_is_public() {
        return Ok(());
    }
    let Some(expected) = state.config.ingest_token.as_deref() else {
        return Err(RpcError::Unauthorized {
            message: "Posting and reacting from the dashboard are turned off on this server."
                .into(),
        });
    };
    if token_matches(expected, bearer_token(headers)) {
        Ok(())
    } else {
        Err(RpcError::Unauthorized {
            message: "Posting and reacting on this server need the ingest token (Authorization: Bearer <token>).".into(),
        })
    }
}

/// The session named by a well-formed `pulse_sid` cookie.
pub fn session_of(headers: &HeaderMap) -> Option<SessionId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .find_map(|value| {
            let value = value.trim_matches('"');
            (value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u128::from_str_radix(value, 16).ok())
                .flatten()
        })
}

/// A fresh random session id from the operating system.
fn new_session() -> Result<SessionId, RpcError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|error| RpcError::internal(format!("no randomness for a session: {error}")))?;
    Ok(u128::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_read_among_others_and_bad_values_are_ignored() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_of(&headers), None);
        headers.append(header::COOKIE, "theme=dark".parse().unwrap());
        headers.append(
            header::COOKIE,
            "a=b; pulse_sid=000000000000000000000000000000ff; c=d"
                .parse()
                .unwrap(),
        );
        assert_eq!(session_of(&headers), Some(0xff));
        for bad in [
            "pulse_sid=xyz",
            "pulse_sid=",
            "pulse_sidx=000000000000000000000000000000ff",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, bad.parse().unwrap());
            assert_eq!(session_of(&headers), None, "{bad}");
        }
    }

    #[test]
    fn new_sessions_differ() {
        let a = new_session().unwrap();
        let b = new_session().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn every_read_is_a_server_function_and_only_the_two_writes_are_not_reads() {
        // A read that was renamed would silently become a (stricter) write.
        let names: Vec<&str> = leptos::server_fn::axum::server_fn_paths()
            .filter_map(|(path, _)| path.strip_prefix("/rpc/"))
            .collect();
        for read in READS {
            assert!(names.contains(read), "{read} is not a server function");
        }
        let mut writes: Vec<&str> = names.into_iter().filter(|n| !READS.contains(n)).collect();
        writes.sort_unstable();
        assert_eq!(writes, ["react_to_post", "submit_post"]);
    }
}
