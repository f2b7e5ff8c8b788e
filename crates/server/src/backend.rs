//! The server side of the dashboard's [`Backend`]: what its server functions
//! read and write, built from the live views and storage. The app crate
//! declares the functions; this is the only place that answers them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use leptos::prelude::use_context;
use pulse_app::backend::{Backend, Reply};
use pulse_app::chart_view::{ChartRange, ChartView};
use pulse_app::compose::Posted;
use pulse_app::dashboard::DashboardData;
use pulse_app::engagement_panel::{EngagementState, TopEntry, TOP_TRACKED};
use pulse_app::feed::{Reacted, FEED_WINDOW, OLDER_PAGE};
use pulse_app::price_panel::{PriceState, SymbolData};
use pulse_app::rpc_error::RpcError;
use pulse_app::sentiment_panel::{
    series_from_posts, SentimentSeries, SymbolSentiment, ROLLING_POSTS,
};
use pulse_app::time_travel::PlayedChunk;
use pulse_app::watchlist::{push_spark, WatchRow, Watchlist, SPARK_POINTS};
use pulse_core::analytics::market::rollup;
use pulse_core::model::{
    Candle, CandleInterval, Engagement, EngagementKind, NewPost, Post, TimestampMs,
};
use pulse_core::protocol::{FeedPost, StreamPosition, Topic};
use pulse_core::time::bucket_start;

use crate::clock::now_ms;
use crate::history;
use crate::ingest::RECENT_POSTS;
use crate::past;
use crate::state::AppState;

/// The backend every server function gets as context.
pub struct ServerBackend {
    state: AppState,
}

impl ServerBackend {
    pub fn shared(state: AppState) -> Arc<dyn Backend> {
        Arc::new(Self { state })
    }
}

fn boxed<'a, T>(future: impl Future<Output = Result<T, RpcError>> + Send + 'a) -> Reply<'a, T> {
    Box::pin(future)
}

impl Backend for ServerBackend {
    fn dashboard(&self, symbol: Option<String>, view: ChartView) -> Reply<'_, DashboardData> {
        match view.at {
            Some(at) => boxed(past::dashboard_at(&self.state, symbol, view, at)),
            None => boxed(dashboard(&self.state, symbol, view)),
        }
    }

    fn played(
        &self,
        symbol: String,
        view: ChartView,
        from: i64,
        to: i64,
    ) -> Reply<'_, PlayedChunk> {
        boxed(past::played(&self.state, symbol, view, from, to))
    }

    fn symbol(&self, symbol: String, view: ChartView) -> Reply<'_, SymbolData> {
        boxed(async move {
            if view.at.is_some() {
                // Its sentiment and position are live: a past moment is
                // loaded whole, with `load_dashboard`.
                return Err(RpcError::Invalid {
                    message:
                        "load_symbol shows the live symbol; load a past moment with load_dashboard"
                            .into(),
                    field: Some("view[at]".into()),
                });
            }
            if !self.state.ingest.symbols().contains(&symbol) {
                return Err(RpcError::NotFound {
                    message: format!("unknown symbol {symbol}"),
                });
            }
            symbol_data(&self.state, &symbol, view).await
        })
    }

    fn candles(
        &self,
        symbol: String,
        interval: CandleInterval,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Reply<'_, Vec<Candle>> {
        boxed(async move {
            Ok(history::candles(
                &self.state.ingest,
                &symbol,
                interval,
                from,
                to,
                history::MAX_CANDLES,
            )
            .await?)
        })
    }

    fn older_posts(&self, before: u64) -> Reply<'_, Vec<FeedPost>> {
        boxed(
            async move { Ok(history::posts(&self.state.ingest, OLDER_PAGE, Some(before)).await?) },
        )
    }

    fn submit_post(&self, post: NewPost) -> Reply<'_, Posted> {
        boxed(async move {
            let post = self
                .state
                .ingest
                .posts(vec![post], now_ms())
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| RpcError::internal("the post was not created"))?;
            Ok(Posted {
                id: post.id,
                sentiment: post.sentiment,
            })
        })
    }

    fn react(&self, post_id: u64, kind: EngagementKind) -> Reply<'_, Reacted> {
        // The caller is read from the request now, before the first await.
        let caller = crate::rpc_admission::caller();
        boxed(async move {
            let caller = caller?;
            let state = &self.state;
            let now = now_ms();
            if state.ingest.write_path() == crate::ingest::WritePath::Leader {
                // In a cluster the leader decides like or unlike, so a
                // second click undoes the first on whichever node it lands.
                let request = crate::ingest::forward::ReactRequest {
                    session: caller.session,
                    address: caller.address,
                    post_id,
                    kind,
                };
                let reacted = state
                    .ingest
                    .forward_reaction(request, now)?
                    .durable()
                    .await
                    .inspect_err(|error| {
                        if matches!(error, crate::ingest::IngestError::Reaction(_)) {
                            state.metrics.write_rejected("rate_limited");
                        }
                    })?;
                return Ok(Reacted {
                    totals: reacted.totals,
                    on: reacted.on,
                });
            }
            let toggle = state
                .ingest
                .reactions()
                .toggle(caller.session, caller.address, post_id, kind)
                .inspect_err(|_| state.metrics.write_rejected("rate_limited"))?;
            let event = Engagement {
                post_id,
                kind,
                delta: toggle.delta(),
                ts: now,
            };
            let totals = state
                .ingest
                .react_locally(event, toggle.change(), now)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| RpcError::internal("the reaction was not applied"))?
                .totals;
            let on = toggle.on();
            toggle.commit();
            Ok(Reacted { totals, on })
        })
    }

    fn request_header(&self, name: &str) -> Option<String> {
        let parts = use_context::<axum::http::request::Parts>()?;
        let value = parts.headers.get(name)?.to_str().ok()?;
        Some(value.to_owned())
    }

    fn in_request(&self) -> bool {
        use_context::<axum::http::request::Parts>().is_some()
    }

    fn respond(&self, status: Option<u16>, headers: &[(&'static str, &str)]) {
        use axum::http::{HeaderName, HeaderValue, StatusCode};
        let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
            return;
        };
        if let Some(status) = status {
            response.set_status(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header(HeaderName::from_static(name), value);
            }
        }
    }
}

/// Positions of `topics`, read before any data: a client subscribing with
/// them may see an event twice (panels drop repeats), never miss one.
pub fn positions(
    state: &AppState,
    topics: impl IntoIterator<Item = Topic>,
) -> BTreeMap<String, StreamPosition> {
    topics
        .into_iter()
        .map(|topic| (topic.to_string(), state.broker.position(&topic)))
        .collect()
}

async fn dashboard(
    state: &AppState,
    symbol: Option<String>,
    view: ChartView,
) -> Result<DashboardData, RpcError> {
    let positions = positions(state, Topic::GLOBAL);
    let now = now_ms();
    let rows = state
        .ingest
        .summaries()
        .into_iter()
        .map(|summary| {
            let mut row = WatchRow::new(summary.symbol.clone(), summary.open);
            row.last = summary.last;
            row.last_ts = summary.last_ts;
            for tick in state.ingest.recent_ticks(&summary.symbol).0 {
                push_spark(&mut row.spark, tick.ts, tick.price, SPARK_POINTS);
            }
            row
        })
        .collect::<Vec<_>>();
    let selected = symbol
        .filter(|s| rows.iter().any(|r| r.symbol == *s))
        .or_else(|| rows.first().map(|r| r.symbol.clone()))
        .unwrap_or_default();
    Ok(DashboardData {
        watchlist: Watchlist { rows },
        symbol: symbol_data(state, &selected, view).await?,
        sentiment: overall_sentiment(state),
        feed: state.ingest.recent_posts(FEED_WINDOW, None),
        engagement: engagement_state(state, now),
        presence: state.active_users(),
        positions,
    })
}

/// Data of `symbol` (candles, sentiment). Candles come through the same
/// history query as `GET /api/candles` (storage when the node has it).
/// Their position is read first: a candle changed in between arrives again
/// live and simply replaces itself.
async fn symbol_data(
    state: &AppState,
    symbol: &str,
    view: ChartView,
) -> Result<SymbolData, RpcError> {
    let position = state.broker.position(&Topic::Candles(symbol.to_owned()));
    Ok(SymbolData {
        price: price_state(state, symbol, view, Some(position)).await?,
        sentiment: symbol_sentiment(state, symbol),
    })
}

/// The chart of `symbol` as `view` shows it. A rolled-up interval's newest
/// two buckets come as their 1 min candles (the `tail` live updates revise).
pub(crate) async fn price_state(
    state: &AppState,
    symbol: &str,
    view: ChartView,
    position: Option<StreamPosition>,
) -> Result<PriceState, RpcError> {
    let (from, to, limit) = view.window(now_ms());
    let interval = view.interval;
    // In the past, only candles that had ended by then (as time travel
    // plays them); live, the open one too.
    let to = match view.at {
        Some(_) => to.saturating_sub(interval.source().millis()),
        None => to,
    };
    let (mut candles, tail) = if interval.is_stored() {
        let candles =
            history::candles(&state.ingest, symbol, interval, from, Some(to), limit + 1).await?;
        (candles, Vec::new())
    } else {
        let width = interval.millis();
        let tail_from = bucket_start(to, width)
            .unwrap_or(to)
            .saturating_sub(width)
            .max(from.unwrap_or(i64::MIN));
        let older = history::candles(
            &state.ingest,
            symbol,
            interval,
            from,
            Some(tail_from.saturating_sub(1)),
            limit + 1,
        )
        .await?;
        let minutes = 2 * (width / interval.source().millis()) as usize;
        let tail = history::candles(
            &state.ingest,
            symbol,
            interval.source(),
            Some(tail_from),
            Some(to),
            minutes,
        )
        .await?;
        (older, tail)
    };
    let shown = candles.len() + rollup(&tail, interval).len();
    if shown > limit {
        candles.drain(..(shown - limit).min(candles.len()));
    }
    // The live range is the newest candles by definition; a longer one that
    // holds more than the chart draws says so.
    let truncated = shown > limit && view.range != ChartRange::Live;
    Ok(PriceState {
        symbol: symbol.to_owned(),
        view,
        candles,
        tail,
        truncated,
        position,
    })
}

/// Recent posts, oldest first.
fn recent_posts_oldest_first(state: &AppState) -> Vec<Post> {
    let mut posts: Vec<Post> = state
        .ingest
        .recent_posts(ROLLING_POSTS, None)
        .into_iter()
        .map(|p| p.post)
        .collect();
    posts.reverse();
    posts
}

fn overall_sentiment(state: &AppState) -> SentimentSeries {
    let mut series = series_from_posts(&recent_posts_oldest_first(state));
    series.stats = state.ingest.sentiment().0;
    series
}

fn symbol_sentiment(state: &AppState, symbol: &str) -> SymbolSentiment {
    let posts = recent_posts_oldest_first(state);
    let mut series = series_from_posts(
        posts
            .iter()
            .filter(|p| p.symbols.iter().any(|s| s == symbol)),
    );
    series.stats = state
        .ingest
        .sentiment()
        .1
        .get(symbol)
        .copied()
        .unwrap_or_default();
    SymbolSentiment {
        symbol: symbol.to_owned(),
        series,
    }
}

/// Buckets and top posts from the live views.
fn engagement_state(state: &AppState, now: TimestampMs) -> EngagementState {
    let posts = state.ingest.recent_posts(RECENT_POSTS, None);
    let top = state
        .ingest
        .top_posts(now, TOP_TRACKED)
        .into_iter()
        .map(|t| {
            let post = posts.iter().find(|p| p.post.id == t.post_id);
            TopEntry {
                post_id: t.post_id,
                author: post.map(|p| p.post.author.clone()).unwrap_or_default(),
                text: post.map_or_else(|| format!("Post #{}", t.post_id), |p| p.post.text.clone()),
                window: t.window,
                totals: t.totals,
            }
        })
        .collect();
    let mut engagement = EngagementState::new(state.ingest.engagement_rates(now).per_10s, top);
    engagement.advance(now);
    engagement
}
