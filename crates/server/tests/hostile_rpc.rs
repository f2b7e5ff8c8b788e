//! The dashboard's writes (`/rpc/submit_post`, `/rpc/react_to_post`) against
//! a hostile client, over real sockets: rate limits (also of history reads),
//! cross-site requests, one reaction per session, and the posting policy
//! with an ingest token.

mod common;

use common::*;
use pulse_server::RunningServer;
use serde_json::Value;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// One POST: status, lower-cased head, body as JSON (or a string).
async fn request(
    server: &RunningServer,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Value) {
    http_with_head(server.addr(), "POST", path, headers, body.as_bytes()).await
}

/// A server function call as the dashboard's page makes it (same origin).
async fn rpc(
    server: &RunningServer,
    name: &str,
    extra: &[(&str, &str)],
    form: &str,
) -> (u16, String, Value) {
    let origin = format!("http://{}", server.addr());
    let mut headers = vec![FORM, ("Origin", origin.as_str())];
    headers.extend_from_slice(extra);
    request(server, &format!("/rpc/{name}"), &headers, form).await
}

/// The `pulse_sid=...` pair a response sets, if any.
fn session_cookie(head: &str) -> Option<String> {
    head.lines()
        .filter_map(|line| line.strip_prefix("set-cookie: "))
        .find(|cookie| cookie.starts_with("pulse_sid="))
        .map(|cookie| cookie.split(';').next().unwrap_or_default().to_owned())
}

/// A post created through the HTTP API; its id.
async fn new_post(server: &RunningServer) -> u64 {
    let (status, body) = http(
        server,
        "POST",
        "/api/posts",
        &[JSON],
        br#"{"author":"ann","text":"hello there"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_u64().expect("an id")
}

/// The post's counts as everyone sees them.
async fn counts(server: &RunningServer, id: u64) -> Value {
    let (_, posts) = http(server, "GET", "/api/posts", &[], b"").await;
    posts
        .as_array()
        .and_then(|posts| posts.iter().find(|p| p["id"] == id))
        .map(|p| p["engagement"].clone())
        .unwrap_or_else(|| panic!("post {id} missing: {posts}"))
}

async fn post_count(server: &RunningServer) -> usize {
    let (_, posts) = http(server, "GET", "/api/posts", &[], b"").await;
    posts.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn six_hundred_likes_from_one_client_count_once_and_a_second_click_undoes_the_first() {
    let server = start(|_| {}).await;
    let id = new_post(&server).await;
    let form = format!("post_id={id}&kind=like");

    // The first click sets the session cookie and turns the like on...
    let (status, head, body) = rpc(&server, "react_to_post", &[], &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["likes"].as_i64(), body["on"].as_bool()),
        (Some(1), Some(true))
    );
    let cookie = session_cookie(&head).expect("a session cookie");
    let set_cookie = head.lines().find(|l| l.contains("pulse_sid=")).unwrap();
    for attribute in ["httponly", "samesite=lax", "path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let with_cookie = [("Cookie", cookie.as_str())];
    // ...the second, from the same session, takes it back.
    let (status, head, body) = rpc(&server, "react_to_post", &with_cookie, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["likes"].as_i64(), body["on"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(
        session_cookie(&head),
        None,
        "a known session keeps its cookie"
    );

    let (mut toggled, mut limited) = (0, 0);
    for _ in 0..598 {
        let (status, head, body) = rpc(&server, "react_to_post", &with_cookie, &form).await;
        match status {
            200 => toggled += 1,
            429 => {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                assert!(body["error"]["message"].as_str().is_some(), "{body}");
                assert!(head.contains("retry-after: "), "{head}");
                limited += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        limited > 500,
        "only {limited} of 598 rate limited ({toggled} toggles)"
    );
    let likes = counts(&server, id).await["likes"].as_i64().unwrap();
    assert!(likes <= 1, "{likes} likes counted from one session");
    assert!(
        metric(
            &server,
            "pulse_write_rejections_total{code=\"rate_limited\"}"
        )
        .await
            >= limited as f64
    );
    server.shutdown().await.ok();
}

#[tokio::test]
async fn a_client_that_drops_its_cookie_still_counts_a_few_times_at_most() {
    // A generous rate, so only the per-address bound stops it.
    let server = start(|config| config.rpc_write_rate = 1_000.0).await;
    let id = new_post(&server).await;
    let form = format!("post_id={id}&kind=like");
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..600 {
        let (status, _, body) = rpc(&server, "react_to_post", &[], &form).await;
        assert!(status == 200 || status == 429, "{status}: {body}");
        *statuses.entry(status).or_default() += 1;
    }
    let likes = counts(&server, id).await["likes"].as_i64().unwrap();
    assert_eq!(
        likes, 8,
        "one address holds at most 8 sessions' likes ({statuses:?})"
    );
    server.shutdown().await.ok();
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let server = start(|config| config.allowed_origins = vec!["https://app.example".into()]).await;
    let id = new_post(&server).await;
    let evil = ("Origin", "https://evil.example");

    let (status, _, body) = request(
        &server,
        "/rpc/submit_post",
        &[FORM, evil],
        "author=mallory&text=forged",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("evil.example"),
        "{body}"
    );
    let like = format!("post_id={id}&kind=like");
    let (status, _, body) = request(&server, "/rpc/react_to_post", &[FORM, evil], &like).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // Without Origin, a browser's Sec-Fetch-Site tells.
    let fetch_site = ("Sec-Fetch-Site", "cross-site");
    let (status, _, _) = request(&server, "/rpc/react_to_post", &[FORM, fetch_site], &like).await;
    assert_eq!(status, 403);
    // The HTTP API's ingest too, in its own error shape.
    let (status, _, body) = request(
        &server,
        "/api/posts",
        &[JSON, evil],
        r#"{"author":"mallory","text":"forged"}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    assert_eq!(post_count(&server).await, 1, "nothing was posted");
    assert_eq!(counts(&server, id).await["likes"], 0, "nothing was liked");
    assert_eq!(
        metric(&server, "pulse_write_rejections_total{code=\"forbidden\"}").await,
        4.0
    );

    // The page's own origin, a listed origin and a program without either header pass.
    let (status, _, body) = rpc(&server, "submit_post", &[], "author=ann&text=same+origin").await;
    assert_eq!(status, 200, "{body}");
    let listed = ("Origin", "https://app.example");
    let (status, _, body) = request(&server, "/rpc/react_to_post", &[FORM, listed], &like).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) =
        request(&server, "/rpc/submit_post", &[FORM], "author=cli&text=curl").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(post_count(&server).await, 3);
    server.shutdown().await.ok();
}

#[tokio::test]
async fn with_an_ingest_token_posting_needs_it_unless_posting_is_public() {
    let server = start(|config| config.ingest_token = Some("s3cret".into())).await;
    let id = new_post_with_token(&server).await;
    for (name, form) in [
        ("submit_post", "author=ann&text=hello".to_owned()),
        ("react_to_post", format!("post_id={id}&kind=like")),
    ] {
        let (status, _, body) = rpc(&server, name, &[], &form).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{name}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("token"),
            "{body}"
        );
        let wrong = [("Authorization", "Bearer guess")];
        let (status, _, _) = rpc(&server, name, &wrong, &form).await;
        assert_eq!(status, 401, "{name} with a wrong token");
        let right = [("Authorization", "Bearer s3cret")];
        let (status, _, body) = rpc(&server, name, &right, &form).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    // Reads stay open.
    let (status, _, body) = rpc(&server, "older_posts", &[], "before=1000").await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await.ok();

    let server = start(|config| {
        config.ingest_token = Some("s3cret".into());
        config.public_posting = Some(true);
    })
    .await;
    let (status, _, body) = rpc(&server, "submit_post", &[], "author=ann&text=hello").await;
    assert_eq!(status, 200, "public posting on: {body}");
    server.shutdown().await.ok();
}

async fn new_post_with_token(server: &RunningServer) -> u64 {
    let (status, body) = http(
        server,
        "POST",
        "/api/posts",
        &[JSON, ("Authorization", "Bearer s3cret")],
        br#"{"author":"ann","text":"hello there"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_u64().expect("an id")
}

#[tokio::test]
async fn reads_keep_working_when_writes_are_used_up() {
    let server = start(|config| config.rpc_write_rate = 1.0).await;
    let mut limited = false;
    for n in 0..5 {
        let (status, _, _) = rpc(
            &server,
            "submit_post",
            &[],
            &format!("author=ann&text=post+{n}"),
        )
        .await;
        limited |= status == 429;
    }
    assert!(limited, "a burst of 2 writes, then 429");
    let (status, _, body) = rpc(&server, "older_posts", &[], "before=1000").await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await.ok();
}

/// A server-rendered page reads what the read server functions read (a
/// past moment: a few queries per stored symbol), so renders share their
/// budget: at 1 read/s (burst 2) the third page is a 429 with `Retry-After`
/// and a JSON error, and what is not a page (health, the WASM's files,
/// ingest) is not counted.
#[tokio::test]
async fn page_renders_share_the_read_rate() {
    let server = start(|config| config.rpc_read_rate = 1.0).await;
    let addr = server.addr();
    let get = move |path: &'static str| http_with_head(addr, "GET", path, &[], b"");
    for path in ["/", "/?at=2026-01-02T03:04:05Z"] {
        let (status, head, _) = get(path).await;
        assert_eq!(status, 200, "{path}: {head}");
    }
    let (status, head, body) = get("/?symbol=AAPL").await;
    assert_eq!(status, 429, "{head}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    let (status, _, body) = rpc(&server, "older_posts", &[], "before=1000").await;
    assert_eq!(status, 429, "the same budget: {body}");
    for path in ["/healthz", "/api/snapshot"] {
        let (status, _, body) = get(path).await;
        assert_eq!(status, 200, "{path} is not a page: {body}");
    }
    server.shutdown().await.ok();
}

/// Reads of stored history over HTTP (each can scan many rows) share the
/// dashboard's read budget: at 1 read/s (burst 2) the third is a 429 with
/// `Retry-After`, whichever door it comes through, and writes' budget is
/// untouched.
#[tokio::test]
async fn history_reads_share_one_rate_with_the_read_server_functions() {
    let server = start(|config| config.rpc_read_rate = 1.0).await;
    let addr = server.addr();
    let get = move |path: &'static str| http_with_head(addr, "GET", path, &[], b"");
    let (status, _, body) = get("/api/candles/AAPL?interval=1d").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = rpc(&server, "older_posts", &[], "before=1000").await;
    assert_eq!(status, 200, "{body}");
    for path in ["/api/posts", "/api/candles/AAPL?interval=1d"] {
        let (status, head, body) = get(path).await;
        assert_eq!(status, 429, "{path}: {body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        assert!(head.contains("retry-after: "), "{head}");
    }
    let (status, _, body) = rpc(&server, "older_posts", &[], "before=1000").await;
    assert_eq!(status, 429, "the same budget: {body}");
    let (status, _, body) = rpc(&server, "submit_post", &[], "author=ann&text=still+writes").await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await.ok();
}
