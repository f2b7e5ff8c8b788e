//! The outermost middleware: a Host allowlist (DNS rebinding) and the
//! security headers every response carries.
//!
//! A page from `evil.example` that rebinds its name to 127.0.0.1 is "same
//! origin" to the browser, so without this it could read every API and open
//! `/ws` (whose Origin check compares against `Host`). Only the listen
//! address, the localhost names on the listen port and `--public-host`
//! entries are served; anything else gets 421.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::metrics::Metrics;

/// The page needs its own scripts and WASM (`'wasm-unsafe-eval'`), the
/// inline hydration and resource scripts Leptos writes into the HTML
/// (`'unsafe-inline'`: a nonce would need Leptos's `nonce` feature), inline
/// `style` attributes (chart bars), and WebSockets to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'self'";

/// Headers added to every response that does not set them itself.
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// The longest Host echoed back in an error message.
const MAX_ECHOED_HOST: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("--public-host entry '{0}' is not a host name or host:port")]
    BadPublicHost(String),
}

/// One `--public-host` entry: a name, and a port if one was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicHost {
    name: String,
    port: Option<u16>,
}

impl std::str::FromStr for PublicHost {
    type Err = GuardError;

    /// Accepts `name`, `name:port`, `[v6]:port`, and tolerates a scheme or a
    /// trailing slash pasted from a URL.
    fn from_str(entry: &str) -> Result<Self, GuardError> {
        let bad = || GuardError::BadPublicHost(entry.to_owned());
        let trimmed = entry.trim();
        let trimmed = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .unwrap_or(trimmed);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let (name, port) = split_host(trimmed).ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Self { name, port })
    }
}

/// Splits `host[:port]` into a lower-cased name (IPv6 in brackets, no
/// trailing dot) and the port; `None` if it is not a valid authority.
fn split_host(host: &str) -> Option<(String, Option<u16>)> {
    if host.contains(['@', '/', '?', '#']) || host.is_empty() {
        return None;
    }
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    // No userinfo (refused above), so what follows the host is `:port` or nothing.
    let rest = authority.as_str().get(authority.host().len()..)?;
    let port = match rest {
        "" => None,
        rest => Some(rest.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    let name = authority.host().to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
    Some((name, port))
}

/// Which Host values this server answers for.
#[derive(Clone, Debug)]
pub struct HostAllowlist {
    port: u16,
    local_names: Vec<String>,
    public: Vec<PublicHost>,
}

impl HostAllowlist {
    pub fn new(listen: SocketAddr, public: Vec<PublicHost>) -> Self {
        let listen_ip = match listen {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let mut local_names: Vec<String> =
            ["localhost", "127.0.0.1", "[::1]"].map(String::from).into();
        if !local_names.contains(&listen_ip) {
            local_names.push(listen_ip);
        }
        Self {
            port: listen.port(),
            local_names,
            public,
        }
    }

    /// Parses every `--public-host` entry, failing on the first bad one.
    pub fn parse_public(entries: &[String]) -> Result<Vec<PublicHost>, GuardError> {
        entries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.parse())
            .collect()
    }

    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        // No port in Host means the scheme's default.
        let local_port_matches = port.unwrap_or(80) == self.port;
        if local_port_matches && self.local_names.contains(&name) {
            return true;
        }
        self.public
            .iter()
            .any(|entry| entry.name == name && (entry.port.is_none() || entry.port == port))
    }
}

/// State of the middleware.
pub struct Guard {
    pub hosts: HostAllowlist,
    pub metrics: Arc<Metrics>,
}

/// The Host a request was sent to: the absolute-form URI's authority, or the Host header.
fn request_host(request: &Request) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    let value = request.headers().get(header::HOST)?;
    value.to_str().ok().map(str::to_owned)
}

/// Refuses requests for foreign Hosts, and adds the security headers.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let mut response = match request_host(&request) {
        Some(host) if guard.hosts.allows(&host) => next.run(request).await,
        host => {
            guard.metrics.edge.misdirected.fetch_add(1, Relaxed);
            misdirected(host.as_deref())
        }
    };
    add_security_headers(response.headers_mut());
    response
}

fn misdirected(host: Option<&str>) -> Response {
    let message = match host {
        Some(host) => {
            let shown: String = host.chars().take(MAX_ECHOED_HOST).collect();
            format!(
                "this server does not serve Host '{shown}'; a public name must be listed in --public-host"
            )
        }
        None => "a Host header is required".to_owned(),
    };
    let body = serde_json::json!({"error": {"code": "misdirected_request", "message": message}});
    (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response()
}

fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(listen: &str, public: &[&str]) -> HostAllowlist {
        let public: Vec<String> = public.iter().map(|s| s.to_string()).collect();
        HostAllowlist::new(
            listen.parse().unwrap(),
            HostAllowlist::parse_public(&public).unwrap(),
        )
    }

    #[test]
    fn localhost_names_on_the_listen_port_are_allowed() {
        let hosts = allowlist("127.0.0.1:3000", &[]);
        for host in [
            "127.0.0.1:3000",
            "localhost:3000",
            "LOCALHOST:3000",
            "localhost.:3000",
            "[::1]:3000",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "localhost:3001",
            "localhost",
            "evil.example:3000",
            "evil.example",
            "127.0.0.2:3000",
            "user@localhost:3000",
            "",
            "localhost:",
            "localhost:3000/x",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn listening_on_every_interface_does_not_allow_every_host() {
        let hosts = allowlist("0.0.0.0:3000", &[]);
        assert!(hosts.allows("localhost:3000"));
        assert!(hosts.allows("0.0.0.0:3000"));
        assert!(!hosts.allows("192.168.1.5:3000"));
        assert!(!hosts.allows("rebound.example:3000"));
        let v6 = allowlist("[::]:8080", &[]);
        assert!(v6.allows("[::]:8080") && v6.allows("[::1]:8080"));
    }

    #[test]
    fn public_hosts_match_with_or_without_port() {
        let hosts = allowlist(
            "127.0.0.1:3000",
            &[
                "pulse.example.com",
                "dash.example.org:8443",
                "https://x.example/",
            ],
        );
        assert!(hosts.allows("pulse.example.com"));
        assert!(hosts.allows("Pulse.Example.Com:443"));
        assert!(hosts.allows("dash.example.org:8443"));
        assert!(!hosts.allows("dash.example.org"));
        assert!(!hosts.allows("dash.example.org:443"));
        assert!(hosts.allows("x.example"));
        assert!(!hosts.allows("sub.pulse.example.com"));
    }

    #[test]
    fn bad_public_hosts_are_refused_at_start() {
        for entry in ["a b", "x/y", "user@host", "host:port", "host:99999", ":80"] {
            assert!(
                HostAllowlist::parse_public(&[entry.to_owned()]).is_err(),
                "{entry}"
            );
        }
        assert!(HostAllowlist::parse_public(&[String::new()])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn security_headers_do_not_override_a_handler_s_own() {
        let mut headers = HeaderMap::new();
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        add_security_headers(&mut headers);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'self'"));
    }
}
