//! The dashboard's live state: events decoded by topic, grouped per
//! animation frame ([`Routed`]) and applied to the panels' signals
//! ([`Panels`]), each panel its own signal.

use leptos::prelude::*;

use super::DashboardData;
use crate::engagement_panel::EngagementState;
use crate::feed::FeedState;
use crate::price_panel::PriceState;
use crate::sentiment_panel::SentimentState;
use crate::watchlist::Watchlist;
use pulse_core::model::{Presence, Tick};
use pulse_core::protocol::{CandleUpdate, EngagementEvent, EventFrame, FeedPost, SentimentUpdate};

/// A live event, decoded for its panel (or a stored one, played back).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// The panels as the snapshot shows them (first paint).
    pub(super) fn new(data: DashboardData) -> Self {
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
