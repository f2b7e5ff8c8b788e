//! Reads where the server is: `?server=` in the page's URL, else the
//! `server` field of `config.json` beside index.html (written by the
//! operator after the build). The rules are `pulse_app::endpoint::resolve`.

use gloo_net::http::Request;
use pulse_app::endpoint::{resolve, EndpointError, ServerBase};
use web_sys::RequestCache;

/// Why the bundle cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("config.json could not be read: {0}")]
    Unreadable(String),
}

/// The configured server; `None`: the page's own origin.
pub async fn find_server() -> Result<Option<ServerBase>, ConfigError> {
    if let Some(server) = query_server() {
        return Ok(resolve(Some(&server), None)?);
    }
    let config = fetch_config().await?;
    Ok(resolve(None, config.as_deref())?)
}

/// `?server=` of the page's URL.
fn query_server() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get("server")
}

/// The text of `config.json` (relative: beside index.html, wherever the
/// bundle is hosted); `None` when the host has none (any non-2xx: object
/// stores answer a missing file with 403 as well as 404).
async fn fetch_config() -> Result<Option<String>, ConfigError> {
    // Revalidated every load: the operator may change it without a rebuild.
    let response = Request::get("config.json")
        .cache(RequestCache::NoCache)
        .send()
        .await
        .map_err(|e| ConfigError::Unreadable(e.to_string()))?;
    if !response.ok() {
        return Ok(None);
    }
    response
        .text()
        .await
        .map(Some)
        .map_err(|e| ConfigError::Unreadable(e.to_string()))
}
