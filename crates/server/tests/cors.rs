//! CORS for the static dashboard against a real server: a page from an
//! origin in `--allowed-origins` may read the API and call the server
//! functions (preflights answered) and open `/ws`; any other origin gets no
//! CORS header, its cross-site writes are still refused, and its socket
//! upgrade is refused.

mod common;

use common::{http_with_head, start};
use pulse_server::RunningServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const APP: &str = "http://127.0.0.1:8089";
const EVIL: &str = "https://evil.example";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

async fn server() -> RunningServer {
    start(|config| config.allowed_origins = vec![APP.into()]).await
}

/// The CORS response headers in a (lower-cased) response head.
fn cors_headers(head: &str) -> Vec<&str> {
    head.lines()
        .filter(|line| line.starts_with("access-control-"))
        .collect()
}

/// Opens `/ws` as a browser page from `origin` would; the HTTP status.
async fn upgrade_status(server: &RunningServer, origin: &str) -> u16 {
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .expect("a request");
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(origin).expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("upgrade failed otherwise: {other}"),
    }
}

#[tokio::test]
async fn an_allowed_origin_reads_the_api_calls_server_functions_and_opens_the_socket() {
    let server = server().await;
    let origin = ("Origin", APP);

    let (status, head, body) =
        http_with_head(server.addr(), "GET", "/api/snapshot", &[origin], b"").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {APP}")),
        "{head}"
    );
    assert!(head.contains("vary: origin"), "{head}");
    // A page of candles says where the older ones continue, readably.
    assert!(
        head.contains("access-control-expose-headers: retry-after, etag, x-pulse-older"),
        "{head}"
    );

    // The first thing the bundle does: the snapshot through the server function.
    let (status, head, body) = http_with_head(
        server.addr(),
        "POST",
        "/rpc/load_dashboard",
        &[origin, FORM],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["watchlist"].is_object(), "{body}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {APP}")),
        "{head}"
    );

    // A write from the bundle passes CSRF (the origin is listed) and its
    // answer is readable.
    let (status, head, body) = http_with_head(
        server.addr(),
        "POST",
        "/rpc/submit_post",
        &[origin, FORM],
        b"author=static&text=hello%20from%20the%20CDN",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("access-control-allow-origin"), "{head}");
    // Its session cookie comes back with credentials allowed (reactions).
    assert!(head.contains("set-cookie: pulse_sid="), "{head}");
    assert!(
        head.contains("access-control-allow-credentials: true"),
        "{head}"
    );

    // A preflight is answered here, naming what may be sent.
    let (status, head, _) = http_with_head(
        server.addr(),
        "OPTIONS",
        "/rpc/submit_post",
        &[
            origin,
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert_eq!(status, 204, "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {APP}")),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-credentials: true"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-methods: get, post"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: content-type"),
        "{head}"
    );
    // Security headers still go on everything.
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    assert_eq!(upgrade_status(&server, APP).await, 101);
    server.shutdown().await.ok();
}

#[tokio::test]
async fn another_origin_gets_no_cors_headers_and_its_socket_upgrade_is_refused() {
    let server = server().await;
    let evil = ("Origin", EVIL);

    let (status, head, _) =
        http_with_head(server.addr(), "GET", "/api/snapshot", &[evil], b"").await;
    // A GET is served (the browser withholds it from the page without CORS).
    assert_eq!(status, 200);
    assert_eq!(cors_headers(&head), Vec::<&str>::new(), "{head}");

    let (status, head, _) = http_with_head(
        server.addr(),
        "OPTIONS",
        "/rpc/load_dashboard",
        &[evil, ("Access-Control-Request-Method", "POST")],
        b"",
    )
    .await;
    assert_ne!(status, 204, "no preflight answer: {head}");
    assert_eq!(cors_headers(&head), Vec::<&str>::new(), "{head}");

    // CSRF still refuses its writes (in the error shape, without CORS).
    let (status, head, body) = http_with_head(
        server.addr(),
        "POST",
        "/rpc/submit_post",
        &[evil, FORM],
        b"author=mallory&text=forged",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert_eq!(cors_headers(&head), Vec::<&str>::new(), "{head}");

    assert_eq!(upgrade_status(&server, EVIL).await, 403);
    server.shutdown().await.ok();
}

#[tokio::test]
async fn without_allowed_origins_nothing_is_cross_origin() {
    let server = start(|_| {}).await;
    let (status, head, _) = http_with_head(
        server.addr(),
        "GET",
        "/api/snapshot",
        &[("Origin", APP)],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cors_headers(&head), Vec::<&str>::new(), "{head}");
    assert_eq!(upgrade_status(&server, APP).await, 403);
    server.shutdown().await.ok();
}

#[tokio::test]
async fn the_host_allowlist_still_answers_first() {
    let server = server().await;
    // A foreign Host (DNS rebinding) gets 421 even from an allowed origin.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connects");
    let request = format!(
        "GET /api/snapshot HTTP/1.1\r\nHost: rebound.example\r\nOrigin: {APP}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("written");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    let head = String::from_utf8_lossy(&response).to_lowercase();
    assert!(head.starts_with("http/1.1 421"), "{head}");
    assert_eq!(cors_headers(&head), Vec::<&str>::new(), "{head}");
    server.shutdown().await.ok();
}
