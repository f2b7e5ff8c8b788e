//! The ingest token: how a request presents it and the one rule that
//! checks it, for HTTP ingest, WebSocket `publish` and the dashboard's
//! writes alike. A leaf: it knows headers, not the server's state.

use axum::http::{header, HeaderMap};

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Whether a request presenting `presented` may ingest when the server's
/// token is `configured`: with no token configured anyone may; with one,
/// the request must present exactly it.
pub fn may_ingest(configured: Option<&str>, presented: Option<&str>) -> bool {
    configured.is_none_or(|expected| token_matches(expected, presented))
}

/// Whether `presented` is `expected`, compared in constant time.
pub fn token_matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_is_exact() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn the_bearer_token_is_read_only_from_a_bearer_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer  s3cret ".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("s3cret"));
    }

    #[test]
    fn ingest_needs_the_token_only_when_one_is_configured() {
        assert!(may_ingest(None, None));
        assert!(may_ingest(None, Some("anything")));
        assert!(!may_ingest(Some("t"), None));
        assert!(!may_ingest(Some("t"), Some("T")));
        assert!(!may_ingest(Some("t"), Some("")));
        assert!(may_ingest(Some("t"), Some("t")));
        assert!(!token_matches("t", None));
    }
}
