//! CORS for the static dashboard (a bundle hosted on another origin, see
//! README "Static dashboard"): pages from an origin in `--allowed-origins`
//! (the list that also admits their WebSocket upgrades and, in [`csrf`],
//! their state-changing requests) may read what the dashboard reads:
//! `GET`/`HEAD /api/*` and `GET`/`POST /rpc/*`, preflights included.
//!
//! Answers carry `Access-Control-Allow-Credentials: true`: the dashboard
//! sends its session cookie (`pulse_sid`, reactions) along, which a browser
//! only does, and only lets the page read the answer, for an echoed origin
//! that allows credentials. (`SameSite=Lax` keeps the cookie to same-site
//! bundles, e.g. `dash.example.com` and `pulse.example.com`.)
//!
//! Every other origin, path or method gets no CORS headers at all, so the
//! browser keeps the answer from the page. CORS only decides what a page
//! may *read*; whether a request is served at all stays with the Host
//! allowlist ([`guard`]) and the cross-site refusal ([`csrf`]), which run
//! regardless of this layer.
//!
//! [`csrf`]: crate::csrf
//! [`guard`]: crate::guard

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Headers a page may send beyond the CORS-safelisted ones (server
/// functions send `Content-Type` and `Accept`; a token is `Authorization`).
const ALLOWED_HEADERS: &str = "content-type, accept, authorization";
/// What a page may read beyond the safelisted response headers (a 429's
/// wait, the sentiment data's validator, a candle page's continuation, an
/// export's file name).
const EXPOSED_HEADERS: &str = "retry-after, etag, x-pulse-older, content-disposition";
/// How long a browser may reuse a preflight answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";

/// The origins whose pages may read the dashboard's endpoints.
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    origins: Vec<String>,
    any: bool,
}

/// The two surfaces the dashboard reads, and the methods each allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surface {
    Api,
    Rpc,
}

impl Surface {
    fn of(path: &str) -> Option<Self> {
        if path.starts_with("/api/") {
            Some(Self::Api)
        } else if path.starts_with("/rpc/") {
            Some(Self::Rpc)
        } else {
            None
        }
    }

    fn methods(self) -> &'static str {
        match self {
            Self::Api => "GET, HEAD",
            Self::Rpc => "GET, POST",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Self::Api => matches!(*method, Method::GET | Method::HEAD),
            Self::Rpc => matches!(*method, Method::GET | Method::POST),
        }
    }
}

impl CorsPolicy {
    /// From `--allowed-origins` (`*` admits every origin, as it does for
    /// upgrades and [`crate::csrf`]).
    pub fn new(allowed: &[String]) -> Self {
        Self {
            origins: allowed
                .iter()
                .filter(|o| o.as_str() != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any: allowed.iter().any(|o| o == "*"),
        }
    }

    /// Whether a page from `origin` may read the dashboard's endpoints.
    /// (`null`, from sandboxed frames and files, never.)
    pub fn allows(&self, origin: &str) -> bool {
        if origin == "null" || origin.is_empty() {
            return false;
        }
        self.any
            || self
                .origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }

    /// What to do with a request to `path` from `headers`'s `Origin`.
    fn decide(&self, method: &Method, path: &str, headers: &HeaderMap) -> Decision {
        let Some(surface) = Surface::of(path) else {
            return Decision::Untouched;
        };
        let origin = headers
            .get(header::ORIGIN)
            .filter(|o| o.to_str().is_ok_and(|o| self.allows(o)));
        let Some(origin) = origin.cloned() else {
            return Decision::VaryOnly;
        };
        if *method == Method::OPTIONS {
            let requested = headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|m| m.to_str().ok())
                .and_then(|m| m.parse::<Method>().ok());
            return match requested {
                Some(requested) if surface.allows(&requested) => {
                    Decision::Preflight { origin, surface }
                }
                // Not a preflight, or for a method this surface does not offer.
                _ => Decision::VaryOnly,
            };
        }
        if surface.allows(method) {
            Decision::Allow { origin }
        } else {
            Decision::VaryOnly
        }
    }
}

/// The answer's CORS treatment.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Not a dashboard endpoint.
    Untouched,
    /// A dashboard endpoint, but not for this origin or method: only
    /// `Vary: Origin`, so caches keep answers per origin.
    VaryOnly,
    /// Answered here (204), without running the handlers.
    Preflight {
        origin: HeaderValue,
        surface: Surface,
    },
    /// Served as usual, readable by `origin`.
    Allow { origin: HeaderValue },
}

/// Middleware: CORS headers for allowed origins on the dashboard's
/// endpoints, preflights answered.
pub async fn cors(State(policy): State<Arc<CorsPolicy>>, request: Request, next: Next) -> Response {
    let decision = policy.decide(request.method(), request.uri().path(), request.headers());
    match decision {
        Decision::Untouched => next.run(request).await,
        Decision::VaryOnly => {
            let mut response = next.run(request).await;
            vary_on_origin(response.headers_mut());
            response
        }
        Decision::Preflight { origin, surface } => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            allow(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(surface.methods()),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
            vary_on_origin(headers);
            response
        }
        Decision::Allow { origin } => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            allow(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
            vary_on_origin(headers);
            response
        }
    }
}

/// Lets pages of `origin` (echoed, never `*`) read the answer, cookies
/// included.
fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

/// Adds `Origin` to `Vary` unless it is there already.
fn vary_on_origin(headers: &mut HeaderMap) {
    let present = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|n| n.trim().eq_ignore_ascii_case("origin") || n.trim() == "*")
        })
    });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "http://127.0.0.1:8080";

    fn policy() -> CorsPolicy {
        CorsPolicy::new(&[format!("{APP}/"), "https://Dash.Example".into()])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn allowed(origin: &str) -> Decision {
        Decision::Allow {
            origin: HeaderValue::from_str(origin).unwrap(),
        }
    }

    #[test]
    fn listed_origins_read_the_api_and_the_server_functions() {
        let policy = policy();
        let from_app = headers(&[("origin", APP)]);
        assert_eq!(
            policy.decide(&Method::GET, "/api/snapshot", &from_app),
            allowed(APP)
        );
        assert_eq!(
            policy.decide(&Method::HEAD, "/api/posts", &from_app),
            allowed(APP)
        );
        assert_eq!(
            policy.decide(&Method::POST, "/rpc/load_dashboard", &from_app),
            allowed(APP)
        );
        assert_eq!(
            policy.decide(&Method::GET, "/rpc/sentiment_data", &from_app),
            allowed(APP)
        );
        // Origins compare without case or a trailing slash.
        let dash = headers(&[("origin", "https://dash.example")]);
        assert_eq!(
            policy.decide(&Method::GET, "/api/snapshot", &dash),
            allowed("https://dash.example")
        );
    }

    #[test]
    fn preflights_name_the_surfaces_methods() {
        let policy = policy();
        let preflight = |method: &str| {
            headers(&[
                ("origin", APP),
                ("access-control-request-method", method),
                ("access-control-request-headers", "content-type"),
            ])
        };
        let Decision::Preflight { origin, surface } =
            policy.decide(&Method::OPTIONS, "/rpc/submit_post", &preflight("POST"))
        else {
            panic!("a preflight");
        };
        assert_eq!(origin, APP);
        assert_eq!(surface.methods(), "GET, POST");
        assert!(matches!(
            policy.decide(&Method::OPTIONS, "/api/candles/AAPL", &preflight("GET")),
            Decision::Preflight {
                surface: Surface::Api,
                ..
            }
        ));
        // Writing through the HTTP API is not what the dashboard does.
        for (path, method) in [
            ("/api/posts", "POST"),
            ("/rpc/x", "DELETE"),
            ("/rpc/x", "no pe"),
        ] {
            assert_eq!(
                policy.decide(&Method::OPTIONS, path, &preflight(method)),
                Decision::VaryOnly,
                "{path} {method}"
            );
        }
        // An OPTIONS without Access-Control-Request-Method is no preflight.
        assert_eq!(
            policy.decide(&Method::OPTIONS, "/rpc/x", &headers(&[("origin", APP)])),
            Decision::VaryOnly
        );
    }

    #[test]
    fn other_origins_paths_and_methods_get_no_cors_headers() {
        let policy = policy();
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8080.evil",
        ] {
            let from = headers(&[
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ]);
            for method in [Method::GET, Method::POST, Method::OPTIONS] {
                assert_eq!(
                    policy.decide(&method, "/rpc/submit_post", &from),
                    Decision::VaryOnly,
                    "{origin} {method}"
                );
            }
        }
        let from_app = headers(&[("origin", APP)]);
        assert_eq!(
            policy.decide(&Method::POST, "/api/ticks", &from_app),
            Decision::VaryOnly
        );
        for path in ["/", "/ws", "/metrics", "/pkg/pulse.wasm", "/apix", "/rpcx"] {
            assert_eq!(
                policy.decide(&Method::GET, path, &from_app),
                Decision::Untouched,
                "{path}"
            );
        }
        assert_eq!(
            policy.decide(&Method::GET, "/api/snapshot", &headers(&[])),
            Decision::VaryOnly,
            "no Origin: a program or a same-origin GET"
        );
        assert!(
            !CorsPolicy::new(&[]).allows(APP),
            "nothing listed, nothing allowed"
        );
    }

    #[test]
    fn a_star_allows_every_origin_but_null() {
        let policy = CorsPolicy::new(&["*".into()]);
        assert!(policy.allows("https://anything.example"));
        assert!(!policy.allows("null"));
    }

    #[test]
    fn vary_is_added_once() {
        let mut map = headers(&[("vary", "accept-encoding")]);
        vary_on_origin(&mut map);
        vary_on_origin(&mut map);
        let vary: Vec<_> = map.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["accept-encoding", "origin"]);
    }
}
