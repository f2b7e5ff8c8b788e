//! Time travel on the server: the dashboard as storage says it was at a
//! moment, and the stored events after it to play back. Built from the same
//! pure engines as the live views (sentiment windows, engagement engine),
//! fed from storage instead of ingest. See `pulse_app::time_travel`.

use std::collections::HashMap;

use pulse_app::chart_view::ChartView;
use pulse_app::dashboard::{DashboardData, LiveUpdate};
use pulse_app::engagement_panel::{EngagementState, TopEntry, TOP_TRACKED};
use pulse_app::feed::FEED_WINDOW;
use pulse_app::price_panel::SymbolData;
use pulse_app::rpc_error::RpcError;
use pulse_app::sentiment_panel::{series_from_posts, SymbolSentiment, ROLLING_POSTS};
use pulse_app::time_travel::{PlayedChunk, MAX_PLAYED};
use pulse_app::watchlist::{push_spark, WatchRow, Watchlist, SPARK_POINTS};
use pulse_core::analytics::engagement::EngagementEngine;
use pulse_core::analytics::sentiment_window::SentimentWindow;
use pulse_core::model::{Counts, Post, Tick, TimestampMs};
use pulse_core::protocol::{CandleUpdate, EngagementEvent, FeedPost, SentimentUpdate};

use crate::backend::price_state;
use crate::ingest::TOP_POSTS_WINDOW_MS;
use crate::state::AppState;
use crate::storage::{Keep, Storage};

/// Engagement events read to rebuild the engagement panel at a moment, at
/// most (its window is 15 minutes; of a busier one the newest are counted,
/// so the rates just before the moment are right unless its last 10 minutes
/// alone hold more, and the top posts lean recent).
const MAX_WINDOW_EVENTS: usize = 100_000;

/// Where a span that hit [`MAX_PLAYED`] at time `last` ends: just before
/// it, so nothing at `last` is left half-played, unless that would not move
/// past `from` at all (more than [`MAX_PLAYED`] events at one instant: the
/// span then ends at `last` and the excess of that instant is not played).
fn cut_before(from: TimestampMs, last: TimestampMs) -> TimestampMs {
    if last.saturating_sub(1) > from {
        last - 1
    } else {
        last
    }
}

fn storage(state: &AppState) -> Result<&std::sync::Arc<Storage>, RpcError> {
    state.ingest.storage().ok_or_else(|| RpcError::Unavailable {
        message: "time travel reads storage, and this server runs without it (--in-memory)".into(),
    })
}

/// The dashboard at `view.at`: every panel from storage. Active users are
/// not stored, so they show none.
pub async fn dashboard_at(
    state: &AppState,
    symbol: Option<String>,
    view: ChartView,
    at: TimestampMs,
) -> Result<DashboardData, RpcError> {
    let storage = storage(state)?;
    let rows: Vec<WatchRow> = storage
        .quotes_at(at, SPARK_POINTS)
        .await?
        .into_iter()
        .map(|quote| {
            let mut row = WatchRow::new(quote.symbol, quote.open);
            row.last = quote.last;
            row.last_ts = quote.last_ts;
            for (ts, close) in quote.spark {
                push_spark(&mut row.spark, ts, close, SPARK_POINTS);
            }
            row
        })
        .collect();
    let selected = symbol
        .filter(|s| rows.iter().any(|r| r.symbol == *s))
        .or_else(|| rows.first().map(|r| r.symbol.clone()))
        .unwrap_or_default();

    let mut recent = storage
        .posts_until(at, ROLLING_POSTS.max(FEED_WINDOW))
        .await?;
    let feed: Vec<FeedPost> = recent
        .iter()
        .take(FEED_WINDOW)
        .map(|(post, engagement)| FeedPost {
            post: post.clone(),
            engagement: *engagement,
        })
        .collect();
    recent.reverse();
    let posts: Vec<&Post> = recent.iter().map(|(post, _)| post).collect();
    let sentiment = series_from_posts(posts.iter().copied());
    let symbol_series = series_from_posts(
        posts
            .iter()
            .copied()
            .filter(|p| p.symbols.contains(&selected)),
    );

    Ok(DashboardData {
        watchlist: Watchlist { rows },
        symbol: SymbolData {
            price: price_state(state, &selected, view, None).await?,
            sentiment: SymbolSentiment {
                symbol: selected,
                series: symbol_series,
            },
        },
        sentiment,
        feed,
        engagement: engagement_at(storage, at, MAX_WINDOW_EVENTS).await?,
        presence: Default::default(),
        positions: Default::default(),
    })
}

/// The engagement panel at `at`: the engine fed the window's newest
/// `max_events` events.
pub(crate) async fn engagement_at(
    storage: &std::sync::Arc<Storage>,
    at: TimestampMs,
    max_events: usize,
) -> Result<EngagementState, RpcError> {
    let since = at.saturating_sub(TOP_POSTS_WINDOW_MS);
    let events = storage
        .engagement_between(since, at, max_events, Keep::Latest)
        .await?;
    let mut ids: Vec<u64> = events.iter().map(|e| e.post_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let posts = storage.posts_by_id(ids, since).await?;
    let mut engine = EngagementEngine::default();
    for (id, (_, counts)) in &posts {
        engine.register_post_with_totals(*id, *counts);
    }
    for event in &events {
        // Events of posts no longer stored have nothing to count into.
        drop(engine.apply(event));
    }
    let top = engine
        .top_posts(at, TOP_POSTS_WINDOW_MS, TOP_TRACKED)
        .into_iter()
        .map(|top| {
            let post = posts.get(&top.post_id).map(|(post, _)| post);
            TopEntry {
                post_id: top.post_id,
                author: post.map(|p| p.author.clone()).unwrap_or_default(),
                text: post.map_or_else(|| format!("Post #{}", top.post_id), |p| p.text.clone()),
                window: top.window,
                totals: top.totals,
            }
        })
        .collect();
    let mut state = EngagementState::new(engine.rates(at).per_10s, top);
    state.advance(at);
    Ok(state)
}

/// The stored events of `(from, to]` as live events, in time order, for a
/// dashboard showing `symbol` as `view` does: every symbol's candles (as
/// ticks, for the watchlist) and the shown symbol's (for the chart) when
/// they ended, posts with the sentiment they moved, and engagement with
/// the totals after each event.
pub async fn played(
    state: &AppState,
    symbol: String,
    view: ChartView,
    from: TimestampMs,
    to: TimestampMs,
) -> Result<PlayedChunk, RpcError> {
    let storage = storage(state)?;
    let interval = view.interval.source();
    let width = interval.millis();
    let mut until = to;

    let candles = storage
        .candles_ended_between(None, interval, from, until, MAX_PLAYED)
        .await?;
    if let (MAX_PLAYED, Some(last)) = (candles.len(), candles.last()) {
        until = cut_before(from, last.start + width);
    }
    let posts = storage.posts_between(from, until, MAX_PLAYED, from).await?;
    if let (MAX_PLAYED, Some((last, _))) = (posts.len(), posts.last()) {
        until = until.min(cut_before(from, last.ts));
    }
    let engagement = storage
        .engagement_between(from, until, MAX_PLAYED, Keep::Earliest)
        .await?;
    if let (MAX_PLAYED, Some(last)) = (engagement.len(), engagement.last()) {
        until = until.min(cut_before(from, last.ts));
    }

    let mut events: Vec<(TimestampMs, LiveUpdate)> = Vec::new();
    for candle in candles {
        let end = candle.start + width;
        if end > until {
            continue;
        }
        events.push((
            end,
            LiveUpdate::Tick(Tick {
                symbol: candle.symbol.clone(),
                price: candle.close,
                volume: candle.volume,
                ts: end,
            }),
        ));
        if candle.symbol == symbol {
            events.push((
                end,
                LiveUpdate::Candle(
                    0,
                    CandleUpdate {
                        candle,
                        closed: true,
                    },
                ),
            ));
        }
    }

    // Sentiment windows as they stood at `from`, then moved by each post.
    let mut before = storage.posts_until(from, ROLLING_POSTS).await?;
    before.reverse();
    let mut overall = SentimentWindow::new(ROLLING_POSTS);
    let mut of_symbol = SentimentWindow::new(ROLLING_POSTS);
    for (post, _) in &before {
        overall.push(post.ts, post.sentiment.compound, post.sentiment.label);
        if post.symbols.contains(&symbol) {
            of_symbol.push(post.ts, post.sentiment.compound, post.sentiment.label);
        }
    }
    for (post, counts) in posts.into_iter().filter(|(p, _)| p.ts <= until) {
        let s = post.sentiment;
        overall.push(post.ts, s.compound, s.label);
        events.push((
            post.ts,
            LiveUpdate::Sentiment(SentimentUpdate {
                scope: "overall".into(),
                ts: post.ts,
                stats: overall.stats(),
            }),
        ));
        if post.symbols.contains(&symbol) {
            of_symbol.push(post.ts, s.compound, s.label);
            events.push((
                post.ts,
                LiveUpdate::Sentiment(SentimentUpdate {
                    scope: symbol.clone(),
                    ts: post.ts,
                    stats: of_symbol.stats(),
                }),
            ));
        }
        events.push((
            post.ts,
            LiveUpdate::Post(FeedPost {
                post,
                engagement: counts,
            }),
        ));
    }

    let mut ids: Vec<u64> = engagement.iter().map(|e| e.post_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut totals: HashMap<u64, Counts> = storage
        .posts_by_id(ids, from)
        .await?
        .into_iter()
        .map(|(id, (_, counts))| (id, counts))
        .collect();
    for event in engagement.into_iter().filter(|e| e.ts <= until) {
        let counts = totals.entry(event.post_id).or_default();
        counts.add(event.kind, event.delta);
        *counts = counts.clamped();
        events.push((
            event.ts,
            LiveUpdate::Engagement(EngagementEvent {
                post_id: event.post_id,
                kind: event.kind,
                delta: event.delta,
                ts: event.ts,
                totals: *counts,
            }),
        ));
    }
    events.sort_by_key(|(ts, _)| *ts);
    // Each kind was read up to MAX_PLAYED; the answer as a whole is bounded
    // too (a shown candle is two events, a post up to three). It ends
    // before the first instant that does not fit, complete up to there.
    if let Some(&(first_left_out, _)) = events.get(MAX_PLAYED) {
        until = until.min(cut_before(from, first_left_out));
        events.retain(|(ts, _)| *ts <= until);
    }
    Ok(PlayedChunk { events, until })
}

#[cfg(test)]
mod tests {
    use super::cut_before;

    #[test]
    fn a_full_span_ends_before_its_last_instant_unless_that_is_all_it_holds() {
        assert_eq!(cut_before(1_000, 5_000), 4_999);
        assert_eq!(cut_before(1_000, 1_001), 1_001, "the span still moves on");
        assert_eq!(cut_before(i64::MIN, i64::MIN + 1), i64::MIN + 1);
    }
}
