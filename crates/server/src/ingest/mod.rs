//! The single path every piece of data takes into Pulse: validate, score,
//! update the analytics, store, publish through the broker. HTTP, WebSocket
//! `publish`, server functions and the simulator all call this, so they
//! cannot drift apart. The read model it keeps is in [`views`], the
//! rebuild from storage in [`restore`].
//!
//! Batches are all-or-nothing: every item is validated before any is
//! applied, so a rejected batch leaves no trace.

pub mod forward;
mod replicate;
mod restore;
mod views;

pub use forward::{Forwarded, Forwarder, WritePath};
pub use replicate::{ReplicatedBatch, ReplicatedEvent};

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use pulse_core::analytics::engagement::EngagementError;
use pulse_core::analytics::market::{IgnoreReason, MarketConfig};
use pulse_core::analytics::sentiment::{mentioned_symbols, SentimentAnalyzer};
use pulse_core::model::Counts;
use pulse_core::model::{Engagement, NewPost, Post, Tick, TimestampMs, ValidationError};
use pulse_core::protocol::payload::EngagementUpdate;
use pulse_core::protocol::{EngagementEvent, FeedPost, Topic};

use views::LiveState;

use super::broker::{Broker, BrokerError, Published};
use super::storage::{CandleMerge, Storage, StorageError, WriteBatch};
use super::sync::lock;

/// Ticks kept per symbol for the dashboard's first paint.
pub const RECENT_TICKS_PER_SYMBOL: usize = 600;
/// Posts kept in memory for the feed.
pub const RECENT_POSTS: usize = 200;
/// Posts in each rolling sentiment window (the dashboard uses the same size).
pub use pulse_core::analytics::sentiment_window::SENTIMENT_WINDOW;
/// Window of "top posts" (15 minutes).
pub const TOP_POSTS_WINDOW_MS: TimestampMs = 15 * 60 * 1000;

/// What producers can make the node hold; see the README's limits table.
#[derive(Clone, Debug)]
pub struct IngestLimits {
    /// Symbols tracked at most (market engine, per-symbol topics, sentiment).
    pub max_symbols: usize,
    /// When set, only these symbols are accepted (and tracked from the start).
    pub allowed_symbols: Option<BTreeSet<String>>,
    /// How far a tick's `ts` may lie ahead of the server's clock.
    pub max_future_skew_ms: TimestampMs,
    /// Symbols one post is attributed to at most.
    pub max_symbols_per_post: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_symbols: 1_000,
            allowed_symbols: None,
            max_future_skew_ms: 5_000,
            max_symbols_per_post: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Item `index` of the request failed validation.
    #[error("item {index}: invalid {field}: {message}", field = .error.field, message = .error.message)]
    Invalid {
        index: usize,
        error: ValidationError,
    },
    #[error("item {index}: post {post_id} is unknown (never ingested, or too old to engage with)")]
    UnknownPost { index: usize, post_id: u64 },
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A dashboard reaction refused (see [`crate::reactions`]).
    #[error(transparent)]
    Reaction(#[from] crate::reactions::ReactionError),
    /// Nothing was accepted: the data could not be made durable.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Data applied in memory and queued for disk: [`Pending::durable`]
/// resolves once it is on disk and visible to subscribers. Producers that
/// stream can keep many in flight; their commits complete in order.
#[must_use = "the data is acknowledged only once `durable()` resolves"]
pub struct Pending<T> {
    inner: PendingInner<T>,
}

enum PendingInner<T> {
    /// Applied here; durable once storage commits.
    Local {
        value: T,
        commit: Option<super::storage::Commit>,
    },
    /// Forwarded to the leader: the answer arrives with its commit group.
    Remote(tokio::sync::oneshot::Receiver<Result<serde_json::Value, IngestError>>),
}

impl<T> Pending<T> {
    fn local(value: T, commit: Option<super::storage::Commit>) -> Self {
        Self {
            inner: PendingInner::Local { value, commit },
        }
    }

    fn remote(
        answer: tokio::sync::oneshot::Receiver<Result<serde_json::Value, IngestError>>,
    ) -> Self {
        Self {
            inner: PendingInner::Remote(answer),
        }
    }
}

impl<T: serde::de::DeserializeOwned> Pending<T> {
    pub async fn durable(self) -> Result<T, IngestError> {
        match self.inner {
            PendingInner::Local { value, commit } => {
                if let Some(commit) = commit {
                    commit.await.map_err(|_| {
                        StorageError::Unavailable("the storage writer stopped".into())
                    })??;
                }
                Ok(value)
            }
            PendingInner::Remote(answer) => {
                let value = answer
                    .await
                    .map_err(|_| StorageError::Unavailable("the cluster link stopped".into()))??;
                serde_json::from_value(value).map_err(|error| {
                    IngestError::Storage(StorageError::Unavailable(format!(
                        "the leader's answer did not parse: {error}"
                    )))
                })
            }
        }
    }
}

pub struct Ingest {
    broker: Arc<dyn Broker>,
    storage: Option<Arc<Storage>>,
    analyzer: &'static SentimentAnalyzer,
    limits: IngestLimits,
    state: Mutex<LiveState>,
    /// Storage's failed-write count the views were last rebuilt for.
    rolled_back_for: std::sync::atomic::AtomicU64,
    /// Set in multi-node mode: whether this node applies writes or hands
    /// them to the leader.
    forwarder: std::sync::OnceLock<Arc<dyn Forwarder>>,
    /// The cluster-wide active users, as the log last said (multi-node).
    cluster_presence: Mutex<Option<pulse_core::model::Presence>>,
    /// The dashboard sessions' reactions; in a cluster the leader decides
    /// them and followers replay its decisions.
    reactions: crate::reactions::Reactions,
}

impl Ingest {
    /// Without `storage` everything lives in memory and events are released
    /// at once; with it, an ingest call returns once its data is on disk.
    pub fn new(broker: Arc<dyn Broker>, storage: Option<Arc<Storage>>) -> Self {
        Self::with_limits(broker, storage, IngestLimits::default())
    }

    /// [`Ingest::new`] with explicit limits.
    pub fn with_limits(
        broker: Arc<dyn Broker>,
        storage: Option<Arc<Storage>>,
        limits: IngestLimits,
    ) -> Self {
        Self {
            broker,
            storage,
            analyzer: SentimentAnalyzer::global(),
            state: Mutex::new(LiveState::empty(&limits)),
            limits,
            rolled_back_for: std::sync::atomic::AtomicU64::new(0),
            forwarder: std::sync::OnceLock::new(),
            cluster_presence: Mutex::new(None),
            reactions: crate::reactions::Reactions::default(),
        }
    }

    /// Joins a cluster: from now on writes go where `forwarder` says.
    pub fn set_forwarder(&self, forwarder: Arc<dyn Forwarder>) {
        let _ = self.forwarder.set(forwarder);
    }

    /// The sessions' reactions (one like and one share per session per post).
    pub fn reactions(&self) -> &crate::reactions::Reactions {
        &self.reactions
    }

    /// The cluster-wide active users once the log has carried a count
    /// (`None` on a single node).
    pub fn cluster_presence(&self) -> Option<pulse_core::model::Presence> {
        *lock(&self.cluster_presence)
    }

    fn set_cluster_presence(&self, presence: pulse_core::model::Presence) {
        *lock(&self.cluster_presence) = Some(presence);
    }

    /// Where a write made now goes.
    pub fn write_path(&self) -> WritePath {
        self.forwarder
            .get()
            .map_or(WritePath::Here, |forwarder| forwarder.write_path())
    }

    /// Whether this node sequences writes itself (single node, or the
    /// cluster's leader): only then do timers and the simulator write.
    pub fn sequences_here(&self) -> bool {
        matches!(self.write_path(), WritePath::Here)
    }

    /// `Some` when the write must go to the leader (or cannot go anywhere).
    fn forwarded<T>(
        &self,
        request: impl FnOnce() -> Forwarded,
        now: TimestampMs,
    ) -> Option<Result<Pending<T>, IngestError>> {
        let forwarder = self.forwarder.get()?;
        match forwarder.write_path() {
            WritePath::Here => None,
            WritePath::Leader => Some(Ok(Pending::remote(forwarder.forward(request(), now)))),
            WritePath::Unavailable(reason) => {
                Some(Err(IngestError::Storage(StorageError::Unavailable(reason))))
            }
        }
    }

    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    pub fn storage(&self) -> Option<&Arc<Storage>> {
        self.storage.as_ref()
    }

    /// Refuses work up front when storage has failed, so nothing is applied
    /// in memory that could not be made durable.
    fn check_storage(&self) -> Result<(), IngestError> {
        match &self.storage {
            Some(storage) if !storage.is_healthy() => {
                Err(IngestError::Storage(StorageError::Unavailable(
                    "storage is not writable right now (see /readyz); retry later".into(),
                )))
            }
            // Refused before anything is applied: at saturation, work spent on
            // a write the full queue turns away (and its rollback) would come
            // out of the writer's share of the CPU. The queue can still fill
            // between here and `submit`, which then refuses and rolls back.
            Some(storage) if storage.queue_len() >= storage.max_queue() => Err(
                IngestError::Storage(StorageError::Unavailable("write queue full".into())),
            ),
            _ => Ok(()),
        }
    }

    /// Submits `batch` in preparation order; must be called under the state lock.
    fn submit(&self, batch: WriteBatch) -> Option<super::storage::Commit> {
        match &self.storage {
            Some(storage) => Some(storage.submit(batch)),
            None => {
                self.broker.publish(batch.events);
                None
            }
        }
    }

    /// Publishing happens under this lock, so in-memory views and hub
    /// positions always agree (a snapshot plus `since` is exact).
    ///
    /// A write that storage refused or failed was applied here already; the
    /// first access once nothing is waiting for the writer any more rolls
    /// the views (and the hub's offsets) back to what is committed, so no
    /// snapshot shows data that is not on disk.
    fn state(&self) -> MutexGuard<'_, LiveState> {
        use std::sync::atomic::Ordering;
        let mut state = lock(&self.state);
        if let Some(storage) = &self.storage {
            let dropped = storage.dropped_writes();
            // Batches are submitted under this lock, so an empty queue seen
            // here stays empty until the rebuild is done.
            if dropped != self.rolled_back_for.load(Ordering::Acquire) && storage.queue_len() == 0 {
                match storage.reload() {
                    Ok(restored) => {
                        *state = LiveState::empty(&self.limits);
                        self.apply_restored(&mut state, restored);
                        self.rolled_back_for.store(dropped, Ordering::Release);
                        tracing::warn!(
                            "a write failed: in-memory views rolled back to what is stored"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(%error, "rolling back after a failed write failed; will retry");
                    }
                }
            }
        }
        state
    }

    /// Validates and publishes a tick on `ticks` and `ticks:<SYMBOL>`;
    /// returns its position on `ticks`.
    pub async fn tick(&self, tick: Tick, now: TimestampMs) -> Result<Published, IngestError> {
        let mut published = self.ticks(vec![tick], now).await?;
        Ok(published.remove(0))
    }

    /// All-or-nothing batch of ticks, durable when this returns.
    pub async fn ticks(
        &self,
        ticks: Vec<Tick>,
        now: TimestampMs,
    ) -> Result<Vec<Published>, IngestError> {
        self.submit_ticks(ticks, now)?.durable().await
    }

    /// Applies a batch of ticks and queues it for disk without waiting.
    pub fn submit_ticks(
        &self,
        ticks: Vec<Tick>,
        now: TimestampMs,
    ) -> Result<Pending<Vec<Published>>, IngestError> {
        self.submit_ticks_answering(ticks, now, None)
    }

    /// [`Ingest::submit_ticks`]; `answer` names a forwarded request the
    /// commit answers.
    fn submit_ticks_answering(
        &self,
        ticks: Vec<Tick>,
        now: TimestampMs,
        answer: Option<&forward::AnswerTo>,
    ) -> Result<Pending<Vec<Published>>, IngestError> {
        validate_all(&ticks, |tick| self.admit_tick(tick, now))?;
        if answer.is_none() {
            if let Some(forwarded) = self.forwarded(|| Forwarded::Ticks(ticks.clone()), now) {
                return forwarded;
            }
        }
        self.check_storage()?;
        // Serialized before the state lock, which every producer shares.
        let jsons = ticks
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()
            .map_err(BrokerError::from)?;
        let (positions, commit) = {
            let mut state = self.state();
            if let Err((index, reason)) = state.market.check_batch(&ticks) {
                return Err(IngestError::Invalid {
                    index,
                    error: refusal(&ticks[index], reason, state.market.config()),
                });
            }
            let mut batch = WriteBatch::default();
            let mut positions = Vec::with_capacity(ticks.len());
            for (tick, json) in ticks.into_iter().zip(jsons) {
                positions.push(self.apply_tick(&mut state, &mut batch, tick, &json)?);
            }
            batch.replay.answers = answer.map(|to| to.answered(&positions));
            (positions, self.submit(batch))
        };
        Ok(Pending::local(positions, commit))
    }

    fn apply_tick(
        &self,
        state: &mut LiveState,
        batch: &mut WriteBatch,
        tick: Tick,
        json: &str,
    ) -> Result<Published, IngestError> {
        let broker = self.broker.as_ref();
        let routes = &mut state.symbol_entry(&tick.symbol).routes;
        let symbol = Arc::clone(
            routes
                .key
                .get_or_insert_with(|| tick.symbol.as_str().into()),
        );
        // `json` is the tick's, serialized once for both topics.
        let on_symbol = routes.ticks.prepare(
            broker,
            || Topic::SymbolTicks(tick.symbol.clone()),
            json,
            Some(Arc::clone(&symbol)),
            Some(tick.ts),
        );
        let on_all =
            state
                .all_ticks
                .prepare(broker, || Topic::Ticks, json, Some(symbol), Some(tick.ts));
        let published = on_all.position();
        let symbol_position = on_symbol.position();
        batch.events.push(on_all);
        batch.events.push(on_symbol);
        let outcome = state.record_tick(&tick, symbol_position);
        if !outcome.is_applied() {
            // `check_batch` accepted it, so this is a bug; say so loudly.
            tracing::error!(?outcome.status, symbol = %tick.symbol, "an admitted tick was ignored");
        }
        if !outcome.updates.is_empty() {
            let routes = &mut state.symbol_entry(&tick.symbol).routes;
            for update in outcome.updates {
                let data = candle_json(&update)?;
                batch.events.push(routes.candles.prepare(
                    broker,
                    || Topic::Candles(tick.symbol.clone()),
                    &data,
                    None,
                    None,
                ));
                batch.candles.push(update.candle);
            }
        }
        for interval in outcome.detached {
            batch.candle_merges.push(CandleMerge {
                interval,
                tick: tick.clone(),
            });
        }
        batch.ticks.push(tick);
        Ok(published)
    }

    /// Closes candles whose interval has ended by wall time (a quiet symbol's
    /// last candle would otherwise stay open) and publishes them.
    pub async fn close_due_candles(&self, now: TimestampMs) -> Result<usize, IngestError> {
        if !self.sequences_here() {
            return Ok(0);
        }
        self.check_storage()?;
        let (closed, commit) = {
            let mut state = self.state();
            let updates = state.market.close_due(now);
            if updates.is_empty() {
                return Ok(0);
            }
            let mut batch = WriteBatch::default();
            batch.replay.closed_due = Some(now);
            for update in &updates {
                let topic = Topic::Candles(update.candle.symbol.clone());
                batch
                    .events
                    .push(self.broker.prepare(&topic, update, None, None)?);
                batch.candles.push(update.candle.clone());
            }
            (updates.len(), self.submit(batch))
        };
        Pending::local(closed, commit).durable().await
    }

    /// All-or-nothing batch of posts: scores, stores and publishes each one;
    /// durable when this returns.
    pub async fn posts(
        &self,
        posts: Vec<NewPost>,
        now: TimestampMs,
    ) -> Result<Vec<Post>, IngestError> {
        self.submit_posts(posts, now)?.durable().await
    }

    /// Applies a batch of posts and queues it for disk without waiting.
    pub fn submit_posts(
        &self,
        posts: Vec<NewPost>,
        now: TimestampMs,
    ) -> Result<Pending<Vec<Post>>, IngestError> {
        self.submit_posts_answering(posts, now, None)
    }

    fn submit_posts_answering(
        &self,
        posts: Vec<NewPost>,
        now: TimestampMs,
        answer: Option<&forward::AnswerTo>,
    ) -> Result<Pending<Vec<Post>>, IngestError> {
        validate_all(&posts, |post| post.validate(now))?;
        if answer.is_none() {
            if let Some(forwarded) = self.forwarded(|| Forwarded::Posts(posts.clone()), now) {
                return forwarded;
            }
        }
        self.check_storage()?;
        let (created, commit) = {
            let mut state = self.state();
            let mut known: Vec<&str> = state.recent_ticks.keys().map(String::as_str).collect();
            if let Some(allowed) = &self.limits.allowed_symbols {
                known.extend(allowed.iter().map(String::as_str));
                known.sort_unstable();
                known.dedup();
            }
            let known: Vec<String> = known.into_iter().map(str::to_owned).collect();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            let max_symbols = self.limits.max_symbols_per_post;
            let mut batch = WriteBatch::default();
            let mut created = Vec::with_capacity(posts.len());
            for new in posts {
                let post = Post {
                    id: state.next_post_id,
                    sentiment: self.analyzer.analyze(&new.text),
                    // Only tracked symbols, so made-up cashtags cannot
                    // create sentiment windows.
                    symbols: mentioned_symbols(&new.text, &known)
                        .into_iter()
                        .filter(|symbol| known.binary_search(&symbol.as_str()).is_ok())
                        .take(max_symbols)
                        .collect(),
                    ts: new.ts.unwrap_or(now),
                    author: new.author.trim().to_owned(),
                    text: new.text,
                };
                state.next_post_id += 1;
                self.apply_post(&mut state, &mut batch, &post)?;
                created.push(post);
            }
            batch.posts.extend(created.iter().cloned());
            batch.replay.answers = answer.map(|to| to.answered(&created));
            (created, self.submit(batch))
        };
        Ok(Pending::local(created, commit))
    }

    fn apply_post(
        &self,
        state: &mut LiveState,
        batch: &mut WriteBatch,
        post: &Post,
    ) -> Result<(), IngestError> {
        let updates = state.record_post(post);
        let feed_post = FeedPost {
            post: post.clone(),
            engagement: Counts::default(),
        };
        batch.events.push(
            self.broker
                .prepare(&Topic::Posts, &feed_post, None, Some(post.ts))?,
        );

        for update in &updates {
            batch.events.push(self.broker.prepare(
                &Topic::Sentiment,
                update,
                None,
                Some(post.ts),
            )?);
        }
        Ok(())
    }

    /// All-or-nothing batch of engagement events, durable when this returns.
    pub async fn engagements(
        &self,
        events: Vec<Engagement>,
        now: TimestampMs,
    ) -> Result<Vec<EngagementUpdate>, IngestError> {
        self.submit_engagements(events, now)?.durable().await
    }

    /// Applies a batch of engagement events and queues it for disk without waiting.
    pub fn submit_engagements(
        &self,
        events: Vec<Engagement>,
        now: TimestampMs,
    ) -> Result<Pending<Vec<EngagementUpdate>>, IngestError> {
        self.submit_engagements_answering(events, now, None, None)
    }

    /// A dashboard reaction's engagement event, with the reaction change
    /// (so followers remember it too); durable when this returns.
    pub async fn react_locally(
        &self,
        event: Engagement,
        change: crate::reactions::ReactionChange,
        now: TimestampMs,
    ) -> Result<Vec<EngagementUpdate>, IngestError> {
        if !self.sequences_here() {
            return Err(IngestError::Storage(StorageError::Unavailable(
                "this node does not sequence writes; the reaction goes to the leader".into(),
            )));
        }
        self.submit_engagements_answering(vec![event], now, None, Some(change))?
            .durable()
            .await
    }

    fn submit_engagements_answering(
        &self,
        events: Vec<Engagement>,
        now: TimestampMs,
        answer: Option<&forward::AnswerTo>,
        reaction: Option<crate::reactions::ReactionChange>,
    ) -> Result<Pending<Vec<EngagementUpdate>>, IngestError> {
        validate_all(&events, |event| event.validate(now))?;
        if answer.is_none() && reaction.is_none() {
            if let Some(forwarded) = self.forwarded(|| Forwarded::Engagement(events.clone()), now) {
                return forwarded;
            }
        }
        self.check_storage()?;
        let (updates, commit) = {
            let mut state = self.state();
            for (index, event) in events.iter().enumerate() {
                if !state.engagement.is_known(event.post_id) {
                    return Err(IngestError::UnknownPost {
                        index,
                        post_id: event.post_id,
                    });
                }
            }
            let mut batch = WriteBatch::default();
            let mut updates = Vec::with_capacity(events.len());
            for (index, event) in events.into_iter().enumerate() {
                let update = state
                    .engagement
                    .apply(&event)
                    .map_err(|error| match error {
                        EngagementError::UnknownPost(post_id) => {
                            IngestError::UnknownPost { index, post_id }
                        }
                        EngagementError::TimestampOutOfRange(_) => IngestError::Invalid {
                            index,
                            error: ValidationError {
                                field: "ts",
                                message: "is out of range".into(),
                            },
                        },
                    })?;
                let published = EngagementEvent {
                    post_id: update.post_id,
                    kind: update.kind,
                    delta: update.applied_delta,
                    ts: event.ts,
                    totals: update.totals,
                };
                batch.events.push(self.broker.prepare(
                    &Topic::Engagement,
                    &published,
                    None,
                    Some(event.ts),
                )?);
                batch.engagement.push((event, update.totals));
                updates.push(update);
            }
            batch.replay.answers = answer.map(|to| match (&reaction, updates.first()) {
                (Some(change), Some(update)) => to.answered(&forward::Reacted {
                    totals: update.totals,
                    on: change.on,
                }),
                _ => to.answered(&updates),
            });
            batch.replay.reaction = reaction;
            (updates, self.submit(batch))
        };
        Ok(Pending::local(updates, commit))
    }

    /// Checks what a tick can be checked for without the engine's state:
    /// its values, its time against the clock and the allowlist.
    fn admit_tick(&self, tick: &Tick, now: TimestampMs) -> Result<(), ValidationError> {
        tick.validate(now)?;
        let skew = self.limits.max_future_skew_ms;
        if tick.ts > now.saturating_add(skew) {
            return Err(ValidationError {
                field: "ts",
                message: format!(
                    "lies {} ms in the future; ticks may be at most {skew} ms ahead of the server's clock",
                    tick.ts - now
                ),
            });
        }
        if let Some(allowed) = &self.limits.allowed_symbols {
            if !allowed.contains(&tick.symbol) {
                return Err(ValidationError {
                    field: "symbol",
                    message: format!(
                        "{} is not one of the symbols this server accepts",
                        tick.symbol
                    ),
                });
            }
        }
        Ok(())
    }

    /// Stops tracking symbols whose newest tick arrived before `idle_before`
    /// (wall time) and whose topics nobody subscribes to, freeing their
    /// memory, topics and slot. Allowlisted symbols stay. Returns the
    /// symbols dropped.
    pub fn forget_idle_symbols(&self, idle_before: TimestampMs) -> Vec<String> {
        if !self.sequences_here() {
            // Followers forget what the leader's log says it forgot.
            return Vec::new();
        }
        let mut state = self.state();
        let idle: Vec<String> = state
            .recent_ticks
            .iter()
            .filter(|(symbol, recent)| {
                recent.arrived < idle_before
                    && !self
                        .limits
                        .allowed_symbols
                        .as_ref()
                        .is_some_and(|allowed| allowed.contains(*symbol))
            })
            .map(|(symbol, _)| symbol.clone())
            .collect();
        let mut dropped = Vec::new();
        let mut retired_epochs = Vec::new();
        // Removes `topic` if unused; `false` when it stays with data.
        let mut remove = |topic: &Topic| {
            let position = self.broker.position(topic);
            if self.broker.remove_if_unused(topic) {
                retired_epochs.push(position.epoch);
                true
            } else {
                position.offset == 0
            }
        };
        for symbol in idle {
            // Both topics go, or the symbol stays (a subscriber keeps it).
            if !remove(&Topic::SymbolTicks(symbol.clone()))
                || !remove(&Topic::Candles(symbol.clone()))
            {
                continue;
            }
            state.forget(&symbol);
            dropped.push(symbol);
        }
        if !(dropped.is_empty() && retired_epochs.is_empty()) && self.forwarder.get().is_some() {
            // Followers replay it, the log forgets the removed topics'
            // offsets; nothing else is in the batch.
            let batch = WriteBatch {
                replay: super::storage::Replay {
                    forgotten: dropped.clone(),
                    retired_epochs,
                    ..Default::default()
                },
                ..WriteBatch::default()
            };
            drop(self.submit(batch));
        }
        dropped
    }
}

/// Why the market engine cannot use a tick, as an item error.
fn refusal(tick: &Tick, reason: IgnoreReason, market: &MarketConfig) -> ValidationError {
    let symbol = &tick.symbol;
    let (field, message) = match reason {
        IgnoreReason::Duplicate => (
            "ts",
            format!("repeats the last tick of {symbol} (same ts, price and volume)"),
        ),
        IgnoreReason::TooManySymbols => (
            "symbol",
            format!(
                "{symbol} is new and the server already tracks its limit of {} symbols",
                market.max_symbols
            ),
        ),
        IgnoreReason::InvalidValue => ("price", "is not a usable price or volume".to_owned()),
        IgnoreReason::TimestampOutOfRange => ("ts", "is out of range".to_owned()),
    };
    ValidationError { field, message }
}

/// A candle update's JSON, in a buffer big enough from the start (it is
/// made under the ingest lock, twice per tick).
fn candle_json(
    update: &pulse_core::protocol::payload::CandleUpdate,
) -> Result<String, IngestError> {
    let mut json = Vec::with_capacity(256);
    serde_json::to_writer(&mut json, update).map_err(BrokerError::from)?;
    // serde_json writes UTF-8 only.
    String::from_utf8(json).map_err(|error| {
        IngestError::Broker(BrokerError::Serialize(serde::ser::Error::custom(error)))
    })
}

/// Validates every item of a batch before any is applied, naming the first bad one.
fn validate_all<T>(
    items: &[T],
    validate: impl Fn(&T) -> Result<(), ValidationError>,
) -> Result<(), IngestError> {
    for (index, item) in items.iter().enumerate() {
        validate(item).map_err(|error| IngestError::Invalid { index, error })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
