//! Where the dashboard's server is. A hydrated page talks to the origin that
//! served it; the static bundle (crates/static) may be hosted elsewhere and
//! is told the server's base URL (`config.json` or `?server=`). This module
//! checks that URL and derives both ways in: HTTP (server functions) and
//! the WebSocket.
//!
//! Parsing is plain Rust (unit-tested natively); `install` and
//! `socket_base` (browser builds) hold the choice for the page's lifetime.

/// Why a configured server URL is not used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the server URL '{0}' must start with http:// or https://")]
    Scheme(String),
    #[error("the server URL '{0}' names no host")]
    NoHost(String),
    #[error("the server URL '{0}' may not carry credentials, a query, a fragment or spaces")]
    Extra(String),
    #[error("config.json is not a JSON object with an optional \"server\" string: {0}")]
    Config(String),
}

/// A Pulse server's base URL (scheme, host, optional path prefix; no
/// trailing slash), e.g. `https://pulse.example.com`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerBase {
    http: String,
}

/// Longest URL accepted: what an operator writes is short.
const MAX_URL_LEN: usize = 2048;

impl ServerBase {
    /// Checks `url`. Only `http`/`https` bases without credentials, query
    /// or fragment: anything else would end up in request URLs unchecked.
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let url = url.trim();
        let shown = || url.chars().take(200).collect::<String>();
        let rest = strip_prefix_ignore_case(url, "https://")
            .or_else(|| strip_prefix_ignore_case(url, "http://"))
            .ok_or_else(|| EndpointError::Scheme(shown()))?;
        if url.len() > MAX_URL_LEN
            || url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@' | '\\'))
        {
            return Err(EndpointError::Extra(shown()));
        }
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') {
            return Err(EndpointError::NoHost(shown()));
        }
        Ok(Self {
            http: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The base server functions are called under (`{http}/rpc/...`).
    pub fn http(&self) -> &str {
        &self.http
    }

    /// The same base as `ws://` or `wss://` (`{ws}/ws`).
    pub fn ws(&self) -> String {
        match strip_prefix_ignore_case(&self.http, "https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!(
                "ws://{}",
                strip_prefix_ignore_case(&self.http, "http://").unwrap_or(&self.http)
            ),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The server the static bundle talks to: `?server=` first, then the
/// `server` field of `config.json` (its text, when the file was there);
/// `None` means the page's own origin. An empty value counts as absent, and
/// so does an HTML answer (static servers that answer every path with
/// `index.html` have no config.json either).
pub fn resolve(
    query_override: Option<&str>,
    config_json: Option<&str>,
) -> Result<Option<ServerBase>, EndpointError> {
    if let Some(url) = query_override.filter(|u| !u.trim().is_empty()) {
        return ServerBase::parse(url).map(Some);
    }
    let Some(text) = config_json.filter(|t| !t.trim_start().starts_with('<')) else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        server: Option<String>,
    }
    let config: Config =
        serde_json::from_str(text).map_err(|e| EndpointError::Config(e.to_string()))?;
    match config.server.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => ServerBase::parse(url).map(Some),
        None => Ok(None),
    }
}

#[cfg(feature = "browser")]
pub use browser::{install, socket_base};

/// What plain links to the server's HTTP API start with: the configured
/// server's base in the static bundle, nothing (this origin) otherwise.
pub fn http_base() -> String {
    #[cfg(feature = "browser")]
    return browser::http_base().unwrap_or_default();
    #[cfg(not(feature = "browser"))]
    String::new()
}

#[cfg(feature = "browser")]
mod browser {
    use std::sync::OnceLock;

    use super::ServerBase;

    static CONFIGURED: OnceLock<ServerBase> = OnceLock::new();

    /// Sends server functions and the WebSocket to `base` from now on (once
    /// per page, before the app mounts).
    pub fn install(base: ServerBase) {
        // server_fn keeps a `&'static str`; one small string per page load.
        let http: &'static str = Box::leak(base.http().to_owned().into_boxed_str());
        let _ = leptos::server_fn::client::try_set_server_url(http);
        let _ = CONFIGURED.set(base);
    }

    /// `http(s)://…` base of the configured server, `None` for the page's own origin.
    pub fn http_base() -> Option<String> {
        CONFIGURED.get().map(|base| base.http().to_owned())
    }

    /// `ws://…`/`wss://…` base of the configured server, `None` for the
    /// page's own origin.
    pub fn socket_base() -> Option<String> {
        CONFIGURED.get().map(ServerBase::ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_gives_both_schemes_without_a_trailing_slash() {
        let base = ServerBase::parse(" https://pulse.example.com/ ").unwrap();
        assert_eq!(base.http(), "https://pulse.example.com");
        assert_eq!(base.ws(), "wss://pulse.example.com");
        let base = ServerBase::parse("http://127.0.0.1:3100/pulse").unwrap();
        assert_eq!(base.ws(), "ws://127.0.0.1:3100/pulse");
        let base = ServerBase::parse("HTTP://[::1]:3000").unwrap();
        assert_eq!(base.ws(), "ws://[::1]:3000");
    }

    #[test]
    fn other_schemes_credentials_queries_and_hostless_urls_are_refused() {
        for (url, expected) in [
            ("javascript:alert(1)", "Scheme"),
            ("ftp://x", "Scheme"),
            ("//pulse.example.com", "Scheme"),
            ("https://", "NoHost"),
            ("https://:3000", "NoHost"),
            ("https://user:pw@pulse.example.com", "Extra"),
            ("https://pulse.example.com/?x=1", "Extra"),
            ("https://pulse.example.com/#x", "Extra"),
            ("https://pulse example.com", "Extra"),
        ] {
            let error = ServerBase::parse(url).unwrap_err();
            assert!(
                format!("{error:?}").starts_with(expected),
                "{url}: {error:?}"
            );
        }
        assert!(ServerBase::parse(&format!("https://{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn the_query_wins_then_config_json_then_the_own_origin() {
        let config = Some(r#"{"server":"https://pulse.example.com"}"#);
        let from_query = resolve(Some("http://127.0.0.1:3100"), config).unwrap();
        assert_eq!(from_query.unwrap().http(), "http://127.0.0.1:3100");
        let from_config = resolve(None, config).unwrap();
        assert_eq!(from_config.unwrap().http(), "https://pulse.example.com");
        assert_eq!(
            resolve(Some(""), config).unwrap().unwrap().http(),
            "https://pulse.example.com"
        );
        assert_eq!(resolve(None, None).unwrap(), None, "no config.json");
        assert_eq!(resolve(None, Some("{}")).unwrap(), None, "no field");
        assert_eq!(resolve(None, Some(r#"{"server":""}"#)).unwrap(), None);
        assert_eq!(
            resolve(None, Some(r#"{"server":null,"other":1}"#)).unwrap(),
            None
        );
    }

    #[test]
    fn a_broken_config_is_an_error_not_a_guess() {
        assert_eq!(resolve(None, Some("<!DOCTYPE html><html>")).unwrap(), None);
        assert!(matches!(
            resolve(None, Some("server=x")),
            Err(EndpointError::Config(_))
        ));
        assert!(matches!(
            resolve(None, Some(r#"{"server":3}"#)),
            Err(EndpointError::Config(_))
        ));
        assert!(matches!(
            resolve(None, Some(r#"{"server":"pulse.example.com"}"#)),
            Err(EndpointError::Scheme(_))
        ));
        assert!(resolve(Some("nope"), None).is_err());
    }
}
