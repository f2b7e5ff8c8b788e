//! The dashboard page: every panel server-rendered from one snapshot, then
//! kept live over one WebSocket whose events are routed to the panels and
//! applied once per animation frame.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use pulse_core::analytics::market::CandleUpdate;
use crate::compose::ComposePanel;
use crate::engagement_panel::{EngagementPanel, EngagementState};
use crate::feed::{FeedPanel, FeedState};
use crate::live::ConnectionStatus;
use crate::presence::{ActiveUsers, ConnectionBadge};
use crate::price_panel::{interval_param, parse_interval, PricePanel, PriceState, SymbolData};
use crate::rpc_error::RpcError;
use crate::sentiment_panel::{SentimentPanel, SentimentSeries, SentimentState};
use crate::watchlist::{Watchlist, WatchlistPanel};
use pulse_core::model::{Presence, Tick};
use pulse_core::protocol::{EngagementEvent, EventFrame, FeedPost, SentimentUpdate, StreamPosition};

/// What the page needs for its first paint, and where each topic resumes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub watchlist: Watchlist,
    pub symbol: SymbolData,
    pub sentiment: SentimentSeries,
    pub feed: Vec<FeedPost>,
    pub engagement: EngagementState,
    pub presence: Presence,
    /// Positions of the global topics (`ticks`, `posts`, …), read before the data.
    pub positions: BTreeMap<String, StreamPosition>,
}

#[server(prefix = "/rpc", endpoint = "load_dashboard")]
pub async fn load_dashboard(symbol: Option<String>) -> Result<DashboardData, RpcError> {
    crate::backend::backend()?.dashboard(symbol).await
}

/// A live event, decoded for its panel.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveUpdate {
    Tick(Tick),
    Candle(u64, CandleUpdate),
    Post(FeedPost),
    Sentiment(SentimentUpdate),
    Engagement(EngagementEvent),
    Presence(Presence),
}

/// Decodes an event by its topic; `None` for unknown topics or payloads.
pub fn decode(frame: EventFrame) -> Option<LiveUpdate> {
    use serde_json::from_value;
    let topic = frame.topic.as_str();
    let update = if topic == "ticks" || topic.starts_with("ticks:") {
        LiveUpdate::Tick(from_value(frame.data).ok()?)
    } else if topic.starts_with("candles:") {
        LiveUpdate::Candle(frame.offset, from_value(frame.data).ok()?)
    } else {
        match topic {
            "posts" => LiveUpdate::Post(from_value(frame.data).ok()?),
            "sentiment" => LiveUpdate::Sentiment(from_value(frame.data).ok()?),
            "engagement" => LiveUpdate::Engagement(from_value(frame.data).ok()?),
            "presence" => LiveUpdate::Presence(from_value(frame.data).ok()?),
            _ => return None,
        }
    };
    Some(update)
}

/// One animation frame's worth of updates, grouped so each panel's signal changes once.
#[derive(Debug, Default, PartialEq)]
pub struct Routed {
    pub ticks: Vec<Tick>,
    pub candles: Vec<(u64, CandleUpdate)>,
    pub posts: Vec<FeedPost>,
    pub sentiment: Vec<SentimentUpdate>,
    pub engagement: Vec<EngagementEvent>,
    pub presence: Option<Presence>,
}

impl Routed {
    pub fn new(updates: impl IntoIterator<Item = LiveUpdate>) -> Self {
        let mut routed = Self::default();
        for update in updates {
            match update {
                LiveUpdate::Tick(t) => routed.ticks.push(t),
                LiveUpdate::Candle(offset, c) => routed.candles.push((offset, c)),
                LiveUpdate::Post(p) => routed.posts.push(p),
                LiveUpdate::Sentiment(s) => routed.sentiment.push(s),
                LiveUpdate::Engagement(e) => routed.engagement.push(e),
                LiveUpdate::Presence(p) => routed.presence = Some(p),
            }
        }
        routed
    }
}

/// The panels' state; each is its own signal so a tick redraws only what shows ticks.
#[derive(Clone, Copy)]
pub struct Panels {
    pub watchlist: RwSignal<Watchlist>,
    pub price: RwSignal<PriceState>,
    pub sentiment: RwSignal<SentimentState>,
    pub feed: RwSignal<FeedState>,
    pub engagement: RwSignal<EngagementState>,
    pub presence: RwSignal<Presence>,
}

impl Panels {
    fn new(data: DashboardData) -> Self {
        Self {
            watchlist: RwSignal::new(data.watchlist),
            price: RwSignal::new(data.symbol.price),
            sentiment: RwSignal::new(SentimentState {
                overall: data.sentiment,
                symbol: data.symbol.sentiment,
            }),
            feed: RwSignal::new(FeedState::new(data.feed)),
            engagement: RwSignal::new(data.engagement),
            presence: RwSignal::new(data.presence),
        }
    }

    /// Applies one frame's updates.
    pub fn apply(&self, routed: Routed) {
        if !routed.ticks.is_empty() {
            self.watchlist.update(|w| w.apply(&routed.ticks));
        }
        if !routed.candles.is_empty() {
            self.price.maybe_update(|p| {
                routed
                    .candles
                    .into_iter()
                    .fold(false, |changed, (offset, c)| p.apply(offset, c) || changed)
            });
        }
        if !routed.posts.is_empty() {
            self.feed
                .update(|f| routed.posts.into_iter().for_each(|p| f.apply_post(p)));
        }
        if !routed.sentiment.is_empty() {
            self.sentiment
                .update(|s| routed.sentiment.iter().for_each(|u| s.apply(u)));
        }
        if !routed.engagement.is_empty() {
            self.feed
                .update(|f| routed.engagement.iter().for_each(|e| f.apply_engagement(e)));
            self.engagement.update(|state| {
                self.feed
                    .with_untracked(|f| routed.engagement.iter().for_each(|e| state.apply(e, f)))
            });
        }
        if let Some(presence) = routed.presence {
            self.presence.set(presence);
        }
    }

    /// Replaces the panels fed by `topics` with reloaded data (after lost history).
    pub fn reset(&self, topics: &[String], data: DashboardData) {
        for topic in topics {
            match topic.as_str() {
                "ticks" => self.watchlist.set(data.watchlist.clone()),
                "posts" => self.feed.set(FeedState::new(data.feed.clone())),
                "sentiment" => self.sentiment.set(SentimentState {
                    overall: data.sentiment.clone(),
                    symbol: data.symbol.sentiment.clone(),
                }),
                "engagement" => self.engagement.set(data.engagement.clone()),
                t if t.strip_prefix("candles:") == Some(data.symbol.price.symbol.as_str()) => {
                    self.price.set(data.symbol.price.clone())
                }
                _ => {}
            }
        }
    }
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        || (),
        move |_| load_dashboard(query.with_untracked(|q| q.get("symbol"))),
    );
    view! {
        <Suspense fallback=|| view! { <Topbar extra=().into_any()/><p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Dashboard data/> }.into_any(),
                    Err(error) => view! {
                        <Topbar extra=().into_any()/>
                        <p class="error page-error" role="alert">{format!("Could not load the dashboard: {error}")}</p>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Topbar(extra: AnyView) -> impl IntoView {
    view! {
        <header class="topbar">
            <div class="brand">
                <svg class="logo" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                    <polyline points="2,13 7,13 10,5 14,19 17,11 22,11" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>
                </svg>
                <h1>"Pulse"</h1>
                <p class="tagline">"Live markets & social sentiment"</p>
            </div>
            <div class="topbar-right">{extra}</div>
        </header>
    }
}

#[component]
fn Dashboard(data: DashboardData) -> impl IntoView {
    let query = use_query_map();
    let initial_symbol = data.symbol.price.symbol.clone();
    #[cfg(feature = "hydrate")]
    let positions = data.positions.clone();
    let panels = Panels::new(data);
    let status = RwSignal::new(ConnectionStatus::Connecting);
    let loading = RwSignal::new(false);

    let selected = Memo::new(move |_| {
        let wanted = query.with(|q| q.get("symbol"));
        wanted
            .filter(|s| panels.watchlist.with_untracked(|w| w.row(s).is_some()))
            .unwrap_or_else(|| initial_symbol.clone())
    });
    let interval = Memo::new(move |_| query.with(|q| parse_interval(q.get("interval").as_deref())));

    #[cfg(feature = "hydrate")]
    live::start(panels, positions, status, selected, loading);

    view! {
        <Topbar extra=view! { <ActiveUsers presence=panels.presence/> <ConnectionBadge status/> }.into_any()/>
        <main class="dashboard" id="main">
            <WatchlistPanel
                watchlist=panels.watchlist
                selected=selected.into()
                interval=Signal::derive(move || interval_param(interval.get()))
            />
            <PricePanel price=panels.price watchlist=panels.watchlist interval=interval.into() loading/>
            <div class="insights">
                <SentimentPanel sentiment=panels.sentiment/>
                <EngagementPanel engagement=panels.engagement/>
            </div>
            <div class="social">
                <ComposePanel/>
                <FeedPanel feed=panels.feed/>
            </div>
        </main>
        <footer class="footer">
            <p>"Times in UTC · prices from the simulated feed · sentiment by Pulse's VADER-compatible analyzer"</p>
        </footer>
    }
}

/// The browser side: one connection, frames coalesced per animation frame,
/// symbol changes and lost history reloaded through server functions.
#[cfg(feature = "hydrate")]
mod live {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    use leptos::prelude::*;
    use leptos::task::spawn_local;

    use super::*;
    use crate::live::{connect, FrameCoalescer, LiveEvent, Subscription};
    use crate::price_panel::load_symbol;

    /// Candle events of every symbol, so a newly selected symbol's load can be caught up.
    const CANDLE_REPLAY: usize = 512;

    pub fn start(
        panels: Panels,
        positions: BTreeMap<String, StreamPosition>,
        status: RwSignal<ConnectionStatus>,
        selected: Memo<String>,
        loading: RwSignal<bool>,
    ) {
        let recent_candles: Rc<RefCell<VecDeque<(u64, CandleUpdate)>>> = Rc::default();
        let coalescer = {
            let recent_candles = Rc::clone(&recent_candles);
            FrameCoalescer::new(move |frames: Vec<EventFrame>| {
                let routed = Routed::new(frames.into_iter().filter_map(decode));
                {
                    let mut recent = recent_candles.borrow_mut();
                    recent.extend(routed.candles.iter().cloned());
                    let excess = recent.len().saturating_sub(CANDLE_REPLAY);
                    recent.drain(..excess);
                }
                panels.apply(routed);
            })
        };

        let mut subscriptions: Vec<Subscription> = positions
            .into_iter()
            .map(|(topic, since)| Subscription {
                // Presence is a state: subscribing without `since` brings the
                // latest published count at once (the snapshot's count may be
                // one the server never published; it publishes changes only).
                since: (topic != "presence").then_some(since),
                topic,
            })
            .collect();
        let price_position = panels
            .price
            .with_untracked(|p| (p.symbol.clone(), p.position.clone()));
        for row in panels.watchlist.with_untracked(|w| w.rows.clone()) {
            let since = (row.symbol == price_position.0)
                .then(|| price_position.1.clone())
                .flatten();
            subscriptions.push(Subscription {
                topic: format!("candles:{}", row.symbol),
                since,
            });
        }

        let resets: Rc<RefCell<Vec<String>>> = Rc::default();
        connect(subscriptions, status, move |event| match event {
            LiveEvent::Event(frame) => coalescer.push(frame),
            LiveEvent::Reset { topic } => {
                let first = {
                    let mut pending = resets.borrow_mut();
                    pending.push(topic);
                    pending.len() == 1
                };
                if first {
                    let resets = Rc::clone(&resets);
                    // Collect the resets of one reconnect, then reload once.
                    spawn_local(async move {
                        gloo_timers::future::sleep(std::time::Duration::from_millis(50)).await;
                        let symbol = selected.get_untracked();
                        match load_dashboard(Some(symbol)).await {
                            Ok(data) => {
                                let topics = std::mem::take(&mut *resets.borrow_mut());
                                panels.reset(&topics, data);
                            }
                            Err(error) => {
                                resets.borrow_mut().clear();
                                leptos::logging::warn!(
                                    "reloading after lost history failed: {error}"
                                );
                            }
                        }
                    });
                }
            }
        });

        // Selecting a symbol (URL `?symbol=`) loads its candles and sentiment.
        Effect::new(move |_| {
            let symbol = selected.get();
            if panels.price.with_untracked(|p| p.symbol == symbol) {
                return;
            }
            loading.set(true);
            let recent_candles = Rc::clone(&recent_candles);
            spawn_local(async move {
                let result = load_symbol(symbol.clone()).await;
                if selected.get_untracked() != symbol {
                    return; // a newer selection is loading
                }
                match result {
                    Ok(data) => {
                        let mut price = data.price;
                        for (offset, update) in recent_candles.borrow().iter() {
                            price.apply(*offset, update.clone());
                        }
                        panels.price.set(price);
                        panels.sentiment.update(|s| s.symbol = data.sentiment);
                    }
                    Err(error) => leptos::logging::warn!("loading {symbol} failed: {error}"),
                }
                loading.set(false);
            });
        });

        // Keep the engagement window scrolling while nobody reacts.
        set_interval(
            move || {
                panels
                    .engagement
                    .update(|e| e.advance(js_sys::Date::now() as i64))
            },
            std::time::Duration::from_secs(5),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(topic: &str, offset: u64, data: serde_json::Value) -> EventFrame {
        EventFrame {
            topic: topic.into(),
            offset,
            data,
        }
    }

    #[test]
    fn events_are_decoded_by_topic_and_grouped() {
        let frames = vec![
            frame(
                "ticks",
                1,
                json!({"symbol":"A","price":2.0,"volume":1.0,"ts":5}),
            ),
            frame(
                "candles:A",
                7,
                json!({"candle":{"symbol":"A","interval":"1s","start":0,"open":1.0,"high":2.0,"low":1.0,"close":2.0,"volume":3.0},"closed":false}),
            ),
            frame("presence", 2, json!({"sessions":3,"connections":4})),
            frame("presence", 3, json!({"sessions":2,"connections":2})),
            frame(
                "sentiment",
                1,
                json!({"scope":"overall","ts":5,"stats":{"posts":1,"mean_compound":0.5,"positive":1,"neutral":0,"negative":0}}),
            ),
            frame(
                "engagement",
                1,
                json!({"post_id":1,"kind":"like","delta":1,"ts":5,"totals":{"likes":1,"shares":0,"comments":0}}),
            ),
            frame("weather", 1, json!({})),
            frame("ticks", 2, json!({"bad": true})),
        ];
        let routed = Routed::new(frames.into_iter().filter_map(decode));
        assert_eq!(routed.ticks.len(), 1);
        assert_eq!(routed.candles[0].0, 7);
        assert_eq!(
            routed.presence.map(|p| p.sessions),
            Some(2),
            "latest presence wins"
        );
        assert_eq!(routed.sentiment.len(), 1);
        assert_eq!(routed.engagement[0].totals.likes, 1);
    }

    #[test]
    fn posts_decode_from_the_flattened_payload() {
        let update = decode(frame(
            "posts",
            1,
            json!({"id":4,"author":"ann","text":"<i>hi</i>","ts":5,
                   "sentiment":{"compound":0.1,"pos":0.2,"neu":0.8,"neg":0.0,"label":"positive"},
                   "symbols":["A"],"engagement":{"likes":0,"shares":0,"comments":0}}),
        ));
        let Some(LiveUpdate::Post(post)) = update else {
            panic!("not a post: {update:?}");
        };
        assert_eq!(post.post.text, "<i>hi</i>");
    }
}
