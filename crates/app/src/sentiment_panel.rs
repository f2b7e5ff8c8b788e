//! Sentiment: rolling mean compound over time (overall and the selected
//! symbol) and the positive / neutral / negative distribution.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::charts::{sentiment_chart_svg, SENTIMENT_CHART_SIZE};
use crate::panel::PanelHead;
use pulse_core::analytics::sentiment_window::{SentimentWindow, SENTIMENT_WINDOW};
use pulse_core::model::{Post, SentimentLabel, TimestampMs};
use pulse_core::protocol::{SentimentStats, SentimentUpdate};

/// Points kept per series.
pub const SENTIMENT_POINTS: usize = 120;
/// Posts in the rolling window: the server's window size.
pub const ROLLING_POSTS: usize = SENTIMENT_WINDOW;

/// A rolling mean over time with the current aggregate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SentimentSeries {
    pub points: Vec<(TimestampMs, f64)>,
    pub stats: SentimentStats,
}

impl SentimentSeries {
    pub fn push(&mut self, ts: TimestampMs, stats: SentimentStats) {
        match self.points.last_mut() {
            Some(last) if last.0 == ts => last.1 = stats.mean_compound,
            Some(last) if last.0 > ts => return,
            _ => self.points.push((ts, stats.mean_compound)),
        }
        if self.points.len() > SENTIMENT_POINTS {
            let excess = self.points.len() - SENTIMENT_POINTS;
            self.points.drain(..excess);
        }
        self.stats = stats;
    }
}

/// The selected symbol's series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolSentiment {
    pub symbol: String,
    pub series: SentimentSeries,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SentimentState {
    pub overall: SentimentSeries,
    pub symbol: SymbolSentiment,
}

impl SentimentState {
    pub fn apply(&mut self, update: &SentimentUpdate) {
        if update.scope == "overall" {
            self.overall.push(update.ts, update.stats);
        } else if update.scope == self.symbol.symbol {
            self.symbol.series.push(update.ts, update.stats);
        }
    }
}

/// Replays posts (oldest first) through a rolling window: the mean after each post.
pub fn series_from_posts<'a>(posts: impl IntoIterator<Item = &'a Post>) -> SentimentSeries {
    let mut window = SentimentWindow::new(ROLLING_POSTS);
    let mut series = SentimentSeries::default();
    for post in posts {
        window.push(post.ts, post.sentiment.compound, post.sentiment.label);
        series.push(post.ts, window.stats());
    }
    series
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

#[component]
pub fn SentimentPanel(sentiment: RwSignal<SentimentState>) -> impl IntoView {
    let svg = Memo::new(move |_| {
        sentiment.with(|s| {
            let title = format!("Rolling sentiment, overall and {}", s.symbol.symbol);
            sentiment_chart_svg(
                &title,
                &s.overall.points,
                Some((&s.symbol.symbol, &s.symbol.series.points)),
                SENTIMENT_CHART_SIZE,
            )
        })
    });
    let overall = Signal::derive(move || sentiment.with(|s| s.overall.stats));
    let symbol_stats = Signal::derive(move || sentiment.with(|s| s.symbol.series.stats));
    let symbol = Signal::derive(move || sentiment.with(|s| s.symbol.symbol.clone()));
    view! {
        <section class="panel sentiment-panel" aria-labelledby="sentiment-heading" data-testid="sentiment">
            <PanelHead
                id="sentiment-heading"
                title="Sentiment"
                hint=format!("Rolling mean of the last {ROLLING_POSTS} posts")
            />
            <div class="legend" aria-hidden="true">
                <span class="key key-overall">"Overall"</span>
                <span class="key key-symbol">{move || symbol.get()}</span>
            </div>
            <div class="chart" data-testid="sentiment-chart" inner_html=move || svg.get()></div>
            <Distribution name=Signal::derive(|| "Overall".to_owned()) stats=overall/>
            <Distribution name=symbol stats=symbol_stats/>
        </section>
    }
    .into_any()
}

#[component]
fn Distribution(name: Signal<String>, stats: Signal<SentimentStats>) -> impl IntoView {
    let mean = move || {
        stats.with(|s| {
            let label = SentimentLabel::from_compound(s.mean_compound).as_str();
            (format!("{:+.2}", s.mean_compound), label)
        })
    };
    let share =
        move |part: fn(&SentimentStats) -> u64| move || stats.with(|s| percent(part(s), s.posts));
    let positive = share(|s| s.positive);
    let neutral = share(|s| s.neutral);
    let negative = share(|s| s.negative);
    view! {
        <div class="distribution">
            <div class="dist-head">
                <span class="dist-name">{move || name.get()}</span>
                <span class=move || format!("badge badge-{}", mean().1)>{move || mean().1}</span>
                <span class="dist-mean" title="Mean compound score">{move || mean().0}</span>
                <span class="dist-posts">{move || stats.with(|s| format!("{} posts", s.posts))}</span>
            </div>
            <div
                class="dist-bar"
                role="img"
                aria-label=move || {
                    stats.with(|s| {
                        format!(
                            "{}: {} positive, {} neutral, {} negative",
                            name.get(),
                            s.positive,
                            s.neutral,
                            s.negative
                        )
                    })
                }
            >
                <span class="seg-positive" style:width=move || format!("{:.1}%", positive())></span>
                <span class="seg-neutral" style:width=move || format!("{:.1}%", neutral())></span>
                <span class="seg-negative" style:width=move || format!("{:.1}%", negative())></span>
            </div>
            <div class="dist-legend" aria-hidden="true">
                <span class="pos">{move || format!("{:.0}% positive", positive())}</span>
                <span class="neu">{move || format!("{:.0}% neutral", neutral())}</span>
                <span class="neg">{move || format!("{:.0}% negative", negative())}</span>
            </div>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::model::Sentiment;

    fn stats(mean: f64) -> SentimentStats {
        SentimentStats {
            posts: 1,
            mean_compound: mean,
            ..SentimentStats::default()
        }
    }

    #[test]
    fn updates_go_to_their_scope_and_the_window_is_capped() {
        let mut state = SentimentState {
            symbol: SymbolSentiment {
                symbol: "AAPL".into(),
                ..SymbolSentiment::default()
            },
            ..SentimentState::default()
        };
        for ts in 0..(SENTIMENT_POINTS as i64 + 10) {
            state.apply(&SentimentUpdate {
                scope: "overall".into(),
                ts,
                stats: stats(0.5),
            });
        }
        state.apply(&SentimentUpdate {
            scope: "AAPL".into(),
            ts: 5,
            stats: stats(-0.4),
        });
        state.apply(&SentimentUpdate {
            scope: "TSLA".into(),
            ts: 6,
            stats: stats(0.9),
        });
        assert_eq!(state.overall.points.len(), SENTIMENT_POINTS);
        assert_eq!(state.overall.points[0].0, 10);
        assert_eq!(state.symbol.series.points, [(5, -0.4)]);
        assert_eq!(state.symbol.series.stats.mean_compound, -0.4);
    }

    #[test]
    fn series_from_posts_is_a_running_mean() {
        let post = |ts, compound: f64| Post {
            id: ts as u64,
            author: "a".into(),
            text: "t".into(),
            ts,
            sentiment: Sentiment {
                compound,
                label: SentimentLabel::from_compound(compound),
                ..Sentiment::NEUTRAL
            },
            symbols: vec![],
        };
        let posts = [post(1, 1.0), post(2, 0.0), post(3, -0.4)];
        let series = series_from_posts(&posts);
        let means: Vec<f64> = series.points.iter().map(|p| p.1).collect();
        assert_eq!(means.len(), 3);
        assert!((means[0] - 1.0).abs() < 1e-9 && (means[1] - 0.5).abs() < 1e-9);
        assert!((means[2] - 0.2).abs() < 1e-9);
        assert_eq!(series.stats.posts, 3);
    }
}
