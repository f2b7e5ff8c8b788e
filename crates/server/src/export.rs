//! `GET /api/export?kind=ticks|candles|posts|engagement&symbol=&interval=&from=&to=&format=csv|ndjson`:
//! what the node keeps, as a file `pulse replay` reads back, streamed in
//! constant memory whatever the range ([`stream`]).
//!
//! Arguments are checked before anything is read ([`params`]): a bad one
//! is a 400 naming it. At most [`slots::MAX_EXPORTS`] exports run at once;
//! beyond, 503 with `Retry-After`. From storage, rows are read on their own
//! read-only connection ([`crate::storage::ExportReader`]), 5 min, 1 h and
//! 1 day candles rolled up from the stored minutes as they pass
//! ([`rollup`]); without storage, from the in-memory views ([`memory`]).

mod format;
mod memory;
mod params;
mod rollup;
mod slots;
mod stream;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::errors::ErrorKind;
use crate::state::AppState;
use crate::storage::StorageError;

pub use format::{columns, FormatError};
pub use params::{ExportRequest, Format, InvalidParameter, Kind, RawQuery};
pub use slots::{ExportSlot, ExportSlots, MAX_EXPORTS};
pub use stream::{RowSource, StreamError, CHANNEL_CHUNKS, CHUNK_ROWS};

/// Seconds a client refused for lack of a slot is told to wait.
const RETRY_AFTER_SECS: u32 = 5;

/// Why an export was refused before its first byte.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Invalid(#[from] InvalidParameter),
    #[error("{0} exports are running, the most this node runs at once; retry in a few seconds")]
    Busy(usize),
    #[error("this node runs without storage (--in-memory) and keeps no {0} events to export")]
    NotKept(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl IntoResponse for ExportError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            Self::Invalid(error) => ApiError::of(ErrorKind::Invalid, "invalid_parameter", message)
                .with_field(error.field)
                .into_response(),
            Self::Busy(_) => {
                let mut response =
                    ApiError::of(ErrorKind::Unavailable, "too_many_exports", message)
                        .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                response
            }
            Self::NotKept(_) => {
                ApiError::of(ErrorKind::NotFound, "not_kept", message).into_response()
            }
            Self::Storage(error) => {
                let kind = error.kind();
                let code = match kind {
                    ErrorKind::Unavailable => "storage_unavailable",
                    kind => kind.code(),
                };
                ApiError::of(kind, code, message).into_response()
            }
        }
    }
}

pub async fn get_export(State(state): State<AppState>, Query(raw): Query<RawQuery>) -> Response {
    match start(&state, &raw).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Checks the request, takes a slot, opens the source and starts streaming.
async fn start(state: &AppState, raw: &RawQuery) -> Result<Response, ExportError> {
    let request = ExportRequest::parse(raw)?;
    let slot = state
        .exports
        .try_acquire()
        .ok_or(ExportError::Busy(state.exports.max()))?;
    let source: Box<dyn RowSource> = match state.ingest.storage() {
        Some(storage) => {
            let storage = Arc::clone(storage);
            let query = request.storage_query();
            let reader = tokio::task::spawn_blocking(move || storage.export_reader(query))
                .await
                .map_err(|error| {
                    StorageError::Unavailable(format!("the export could not start: {error}"))
                })??;
            if request.kind == Kind::Candles && !request.interval.is_stored() {
                Box::new(rollup::RolledUp::new(Box::new(reader), request.interval))
            } else {
                Box::new(reader)
            }
        }
        None if !memory::keeps(request.kind) => {
            return Err(ExportError::NotKept(request.kind.as_str()))
        }
        None => Box::new(memory::MemorySource::new(
            Arc::clone(&state.ingest),
            request.clone(),
        )),
    };
    let body = stream::body(
        source,
        request.kind,
        request.format,
        slot,
        state.shutdown.clone(),
    );
    let disposition = format!("attachment; filename=\"{}\"", request.filename());
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(request.format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
