//! The dashboard's server functions over real sockets: what a browser (or
//! any HTTP client) gets back, including a status and a JSON body on errors.

mod common;

use common::*;
use serde_json::{json, Value};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

async fn refused(
    server: &pulse_server::RunningServer,
    name: &str,
    form: impl AsRef<[u8]>,
    status: u16,
    code: &str,
) -> Value {
    let (got, body) = rpc(server, name, form).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{name}: {body}"
    );
    body
}

#[tokio::test]
async fn a_post_is_created_and_a_bad_one_is_a_400_naming_the_field() {
    let server = start(|_| {}).await;
    let (status, body) = rpc(&server, "submit_post", "author=ann&text=What+a+great+rally").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_u64().is_some(), "{body}");
    assert_eq!(body["sentiment"]["label"], "positive");

    let body = refused(
        &server,
        "submit_post",
        "author=ann&text=+++",
        400,
        "invalid",
    )
    .await;
    assert_eq!(body["error"]["field"], "text");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("empty"),
        "{body}"
    );

    refused(
        &server,
        "submit_post",
        "text=no+author+field",
        400,
        "invalid",
    )
    .await;
    server.shutdown().await.ok();
}

#[tokio::test]
async fn reactions_to_unknown_posts_and_unknown_kinds_are_refused() {
    let server = start(|_| {}).await;
    let (status, created) = rpc(&server, "submit_post", "author=ann&text=hello").await;
    assert_eq!(status, 200);
    let id = created["id"].as_u64().expect("an id");

    let (status, totals) = rpc(&server, "react_to_post", &format!("post_id={id}&kind=like")).await;
    assert_eq!(
        (status, totals["likes"].clone()),
        (200, json!(1)),
        "{totals}"
    );

    let unknown = "post_id=987654321&kind=like";
    refused(&server, "react_to_post", unknown, 404, "not_found").await;
    let bad_kind = format!("post_id={id}&kind=explode");
    refused(&server, "react_to_post", bad_kind, 400, "invalid").await;
    server.shutdown().await.ok();
}

#[tokio::test]
async fn history_reads_refuse_bad_arguments_with_400_or_404() {
    let server = start(|_| {}).await;
    refused(&server, "older_posts", "before=abc", 400, "invalid").await;

    let bad_symbol = "symbol=not+a+symbol&interval=1s";
    let body = refused(&server, "candles", bad_symbol, 400, "invalid").await;
    assert_eq!(body["error"]["field"], "symbol");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("invalid symbol"));

    refused(&server, "load_symbol", "symbol=NOPE", 404, "not_found").await;
    // Live sentiment next to past candles would be a mixed answer.
    let past = "symbol=AAPL&view%5Binterval%5D=1m&view%5Brange%5D=Live&view%5Bat%5D=1000";
    let body = refused(&server, "load_symbol", past, 400, "invalid").await;
    assert_eq!(body["error"]["field"], "view[at]");

    let (status, body) = rpc(&server, "candles", "symbol=AAPL&interval=1s").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.is_array());
    server.shutdown().await.ok();
}

#[tokio::test]
async fn a_plain_form_post_keeps_its_redirect_and_an_unreadable_body_is_a_400() {
    let server = start(|_| {}).await;
    // Without script, a form posts with Accept: text/html and expects to be
    // sent back to the page, whatever happened.
    let (status, _) = http(
        &server,
        "POST",
        "/rpc/submit_post",
        &[
            FORM,
            ("Accept", "text/html"),
            ("Referer", "http://localhost/"),
        ],
        b"author=ann&text=+",
    )
    .await;
    assert_eq!(status, 302);

    refused(
        &server,
        "submit_post",
        b"author=ann&text=\xff\xfe",
        400,
        "invalid",
    )
    .await;
    server.shutdown().await.ok();
}

#[tokio::test]
async fn the_sentiment_data_is_revalidated_with_its_etag() {
    let server = start(|_| {}).await;
    let running = &server;
    let get = move |extra: String| async move {
        let (head, body) = get_raw(running, "/rpc/sentiment_data", &extra).await;
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(&body)
        } else {
            body
        };
        (head, String::from_utf8_lossy(&body).into_owned())
    };
    let (head, body) = get(String::new()).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.contains("valence_tsv"), "the data itself");
    let etag = head
        .lines()
        .find_map(|line| line.strip_prefix("etag: "))
        .expect("an etag")
        .to_owned();
    assert!(head.contains("cache-control: no-cache"), "{head}");

    let (head, body) = get(format!("If-None-Match: {etag}\r\n")).await;
    assert!(head.starts_with("http/1.1 304"), "{head}");
    assert!(body.is_empty(), "{body}");
    let (head, _) = get("If-None-Match: \"stale\"\r\n".into()).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    server.shutdown().await.ok();
}
