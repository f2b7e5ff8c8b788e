//! Engagement: likes / shares / comments per 10 s, and the top posts.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::charts::{engagement_chart_svg, ENGAGEMENT_CHART_SIZE};
use crate::feed::FeedState;
use crate::panel::PanelHead;
use pulse_core::analytics::engagement::TEN_SECONDS_MS;
use pulse_core::model::{Counts, TimestampMs};
use pulse_core::protocol::{EngagementEvent, RateBucket};
use pulse_core::time::bucket_start;

/// The server's 10 s engagement buckets, so live counts line up with its rates.
pub const BUCKET_MS: TimestampMs = TEN_SECONDS_MS;
/// Buckets shown: ten minutes.
pub const BUCKETS: usize = 60;
/// Top posts tracked and shown.
pub const TOP_TRACKED: usize = 20;
pub const TOP_SHOWN: usize = 5;

/// A post ranked by its engagement score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopEntry {
    pub post_id: u64,
    pub author: String,
    pub text: String,
    /// Engagement since the window began (server: last 15 minutes; then live).
    pub window: Counts,
    pub totals: Counts,
}

impl TopEntry {
    pub fn score(&self) -> i64 {
        self.window.score()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngagementState {
    /// Oldest first, contiguous, `BUCKETS` long once started.
    pub buckets: Vec<RateBucket>,
    /// Best first.
    pub top: Vec<TopEntry>,
}

impl EngagementState {
    pub fn new(mut buckets: Vec<RateBucket>, top: Vec<TopEntry>) -> Self {
        let excess = buckets.len().saturating_sub(BUCKETS);
        buckets.drain(..excess);
        let mut state = Self { buckets, top };
        state.rank();
        state
    }

    /// Scrolls the window so its newest bucket contains `now`.
    pub fn advance(&mut self, now: TimestampMs) {
        let Some(target) = bucket_start(now, BUCKET_MS) else {
            return;
        };
        let mut next = match self.buckets.last() {
            Some(last) if last.start >= target => return,
            Some(last) => last.start + BUCKET_MS,
            None => target - (BUCKETS as i64 - 1) * BUCKET_MS,
        };
        // A long gap needs at most BUCKETS empty buckets.
        next = next.max(target - (BUCKETS as i64 - 1) * BUCKET_MS);
        while next <= target {
            self.buckets.push(RateBucket::new(next, Counts::default()));
            next += BUCKET_MS;
        }
        let excess = self.buckets.len().saturating_sub(BUCKETS);
        self.buckets.drain(..excess);
    }

    pub fn apply(&mut self, event: &EngagementEvent, feed: &FeedState) {
        self.advance(event.ts);
        if let Some(start) = bucket_start(event.ts, BUCKET_MS) {
            if let Ok(index) = self.buckets.binary_search_by_key(&start, |b| b.start) {
                self.buckets[index].add(event.kind, event.delta);
            }
        }
        let entry = match self.top.iter_mut().position(|t| t.post_id == event.post_id) {
            Some(index) => &mut self.top[index],
            None => {
                let (author, text) = feed
                    .get(event.post_id)
                    .map(|p| (p.post.author.clone(), p.post.text.clone()))
                    .unwrap_or_else(|| (String::new(), format!("Post #{}", event.post_id)));
                self.top.push(TopEntry {
                    post_id: event.post_id,
                    author,
                    text,
                    window: Counts::default(),
                    totals: Counts::default(),
                });
                self.top.last_mut().expect("just pushed")
            }
        };
        entry.window.add(event.kind, event.delta);
        entry.totals = event.totals;
        self.rank();
    }

    fn rank(&mut self) {
        self.top
            .sort_by(|a, b| b.score().cmp(&a.score()).then(a.post_id.cmp(&b.post_id)));
        self.top.truncate(TOP_TRACKED);
    }
}

#[component]
pub fn EngagementPanel(engagement: RwSignal<EngagementState>) -> impl IntoView {
    let svg = Memo::new(move |_| {
        engagement.with(|e| {
            engagement_chart_svg(
                "Likes, comments and shares per 10 seconds",
                &e.buckets,
                BUCKET_MS,
                ENGAGEMENT_CHART_SIZE,
            )
        })
    });
    let totals = move || {
        engagement.with(|e| {
            e.buckets.iter().fold((0, 0, 0), |(l, s, c), b| {
                (l + b.likes, s + b.shares, c + b.comments)
            })
        })
    };
    let top = Memo::new(move |_| {
        engagement.with(|e| e.top.iter().take(TOP_SHOWN).cloned().collect::<Vec<_>>())
    });
    view! {
        <section class="panel engagement-panel" aria-labelledby="engagement-heading" data-testid="engagement">
            <PanelHead id="engagement-heading" title="Engagement" hint="Per 10 s, last 10 min"/>
            <div class="legend">
                <span class="key key-likes">{move || format!("{} likes", totals().0)}</span>
                <span class="key key-comments">{move || format!("{} comments", totals().2)}</span>
                <span class="key key-shares">{move || format!("{} shares", totals().1)}</span>
            </div>
            <div class="chart" data-testid="engagement-chart" inner_html=move || svg.get()></div>
            <h3 class="subhead">"Top posts"</h3>
            <ol class="top-posts" data-testid="top-posts">
                {move || {
                    let top = top.get();
                    if top.is_empty() {
                        view! { <li class="empty">"No reactions yet."</li> }.into_any()
                    } else {
                        top.into_iter()
                            .map(|t| {
                                let score = t.score();
                                view! {
                                    <li class="top-post">
                                        <span class="top-score" title="Score: likes + 2 × comments + 3 × shares">{score}</span>
                                        <span class="top-body">
                                            <span class="author">{t.author}</span>
                                            " "
                                            <span class="top-text">{t.text}</span>
                                        </span>
                                        <span class="top-counts">
                                            {format!("{} likes · {} shares · {} comments", t.totals.likes, t.totals.shares, t.totals.comments)}
                                        </span>
                                    </li>
                                }
                            })
                            .collect_view()
                            .into_any()
                    }
                }}
            </ol>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::model::EngagementKind;

    fn event(post_id: u64, kind: EngagementKind, ts: TimestampMs) -> EngagementEvent {
        EngagementEvent {
            post_id,
            kind,
            delta: 1,
            ts,
            totals: Counts::default(),
        }
    }

    #[test]
    fn window_scrolls_and_stays_fixed_size() {
        let mut state = EngagementState::default();
        state.advance(1_000_000);
        assert_eq!(state.buckets.len(), BUCKETS);
        assert_eq!(state.buckets.last().unwrap().start, 1_000_000);
        state.advance(1_000_000 + 25_000);
        assert_eq!(state.buckets.len(), BUCKETS);
        assert_eq!(state.buckets.last().unwrap().start, 1_020_000);
        state.advance(1_000_000 + 10 * 3_600_000);
        assert_eq!(state.buckets.len(), BUCKETS);
        let starts: Vec<i64> = state.buckets.iter().map(|b| b.start).collect();
        assert!(starts.windows(2).all(|w| w[1] - w[0] == BUCKET_MS));
    }

    #[test]
    fn events_count_in_their_bucket_and_rank_top_posts() {
        let mut state = EngagementState::default();
        let feed = FeedState::default();
        state.apply(&event(1, EngagementKind::Like, 100_000), &feed);
        state.apply(&event(2, EngagementKind::Share, 105_000), &feed);
        state.apply(&event(1, EngagementKind::Comment, 111_000), &feed);
        let last = state.buckets.last().unwrap();
        assert_eq!((last.start, last.comments), (110_000, 1));
        let previous = &state.buckets[state.buckets.len() - 2];
        assert_eq!((previous.likes, previous.shares), (1, 1));
        // Post 1: 1 + 2 = 3; post 2: 3; tie goes to the lower id.
        assert_eq!(
            state.top.iter().map(|t| t.post_id).collect::<Vec<_>>(),
            [1, 2]
        );
        state.apply(&event(2, EngagementKind::Like, 112_000), &feed);
        assert_eq!(state.top[0].post_id, 2);
        assert_eq!(state.top[0].text, "Post #2");
    }
}
