//! Cross-site request forgery: a page on another site must not be able to
//! post, like or ingest through a visitor's browser (a plain HTML form
//! needs no CORS permission to POST here).
//!
//! Every state-changing request (any method but GET, HEAD, OPTIONS) is
//! checked. Browsers say where a request comes from: `Origin` (sent with
//! every cross-origin request and every POST), or else `Sec-Fetch-Site`.
//! Allowed: this server's own origin (the `Origin` names the `Host` the
//! request was sent to), an origin listed in `--allowed-origins` (`*` allows
//! every one), `Sec-Fetch-Site: same-origin` or `none` (the user typed it),
//! and requests carrying neither header: programs such as `curl` or a
//! producer, which no web page can make a browser send. Everything else,
//! including `Origin: null` (sandboxed frames), is refused with 403
//! `forbidden`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::ApiError;
use super::errors::ErrorKind;
use super::state::AppState;

/// Why a request counts as cross-site.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrossSite {
    #[error(
        "cross-site request refused: origin '{0}' is neither this site nor in --allowed-origins"
    )]
    Origin(String),
    #[error("cross-site request refused: the Origin header is not valid text")]
    UnreadableOrigin,
    #[error("cross-site request refused: Sec-Fetch-Site is '{0}'")]
    FetchSite(String),
}

/// Middleware: refuses cross-site state-changing requests.
pub async fn refuse_cross_site(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match check(request.headers(), host, &state.config.allowed_origins) {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            state.metrics.write_rejected("forbidden");
            forbidden(&reason)
        }
    }
}

/// Whether a state-changing request with these headers, sent to `host`,
/// may go ahead.
pub fn check(headers: &HeaderMap, host: Option<&str>, allowed: &[String]) -> Result<(), CrossSite> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| CrossSite::UnreadableOrigin)?;
        let listed = allowed.iter().any(|a| {
            a == "*"
                || a.trim_end_matches('/')
                    .eq_ignore_ascii_case(origin.trim_end_matches('/'))
        });
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = match (origin_host, host) {
            (Some(origin_host), Some(host)) => {
                !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
            }
            _ => false,
        };
        return if listed || same {
            Ok(())
        } else {
            Err(CrossSite::Origin(origin.chars().take(200).collect()))
        };
    }
    match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(site))
            if site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none") =>
        {
            Ok(())
        }
        Some(site) => Err(CrossSite::FetchSite(
            site.unwrap_or("?").chars().take(40).collect(),
        )),
    }
}

/// 403 `{"error":{"code":"forbidden",...}}`: the one error shape of the
/// HTTP API and the server functions alike.
fn forbidden(reason: &CrossSite) -> Response {
    let kind = ErrorKind::Forbidden;
    ApiError::of(kind, kind.code(), reason.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    const HOST: Option<&str> = Some("127.0.0.1:3000");

    #[test]
    fn same_origin_listed_origins_and_programs_pass() {
        let none: &[String] = &[];
        assert!(check(&headers(&[]), HOST, none).is_ok(), "curl");
        assert!(check(&headers(&[("origin", "http://127.0.0.1:3000")]), HOST, none).is_ok());
        assert!(check(
            &headers(&[("origin", "https://127.0.0.1:3000")]),
            HOST,
            none
        )
        .is_ok());
        let listed = ["https://app.example".to_owned()];
        assert!(check(
            &headers(&[("origin", "https://app.example")]),
            HOST,
            &listed
        )
        .is_ok());
        assert!(check(
            &headers(&[("origin", "https://evil.example")]),
            HOST,
            &["*".into()]
        )
        .is_ok());
        for site in ["same-origin", "none"] {
            assert!(check(&headers(&[("sec-fetch-site", site)]), HOST, none).is_ok());
        }
    }

    #[test]
    fn other_origins_and_cross_site_fetches_are_refused() {
        let none: &[String] = &[];
        let refused = |pairs: &[(&'static str, &str)]| check(&headers(pairs), HOST, none).is_err();
        assert!(refused(&[("origin", "https://evil.example")]));
        assert!(refused(&[("origin", "null")]));
        assert!(
            refused(&[("origin", "http://127.0.0.1:3001")]),
            "another port"
        );
        assert!(refused(&[("origin", "http://127.0.0.1:3000.evil.example")]));
        assert!(refused(&[("sec-fetch-site", "cross-site")]));
        assert!(
            refused(&[("sec-fetch-site", "same-site")]),
            "a sibling subdomain"
        );
        // Origin decides when both are present.
        assert!(refused(&[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(
            check(&headers(&[("origin", "http://127.0.0.1:3000")]), None, none).is_err(),
            "without a Host nothing is same-origin"
        );
    }
}
