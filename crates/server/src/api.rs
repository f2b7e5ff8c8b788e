//! The HTTP API: ingest (`POST /api/ticks|posts|engagement|sentiment`) and
//! reads (`GET /api/snapshot|posts|candles/{symbol}`).
//!
//! Bodies are one JSON object, a JSON array, or NDJSON
//! (`Content-Type: application/x-ndjson`). Errors are JSON in the shape the
//! server functions share: `{"error":{"code":"...","message":"...","item":3,"field":"price"}}`,
//! with the status of the error's [`ErrorKind`] (the code may be more specific
//! than the kind's, e.g. `unknown_post` for `not_found`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use pulse_core::analytics::sentiment::SentimentAnalyzer;
use pulse_core::model::{
    Candle, CandleInterval, Engagement, NewPost, Sentiment, Tick, MAX_POST_CHARS,
};
use pulse_core::protocol::payload::{Rates, SentimentStats, SymbolSummary, TopPost};
use pulse_core::protocol::{FeedPost, StreamPosition, Topic};

use super::auth::{bearer_token, may_ingest};
use super::clock::now_ms;
use super::errors::ErrorKind;
use super::history::MAX_CANDLES;
use super::ingest::IngestError;
use super::state::AppState;
use super::storage::StorageError;

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    item: Option<usize>,
    field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            item: None,
            field: None,
        }
    }

    /// An error of `kind`, answered with the kind's status and a code of
    /// its own (the kind's, or a more specific one).
    pub fn of(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        let status =
            StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, code, message)
    }

    /// The same error, naming the argument at fault.
    pub fn with_field(self, field: &'static str) -> Self {
        Self {
            field: Some(field),
            ..self
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::of(ErrorKind::Invalid, "invalid_parameter", message)
    }

    /// An ingest item that fails, named by its index (and field, if known).
    fn invalid_item(index: usize, field: Option<&'static str>, message: String) -> Self {
        Self {
            item: Some(index),
            field,
            ..Self::of(ErrorKind::Invalid, "invalid_item", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(item) = self.item {
            error["item"] = item.into();
        }
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        (self.status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let kind = error.kind();
        match error {
            IngestError::Invalid { index, ref error } => Self::invalid_item(
                index,
                Some(error.field),
                format!("item {index}: {} {}", error.field, error.message),
            ),
            IngestError::UnknownPost { index, .. } => Self {
                item: Some(index),
                field: Some("post_id"),
                ..Self::of(kind, "unknown_post", error.to_string())
            },
            IngestError::Storage(error) => Self {
                message: format!("nothing was accepted: {error}"),
                ..storage_error(error)
            },
            IngestError::Broker(error) => Self::of(kind, kind.code(), error.to_string()),
            IngestError::Reaction(error) => Self::of(kind, kind.code(), error.to_string()),
        }
    }
}

/// Storage failing: `storage_unavailable`, or an internal error.
fn storage_error(error: StorageError) -> ApiError {
    match error.kind() {
        ErrorKind::Unavailable => ApiError::of(
            ErrorKind::Unavailable,
            "storage_unavailable",
            error.to_string(),
        ),
        kind => ApiError::of(kind, kind.code(), error.to_string()),
    }
}

/// Items of an ingest body, whichever of the three forms it came in.
pub struct Items<T> {
    pub items: Vec<T>,
    /// The body was a single object (the answer is then a single object too).
    pub single: bool,
}

impl<T, S> FromRequest<S> for Items<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let app: AppState = axum::extract::FromRef::from_ref(state);
        let ndjson = match content_type(request.headers()).as_deref() {
            Some("application/json") => false,
            Some("application/x-ndjson" | "application/jsonl") => true,
            other => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "Content-Type must be application/json or application/x-ndjson, got {}",
                        other.unwrap_or("nothing")
                    ),
                ))
            }
        };
        let limit = app.config.max_body_bytes;
        let body = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request bodies may be at most {limit} bytes"),
                )
            })?;
        parse_items(&body, ndjson)
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// Parses a JSON object, a JSON array or NDJSON into items, naming the item
/// that fails.
pub fn parse_items<T: DeserializeOwned>(body: &Bytes, ndjson: bool) -> Result<Items<T>, ApiError> {
    let item_error = |index: usize, error: serde_json::Error| {
        ApiError::invalid_item(index, None, format!("item {index}: {error}"))
    };
    if ndjson {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::of(ErrorKind::Invalid, "invalid_body", "body is not UTF-8"))?;
        let items = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(index, line)| serde_json::from_str(line).map_err(|e| item_error(index, e)))
            .collect::<Result<Vec<T>, _>>()?;
        return non_empty(Items {
            items,
            single: false,
        });
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::of(
            ErrorKind::Invalid,
            "invalid_json",
            format!("body is not valid JSON: {error}"),
        )
    })?;
    match value {
        serde_json::Value::Array(values) => {
            let items = values
                .into_iter()
                .enumerate()
                .map(|(index, v)| serde_json::from_value(v).map_err(|e| item_error(index, e)))
                .collect::<Result<Vec<T>, _>>()?;
            non_empty(Items {
                items,
                single: false,
            })
        }
        value => {
            let item = serde_json::from_value(value).map_err(|e| item_error(0, e))?;
            Ok(Items {
                items: vec![item],
                single: true,
            })
        }
    }
}

fn non_empty<T>(items: Items<T>) -> Result<Items<T>, ApiError> {
    if items.items.is_empty() {
        return Err(ApiError::of(
            ErrorKind::Invalid,
            "empty_batch",
            "the batch has no items",
        ));
    }
    Ok(items)
}

/// Checks the ingest token (when `needs_token`) and the client's rate.
fn admit(
    state: &AppState,
    headers: &HeaderMap,
    client: SocketAddr,
    needs_token: bool,
) -> Result<(), ApiError> {
    if needs_token && !may_ingest(state.config.ingest_token.as_deref(), bearer_token(headers)) {
        return Err(ApiError::of(
            ErrorKind::Unauthorized,
            "unauthorized",
            "ingest needs the token: Authorization: Bearer <token>",
        ));
    }
    if !state.rate_limiter.allow(client.ip(), Instant::now()) {
        return Err(ApiError::of(
            ErrorKind::RateLimited,
            "rate_limited",
            format!(
                "at most {} requests per second per client",
                state.config.ingest_rate
            ),
        ));
    }
    Ok(())
}

/// A request that passed admission: within its client's rate and, when
/// `TOKEN`, carrying the ingest token (if one is configured).
pub struct Admission<const TOKEN: bool>;

/// Ingest endpoints: token and rate.
pub type Admitted = Admission<true>;
/// Endpoints anyone may call, within the rate.
pub type RateLimited = Admission<false>;

/// Reads of stored history (`GET /api/candles`, `GET /api/posts`) and
/// server-rendered pages: one can scan many rows (a page of a past moment
/// makes a few queries per stored symbol), so they share the dashboard's
/// read rate (`--rpc-read-rate`, per address) with the read server
/// functions.
pub struct ReadAdmitted;

/// Middleware for the server-rendered pages: a render is a read (see
/// [`ReadAdmitted`]); beyond the rate, 429 `rate_limited` with `Retry-After`.
/// The pages' router also carries the server functions' routes, which
/// `rpc_admission` admits on its own.
pub async fn admit_page(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if !request.uri().path().starts_with("/rpc/") {
        if let Some(refused) = refuse_read(&state, request.extensions()) {
            return refused;
        }
    }
    next.run(request).await
}

/// The peer a request came from (`0.0.0.0:0` when the server was not
/// started with connection info, as in some tests): what rates count by.
pub(crate) fn client_address(extensions: &axum::http::Extensions) -> SocketAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0)
}

/// Counts one read against the client's share of `--rpc-read-rate`; the
/// answer when it is over.
fn refuse_read(app: &AppState, extensions: &axum::http::Extensions) -> Option<Response> {
    let limiter = &app.rpc.reads;
    let wait = limiter
        .check(client_address(extensions).ip(), Instant::now())
        .err()?;
    let secs = crate::rate_limit::retry_after_secs(wait);
    let error = ApiError::of(
        ErrorKind::RateLimited,
        "rate_limited",
        format!(
            "at most {} reads (pages, history, dashboard data) per second per client; try again in {secs} s",
            limiter.per_second()
        ),
    );
    Some(([(header::RETRY_AFTER, secs.to_string())], error).into_response())
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ReadAdmitted
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let app: AppState = axum::extract::FromRef::from_ref(state);
        match refuse_read(&app, &parts.extensions) {
            Some(refused) => Err(refused),
            None => Ok(ReadAdmitted),
        }
    }
}

impl<S: Send + Sync, const TOKEN: bool> axum::extract::FromRequestParts<S> for Admission<TOKEN>
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let app: AppState = axum::extract::FromRef::from_ref(state);
        let client = client_address(&parts.extensions);
        admit(&app, &parts.headers, client, TOKEN).map(|()| Admission)
    }
}

/// One object in, one object out; a batch in, an array in input order out.
fn answer<T: Serialize>(single: bool, mut results: Vec<T>) -> Response {
    if single && results.len() == 1 {
        (StatusCode::OK, Json(results.remove(0))).into_response()
    } else {
        (StatusCode::OK, Json(results)).into_response()
    }
}

#[derive(Serialize)]
struct Accepted {
    topic: String,
    epoch: String,
    offset: u64,
}

pub async fn post_ticks(
    _: Admitted,
    State(state): State<AppState>,
    Items { items, single }: Items<Tick>,
) -> Result<Response, ApiError> {
    let published = state.ingest.ticks(items, now_ms()).await?;
    let accepted = published
        .into_iter()
        .map(|p| Accepted {
            topic: Topic::Ticks.to_string(),
            epoch: p.epoch.to_string(),
            offset: p.offset,
        })
        .collect();
    Ok(answer(single, accepted))
}

pub async fn post_posts(
    _: Admitted,
    State(state): State<AppState>,
    Items { items, single }: Items<NewPost>,
) -> Result<Response, ApiError> {
    Ok(answer(single, state.ingest.posts(items, now_ms()).await?))
}

pub async fn post_engagement(
    _: Admitted,
    State(state): State<AppState>,
    Items { items, single }: Items<Engagement>,
) -> Result<Response, ApiError> {
    Ok(answer(
        single,
        state.ingest.engagements(items, now_ms()).await?,
    ))
}

/// A text to score: `{"text": "..."}` or a bare JSON string.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum TextToScore {
    Object { text: String },
    Bare(String),
}

/// Scores texts without storing or publishing anything.
pub async fn post_sentiment(
    _: RateLimited,
    Items { items, single }: Items<TextToScore>,
) -> Result<Response, ApiError> {
    let analyzer = SentimentAnalyzer::global();
    let mut scores: Vec<Sentiment> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let (TextToScore::Object { text } | TextToScore::Bare(text)) = item;
        if text.chars().count() > MAX_POST_CHARS * 10 {
            return Err(ApiError::invalid_item(
                index,
                Some("text"),
                format!(
                    "item {index}: text must be at most {} characters",
                    MAX_POST_CHARS * 10
                ),
            ));
        }
        scores.push(analyzer.analyze(&text));
    }
    Ok(answer(single, scores))
}

/// Everything the dashboard shows now, with the stream positions it reaches.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub ts: i64,
    pub symbols: Vec<SymbolSummary>,
    pub posts: Vec<FeedPost>,
    pub sentiment: SentimentStats,
    pub sentiment_by_symbol: BTreeMap<String, SentimentStats>,
    pub engagement_rates: Rates,
    pub top_posts: Vec<TopPost>,
    pub active_users: pulse_core::model::Presence,
    pub positions: BTreeMap<String, StreamPosition>,
}

/// Builds the snapshot; positions are read first so that a client
/// subscribing with them can only see an event twice, never miss one
/// (clients drop offsets they already have).
pub fn snapshot(state: &AppState) -> Snapshot {
    let symbols = state.ingest.symbols();
    let per_symbol = symbols
        .iter()
        .flat_map(|s| [Topic::SymbolTicks(s.clone()), Topic::Candles(s.clone())]);
    // The same rule as the page's snapshot (positions before data).
    let positions = crate::backend::positions(state, Topic::GLOBAL.into_iter().chain(per_symbol));
    let now = now_ms();
    let (sentiment, sentiment_by_symbol) = state.ingest.sentiment();
    Snapshot {
        ts: now,
        symbols: state.ingest.summaries(),
        posts: state.ingest.recent_posts(50, None),
        sentiment,
        sentiment_by_symbol,
        engagement_rates: state.ingest.engagement_rates(now),
        top_posts: state.ingest.top_posts(now, 10),
        active_users: state.active_users(),
        positions,
    }
}

pub async fn get_snapshot(State(state): State<AppState>) -> Json<Snapshot> {
    Json(snapshot(&state))
}

#[derive(Debug, Deserialize)]
pub struct PostsQuery {
    limit: Option<String>,
    before: Option<String>,
}

pub async fn get_posts(
    _: ReadAdmitted,
    State(state): State<AppState>,
    Query(query): Query<PostsQuery>,
) -> Result<Json<Vec<FeedPost>>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n @ 1..=500) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be 1 to 500, got '{raw}'"
                )))
            }
        },
    };
    let before = match query.before.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("before must be a post id, got '{raw}'"))
        })?),
    };
    let posts = super::history::posts(&state.ingest, limit, before)
        .await
        .map_err(storage_error)?;
    Ok(Json(posts))
}

#[derive(Debug, Deserialize)]
pub struct CandlesQuery {
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// Set when a candle query holds more than it answered: the `to` that asks
/// for the next (older) page.
pub const OLDER_HEADER: &str = "x-pulse-older";

pub async fn get_candles(
    _: ReadAdmitted,
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    Query(query): Query<CandlesQuery>,
) -> Result<(HeaderMap, Json<Vec<Candle>>), ApiError> {
    pulse_core::model::validate_symbol(&symbol)
        .map_err(|e| ApiError::bad_request(format!("symbol {}", e.message)))?;
    let interval: CandleInterval = query
        .interval
        .as_deref()
        .unwrap_or(CandleInterval::OneMinute.as_str())
        .parse()
        .map_err(|error: pulse_core::model::UnknownInterval| {
            ApiError::bad_request(error.to_string())
        })?;
    let bound = |name: &str, raw: Option<&str>| -> Result<Option<i64>, ApiError> {
        raw.map(|r| {
            r.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("{name} must be Unix milliseconds, got '{r}'"))
            })
        })
        .transpose()
    };
    let from = bound("from", query.from.as_deref())?;
    let to = bound("to", query.to.as_deref())?;
    let limit = match query.limit.as_deref() {
        None => MAX_CANDLES,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_CANDLES).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be a number from 1 to {MAX_CANDLES}, got '{raw}'"
                ))
            })?,
    };
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::bad_request("from must not be after to"));
        }
    }
    // One more than asked for tells whether older candles are left.
    let mut candles =
        super::history::candles(&state.ingest, &symbol, interval, from, to, limit + 1)
            .await
            .map_err(storage_error)?;
    let older = (candles.len() > limit).then(|| {
        candles.remove(0);
        candles[0].start - 1
    });
    let mut headers = HeaderMap::new();
    if let Some(older) = older {
        // The page's continuation: the same query with `to` set to this.
        headers.insert(OLDER_HEADER, older.into());
    }
    Ok((headers, Json(candles)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_as_object_array_or_ndjson() {
        let one: Items<serde_json::Value> = parse_items(&Bytes::from(r#"{"a":1}"#), false).unwrap();
        assert!(one.single);
        let many: Items<serde_json::Value> =
            parse_items(&Bytes::from(r#"[{"a":1},{"a":2}]"#), false).unwrap();
        assert_eq!((many.items.len(), many.single), (2, false));
        let nd: Items<serde_json::Value> =
            parse_items(&Bytes::from("{\"a\":1}\n\n{\"a\":2}\n"), true).unwrap();
        assert_eq!(nd.items.len(), 2);
    }

    #[test]
    fn the_failing_item_is_named() {
        let err = parse_items::<Tick>(
            &Bytes::from(r#"[{"symbol":"A","price":1,"volume":1,"ts":1},{"symbol":"A"}]"#),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(err.item, Some(1));
        let err = parse_items::<Tick>(&Bytes::from("not json"), false)
            .err()
            .unwrap();
        assert_eq!(err.code, "invalid_json");
        let err = parse_items::<Tick>(&Bytes::from("[]"), false)
            .err()
            .unwrap();
        assert_eq!(err.code, "empty_batch");
    }

    #[test]
    fn ingest_errors_get_their_kinds_status_and_an_unknown_post_is_a_404() {
        for error in crate::errors::tests::ingest_errors() {
            let kind = error.kind();
            let answer = ApiError::from(error);
            assert_eq!(answer.status.as_u16(), kind.status(), "{kind:?}");
        }
        let unknown = ApiError::from(IngestError::UnknownPost {
            index: 3,
            post_id: 42,
        });
        assert_eq!(
            (unknown.status, unknown.code, unknown.item, unknown.field),
            (
                StatusCode::NOT_FOUND,
                "unknown_post",
                Some(3),
                Some("post_id")
            )
        );
    }
}
