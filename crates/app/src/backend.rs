//! The one way the app reaches the server. The server implements
//! [`Backend`] and provides it as context to every server function, so this
//! crate never names the server's types and the crate graph stays one-way
//! (core ← app ← server). Only the server build has it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pulse_core::model::{Candle, CandleInterval, EngagementKind, NewPost};
use pulse_core::protocol::FeedPost;

use crate::chart_view::ChartView;
use crate::compose::Posted;
use crate::dashboard::DashboardData;
use crate::feed::Reacted;
use crate::price_panel::SymbolData;
use crate::rpc_error::RpcError;
use crate::time_travel::PlayedChunk;

/// What a backend call answers; `Send` because server functions run on a
/// multi-threaded runtime.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, RpcError>> + Send + 'a>>;

/// The server as the dashboard's server functions see it. Errors come
/// already classified ([`RpcError`]), so each transport maps them once.
pub trait Backend: Send + Sync + 'static {
    /// Everything the page shows on first paint, with the positions each
    /// live topic resumes from (read before the data).
    fn dashboard(&self, symbol: Option<String>, view: ChartView) -> Reply<'_, DashboardData>;
    /// The panels of one tracked symbol, its chart as `view` shows it;
    /// `NotFound` for any other symbol.
    fn symbol(&self, symbol: String, view: ChartView) -> Reply<'_, SymbolData>;
    /// Candles starting in `[from, to]`, oldest first, from storage.
    fn candles(
        &self,
        symbol: String,
        interval: CandleInterval,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Reply<'_, Vec<Candle>>;
    /// Stored events of `(from, to]` to play back on a dashboard showing
    /// `symbol` as `view` does.
    fn played(&self, symbol: String, view: ChartView, from: i64, to: i64)
        -> Reply<'_, PlayedChunk>;
    /// A page of posts older than `before`, newest first.
    fn older_posts(&self, before: u64) -> Reply<'_, Vec<FeedPost>>;
    /// Ingests a post the caller already validated; answers once it is stored.
    fn submit_post(&self, post: NewPost) -> Reply<'_, Posted>;
    /// Toggles the calling session's like or share of a post.
    fn react(&self, post_id: u64, kind: EngagementKind) -> Reply<'_, Reacted>;

    /// A header of the request being answered (`None` outside a request).
    fn request_header(&self, name: &str) -> Option<String>;
    /// Whether a request is being answered right now.
    fn in_request(&self) -> bool;
    /// Sets the status and headers of the response being made.
    fn respond(&self, status: Option<u16>, headers: &[(&'static str, &str)]);
}

/// The backend the server provided; an internal error when there is none.
pub fn backend() -> Result<Arc<dyn Backend>, RpcError> {
    leptos::prelude::use_context::<Arc<dyn Backend>>()
        .ok_or_else(|| RpcError::internal("the server backend is missing"))
}
