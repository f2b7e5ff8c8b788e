//! Start and recovery: the views and the broker's topics rebuilt from what
//! storage kept.

use pulse_core::analytics::sentiment_window::SentimentWindow;
use pulse_core::protocol::Topic;

use super::views::LiveState;
use super::{Ingest, RECENT_POSTS, SENTIMENT_WINDOW};
use crate::clock::now_ms;
use crate::storage::Restored;

impl Ingest {
    /// Rebuilds the in-memory views and the hub's topics from what storage
    /// kept; call once at start, before serving.
    pub fn restore(&self, restored: Restored) {
        let mut state = self.state();
        self.apply_restored(&mut state, restored);
    }

    /// Fills `state` (empty) and the hub's topics from what storage holds.
    pub(super) fn apply_restored(&self, state: &mut LiveState, restored: Restored) {
        for topic in restored.topics {
            self.broker
                .restore(&topic.topic, &topic.epoch, topic.last_offset, topic.history);
        }
        state.market.seed_candles(restored.candles);
        for tick in restored.ticks {
            let entry = state.recent_ticks.entry(tick.symbol.clone()).or_default();
            entry.ticks.push_back(tick);
        }
        let symbols: Vec<String> = state.recent_ticks.keys().cloned().collect();
        let restored_at = now_ms();
        for symbol in symbols {
            let position = self.broker.position(&Topic::SymbolTicks(symbol.clone()));
            if let Some(entry) = state.recent_ticks.get_mut(&symbol) {
                entry.position = Some(position.into());
                entry.arrived = restored_at;
            }
        }
        let feed_from = restored.posts.len().saturating_sub(RECENT_POSTS);
        for (index, (post, totals)) in restored.posts.into_iter().enumerate() {
            state.engagement.register_post_with_totals(post.id, totals);
            if index >= feed_from {
                let s = post.sentiment;
                state.overall_sentiment.push(post.ts, s.compound, s.label);
                for symbol in &post.symbols {
                    state
                        .symbol_sentiment
                        .entry(symbol.clone())
                        .or_insert_with(|| SentimentWindow::new(SENTIMENT_WINDOW))
                        .push(post.ts, s.compound, s.label);
                }
                state.posts.push_back(post);
            }
        }
        state.next_post_id = state.next_post_id.max(restored.next_post_id);
    }
}
