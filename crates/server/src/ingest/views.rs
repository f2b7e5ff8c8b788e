//! The in-memory read model: what ingest keeps for snapshots, pages and
//! server functions, and the queries over it. Updated only under the
//! ingest lock, in the same step as the offsets it reaches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};

use pulse_core::analytics::engagement::{EngagementConfig, EngagementEngine};
use pulse_core::analytics::market::{MarketConfig, MarketEngine};
use pulse_core::analytics::sentiment_window::SentimentWindow;
use pulse_core::model::{Candle, CandleInterval, Post, Tick, TimestampMs};
use pulse_core::protocol::payload::SentimentStats;
use pulse_core::protocol::payload::SymbolSummary;
use pulse_core::protocol::payload::{Rates, TopPost};
use pulse_core::protocol::{FeedPost, StreamPosition, Topic};

use pulse_core::protocol::SentimentUpdate;

use super::{
    Ingest, IngestLimits, RECENT_POSTS, RECENT_TICKS_PER_SYMBOL, SENTIMENT_WINDOW,
    TOP_POSTS_WINDOW_MS,
};
use crate::broker::{Broker, PendingEvent, Published, Route};
use crate::clock::now_ms;

/// Recent ticks of one symbol and the `ticks:<SYMBOL>` position they reach,
/// kept together so a snapshot plus `since` misses nothing and repeats nothing.
#[derive(Default)]
pub(super) struct RecentTicks {
    pub(super) ticks: VecDeque<Tick>,
    pub(super) position: Option<Published>,
    /// Wall time the newest tick arrived (not its `ts`: a backfill of old
    /// data is as fresh as live data), for dropping idle symbols.
    pub(super) arrived: TimestampMs,
    /// Where this symbol's events go, found once (see [`KnownRoute`]).
    pub(super) routes: SymbolRoutes,
}

/// A symbol's topics as the broker handed them out, kept so a tick does
/// not look its topics up by name under the ingest lock, and its
/// conflation key, allocated once.
#[derive(Default)]
pub(super) struct SymbolRoutes {
    pub(super) key: Option<Arc<str>>,
    pub(super) ticks: KnownRoute,
    pub(super) candles: KnownRoute,
}

/// One topic's route, once an event went there; the broker says when it
/// is stale (the topic was removed or replaced) and it is found again.
/// Weak: a replaced topic must go once the broker lets go of it, so that
/// its subscribers' channel closes and they resubscribe (a quiet symbol
/// would otherwise keep them waiting on the old topic).
#[derive(Default)]
pub(super) struct KnownRoute(Option<Weak<dyn Route>>);

impl KnownRoute {
    /// Prepares `data_json` on the remembered topic, or on `topic` (and
    /// remembers it) when there is none or it went stale.
    pub(super) fn prepare(
        &mut self,
        broker: &dyn Broker,
        topic: impl FnOnce() -> Topic,
        data_json: &str,
        conflation_key: Option<Arc<str>>,
        source_ts: Option<TimestampMs>,
    ) -> PendingEvent {
        if let Some(route) = self.0.as_ref().and_then(Weak::upgrade) {
            if let Some(event) =
                broker.prepare_json_on(route, data_json, conflation_key.clone(), source_ts)
            {
                return event;
            }
        }
        let event = broker.prepare_json(&topic(), data_json, conflation_key, source_ts);
        self.0 = Some(Arc::downgrade(&event.route));
        event
    }
}

pub(super) struct LiveState {
    pub(super) recent_ticks: BTreeMap<String, RecentTicks>,
    /// The `ticks` topic's route (see [`KnownRoute`]).
    pub(super) all_ticks: KnownRoute,
    pub(super) market: MarketEngine,
    pub(super) engagement: EngagementEngine,
    pub(super) posts: VecDeque<Post>,
    pub(super) next_post_id: u64,
    pub(super) overall_sentiment: SentimentWindow,
    pub(super) symbol_sentiment: BTreeMap<String, SentimentWindow>,
}

impl LiveState {
    pub(super) fn empty(limits: &IngestLimits) -> Self {
        let market = MarketConfig {
            max_symbols: limits.max_symbols,
            ..MarketConfig::default()
        };
        Self {
            recent_ticks: BTreeMap::new(),
            all_ticks: KnownRoute::default(),
            market: MarketEngine::new(market),
            engagement: EngagementEngine::new(EngagementConfig::default()),
            posts: VecDeque::new(),
            next_post_id: 1,
            overall_sentiment: SentimentWindow::new(SENTIMENT_WINDOW),
            symbol_sentiment: BTreeMap::new(),
        }
    }
}

impl LiveState {
    /// The engine and recent-ticks part of taking a tick, shared by the
    /// leader and by followers replaying its log.
    pub(super) fn record_tick(
        &mut self,
        tick: &Tick,
        symbol_position: Published,
    ) -> pulse_core::analytics::market::TickOutcome {
        let outcome = self.market.apply(tick);
        let entry = self.symbol_entry(&tick.symbol);
        if entry.ticks.len() >= RECENT_TICKS_PER_SYMBOL {
            entry.ticks.pop_front();
        }
        entry.ticks.push_back(tick.clone());
        entry.position = Some(symbol_position);
        entry.arrived = now_ms();
        outcome
    }

    /// `symbol`'s recent ticks, created empty if it has none yet (its name
    /// is copied only then).
    pub(super) fn symbol_entry(&mut self, symbol: &str) -> &mut RecentTicks {
        if !self.recent_ticks.contains_key(symbol) {
            self.recent_ticks
                .insert(symbol.to_owned(), RecentTicks::default());
        }
        self.recent_ticks
            .get_mut(symbol)
            .expect("inserted just above")
    }

    /// The engines' part of taking a post; returns the sentiment updates
    /// it causes (overall first, then per symbol).
    pub(super) fn record_post(&mut self, post: &Post) -> Vec<SentimentUpdate> {
        self.engagement.register(post);
        if self.posts.len() >= RECENT_POSTS {
            self.posts.pop_front();
        }
        self.posts.push_back(post.clone());
        self.next_post_id = self.next_post_id.max(post.id + 1);
        let s = post.sentiment;
        self.overall_sentiment.push(post.ts, s.compound, s.label);
        let mut updates = vec![SentimentUpdate {
            scope: "overall".into(),
            ts: post.ts,
            stats: self.overall_sentiment.stats(),
        }];
        for symbol in &post.symbols {
            let window = self
                .symbol_sentiment
                .entry(symbol.clone())
                .or_insert_with(|| SentimentWindow::new(SENTIMENT_WINDOW));
            window.push(post.ts, s.compound, s.label);
            updates.push(SentimentUpdate {
                scope: symbol.clone(),
                ts: post.ts,
                stats: window.stats(),
            });
        }
        updates
    }

    /// Stops tracking `symbol` in every engine.
    pub(super) fn forget(&mut self, symbol: &str) {
        self.recent_ticks.remove(symbol);
        self.market.forget(symbol);
        self.symbol_sentiment.remove(symbol);
    }
}

impl Ingest {
    /// Whether `symbol` is tracked: it has data, or it is on the allowlist.
    /// Only tracked symbols have topics.
    pub fn tracks(&self, symbol: &str) -> bool {
        self.limits
            .allowed_symbols
            .as_ref()
            .is_some_and(|allowed| allowed.contains(symbol))
            || self.state().recent_ticks.contains_key(symbol)
    }

    /// The limits this node enforces.
    pub fn limits(&self) -> &IngestLimits {
        &self.limits
    }

    /// Number of symbols tracked now.
    pub fn symbol_count(&self) -> usize {
        self.state().recent_ticks.len()
    }

    /// Symbols seen so far, sorted.
    pub fn symbols(&self) -> Vec<String> {
        self.state().recent_ticks.keys().cloned().collect()
    }

    /// The most recent ticks of `symbol` (oldest first) and the
    /// `ticks:<SYMBOL>` position right after the newest of them.
    pub fn recent_ticks(&self, symbol: &str) -> (Vec<Tick>, Option<StreamPosition>) {
        self.state()
            .recent_ticks
            .get(symbol)
            .map(|r| {
                (
                    r.ticks.iter().cloned().collect(),
                    r.position.clone().map(Into::into),
                )
            })
            .unwrap_or_default()
    }

    pub fn summaries(&self) -> Vec<SymbolSummary> {
        self.state().market.summaries()
    }

    pub fn candles(&self, symbol: &str, interval: CandleInterval) -> Vec<Candle> {
        self.state().market.candles(symbol, interval)
    }

    /// Newest posts first, at most `limit`, only those with an id below `before`.
    pub fn recent_posts(&self, limit: usize, before: Option<u64>) -> Vec<FeedPost> {
        let state = self.state();
        state
            .posts
            .iter()
            .rev()
            .filter(|p| before.is_none_or(|b| p.id < b))
            .take(limit)
            .map(|post| FeedPost {
                post: post.clone(),
                engagement: state.engagement.totals(post.id).unwrap_or_default(),
            })
            .collect()
    }

    /// Ids of the newest `n` posts, oldest first.
    pub fn recent_post_ids(&self, n: usize) -> Vec<u64> {
        let state = self.state();
        let skip = state.posts.len().saturating_sub(n);
        state.posts.iter().skip(skip).map(|p| p.id).collect()
    }

    /// Overall and per-symbol rolling sentiment.
    pub fn sentiment(&self) -> (SentimentStats, BTreeMap<String, SentimentStats>) {
        let state = self.state();
        (
            state.overall_sentiment.stats(),
            state
                .symbol_sentiment
                .iter()
                .map(|(symbol, window)| (symbol.clone(), window.stats()))
                .collect(),
        )
    }

    pub fn engagement_rates(&self, now: TimestampMs) -> Rates {
        self.state().engagement.rates(now)
    }

    pub fn top_posts(&self, now: TimestampMs, n: usize) -> Vec<TopPost> {
        self.state()
            .engagement
            .top_posts(now, TOP_POSTS_WINDOW_MS, n)
    }
}
