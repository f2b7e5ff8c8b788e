//! Time travel: the dashboard put on a past moment (`?at=` in the URL) and
//! played forward from storage at 1×, 10×, 60× or 600×.
//!
//! What is played are the stored events after that moment, in the shapes
//! live events have ([`LiveUpdate`]), fetched a span at a time
//! ([`load_played`]) and applied through the same per-frame path as live
//! ones, so a played dashboard looks exactly like a live one did. Candles
//! are played when they ended (their close was known then), posts and
//! engagement at their own times. The pure parts (the clock, the buffer)
//! are here; the browser loop that drives them is `dashboard::player`.

use std::collections::VecDeque;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chart_view::ChartView;
use crate::dashboard::LiveUpdate;
use crate::format::date_time;
use crate::rpc_error::RpcError;
use pulse_core::model::TimestampMs;

/// The longest span of stored time one [`load_played`] call covers.
pub const MAX_PLAY_SPAN_MS: TimestampMs = 60 * 60 * 1000;
/// Events one call answers at most; a busier span ends early (see [`PlayedChunk::until`]).
pub const MAX_PLAYED: usize = 5_000;
/// How far ahead of the playing clock the buffer is filled, in stored time
/// per unit of speed (at 600× that is 600 × 2 s = 20 min of data).
const LOOKAHEAD_REAL_MS: f64 = 2_000.0;

/// The speeds the player offers.
pub const SPEEDS: [u32; 4] = [1, 10, 60, 600];

/// Stored events after `from` up to `until`, in time order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayedChunk {
    pub events: Vec<(TimestampMs, LiveUpdate)>,
    /// Every event in `(from, until]` is in `events`; `until` is the `to`
    /// asked for unless the span held more than [`MAX_PLAYED`] events.
    pub until: TimestampMs,
}

/// Events of `(from, to]` for a dashboard showing `symbol` as `view` does
/// (its candles at the view's stored interval). `to − from` may be at most
/// [`MAX_PLAY_SPAN_MS`].
#[server(prefix = "/rpc", endpoint = "played", client = crate::rpc_client::RpcClient)]
pub async fn load_played(
    symbol: String,
    view: ChartView,
    from: TimestampMs,
    to: TimestampMs,
) -> Result<PlayedChunk, RpcError> {
    if to <= from || to.saturating_sub(from) > MAX_PLAY_SPAN_MS {
        return Err(RpcError::invalid(
            Some("to"),
            format!(
                "to must be after from and at most {} minutes later",
                MAX_PLAY_SPAN_MS / 60_000
            ),
        ));
    }
    crate::backend::backend()?
        .played(symbol, view, from, to)
        .await
}

/// The player's clock: where in the past the dashboard is, and how fast it moves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Player {
    /// The moment the panels show.
    pub at: TimestampMs,
    pub playing: bool,
    pub speed: u32,
}

impl Player {
    pub fn new(at: TimestampMs) -> Self {
        Self {
            at,
            playing: false,
            speed: 60,
        }
    }

    /// Moves the clock on by `real_ms` of wall time, but never past `now`
    /// (then it stops: the rest is live).
    pub fn advance(&mut self, real_ms: f64, now: TimestampMs) {
        if !self.playing || !real_ms.is_finite() || real_ms <= 0.0 {
            return;
        }
        let step = (real_ms * f64::from(self.speed)).min(i64::MAX as f64 / 4.0) as i64;
        self.at = self.at.saturating_add(step).min(now);
        if self.at >= now {
            self.playing = false;
        }
    }
}

/// Played events fetched and not yet shown, and how far they reach.
#[derive(Debug)]
pub struct PlayBuffer {
    events: VecDeque<(TimestampMs, LiveUpdate)>,
    /// Every stored event up to here is fetched.
    loaded_until: TimestampMs,
    fetching: bool,
}

impl PlayBuffer {
    /// A buffer for a dashboard whose snapshot shows the state at `at`.
    pub fn new(at: TimestampMs) -> Self {
        Self {
            events: VecDeque::new(),
            loaded_until: at,
            fetching: false,
        }
    }

    /// The span to fetch next, if the buffer reaches less than the
    /// lookahead past `player.at` and no fetch is under way.
    pub fn wanted(
        &mut self,
        player: &Player,
        now: TimestampMs,
    ) -> Option<(TimestampMs, TimestampMs)> {
        let ahead = (LOOKAHEAD_REAL_MS * f64::from(player.speed)) as i64;
        let horizon = player.at.saturating_add(ahead).min(now);
        if self.fetching || self.loaded_until >= horizon {
            return None;
        }
        self.fetching = true;
        let to = horizon
            .max(self.loaded_until.saturating_add(ahead))
            .min(self.loaded_until.saturating_add(MAX_PLAY_SPAN_MS))
            .min(now);
        (to > self.loaded_until)
            .then_some((self.loaded_until, to))
            .or_else(|| {
                self.fetching = false;
                None
            })
    }

    /// A fetched chunk (for the span [`PlayBuffer::wanted`] gave).
    pub fn fill(&mut self, chunk: PlayedChunk) {
        self.fetching = false;
        self.events.extend(chunk.events);
        self.loaded_until = self.loaded_until.max(chunk.until);
    }

    /// A fetch failed; the span is asked for again later.
    pub fn failed(&mut self) {
        self.fetching = false;
    }

    /// The events due by `at`, in order.
    pub fn due(&mut self, at: TimestampMs) -> Vec<LiveUpdate> {
        let count = self.events.iter().take_while(|(ts, _)| *ts <= at).count();
        self.events
            .drain(..count)
            .map(|(_, update)| update)
            .collect()
    }
}

/// The time-travel controls: in a live view a "travel to" form; in a past
/// one the clock, play/pause, the speeds and the way back to live. Switching
/// between live and the past loads the page anew (a plain link or form),
/// so nothing of one mode lingers in the other.
#[component]
pub fn TimeTravelBar(
    view: Signal<ChartView>,
    symbol: Signal<String>,
    player: RwSignal<Option<Player>>,
) -> impl IntoView {
    let live_href = move || {
        let live = ChartView {
            at: None,
            ..view.get()
        };
        format!("/{}", live.query(&symbol.get()))
    };
    let speed_button = move |speed: u32| {
        let pressed = move || player.with(|p| p.is_some_and(|p| p.speed == speed));
        view! {
            <button type="button" class="seg" class:active=pressed aria-pressed=move || pressed().to_string()
                data-testid=format!("speed-{speed}")
                on:click=move |_| player.update(|p| if let Some(p) = p { p.speed = speed })>
                {format!("{speed}×")}
            </button>
        }
    };
    let traveling = Memo::new(move |_| player.with(|p| p.is_some()));
    let clock = Memo::new(move |_| player.with(|p| p.map(|p| p.at / 1000 * 1000)));
    let playing = Memo::new(move |_| player.with(|p| p.is_some_and(|p| p.playing)));
    view! {
        <div class="travel" data-testid="time-travel">
            {move || if traveling.get() {
                view! {
                    <span class="travel-clock">
                        "Viewing "
                        <time data-testid="travel-clock" datetime=move || clock.get().unwrap_or_default().to_string()>
                            {move || clock.get().map(date_time).unwrap_or_default()}
                        </time>
                        " UTC"
                    </span>
                    <button type="button" class="play" data-testid="play"
                        on:click=move |_| player.update(|p| if let Some(p) = p { p.playing = !p.playing })>
                        {move || if playing.get() { "Pause" } else { "Play" }}
                    </button>
                    <div class="segmented" role="group" aria-label="Playback speed">
                        {SPEEDS.map(speed_button).collect_view()}
                    </div>
                    <a href=live_href rel="external" class="back-to-live" data-testid="back-to-live">"Back to live"</a>
                }.into_any()
            } else {
                view! {
                    <form class="travel-form" method="get" action="/">
                        <input type="hidden" name="symbol" value=move || symbol.get()/>
                        <input type="hidden" name="interval" value=move || view.get().interval.as_str()/>
                        <input type="hidden" name="range" value=move || view.get().range.param()/>
                        <label>
                            "Travel to "
                            <input type="datetime-local" name="at" step="1" required data-testid="travel-at"/>
                            " UTC"
                        </label>
                        <button type="submit" data-testid="travel-go">"Go"</button>
                    </form>
                }.into_any()
            }}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::model::Tick;

    fn tick(ts: TimestampMs) -> (TimestampMs, LiveUpdate) {
        (
            ts,
            LiveUpdate::Tick(Tick {
                symbol: "A".into(),
                price: 1.0,
                volume: 1.0,
                ts,
            }),
        )
    }

    #[test]
    fn the_clock_moves_at_its_speed_only_while_playing_and_stops_at_now() {
        let mut player = Player::new(1_000);
        player.advance(100.0, 1_000_000);
        assert_eq!(player.at, 1_000, "paused");
        player.playing = true;
        player.advance(100.0, 1_000_000);
        assert_eq!(player.at, 7_000, "60× by default");
        player.speed = 600;
        player.advance(f64::NAN, 1_000_000);
        player.advance(-5.0, 1_000_000);
        assert_eq!(player.at, 7_000);
        player.advance(10_000.0, 1_000_000);
        assert_eq!(
            (player.at, player.playing),
            (1_000_000, false),
            "caught up with live"
        );
    }

    #[test]
    fn the_buffer_fetches_ahead_once_at_a_time_and_hands_out_due_events_in_order() {
        let now = 100_000_000;
        let mut player = Player::new(1_000_000);
        let mut buffer = PlayBuffer::new(player.at);
        let (from, to) = buffer.wanted(&player, now).expect("nothing loaded yet");
        assert_eq!((from, to), (1_000_000, 1_000_000 + 120_000));
        assert_eq!(buffer.wanted(&player, now), None, "one fetch at a time");
        buffer.fill(PlayedChunk {
            events: vec![tick(1_000_500), tick(1_001_000), tick(1_090_000)],
            until: 1_100_000, // the span was cut short
        });
        assert_eq!(buffer.due(1_000_999).len(), 1);
        assert_eq!(buffer.due(1_001_000).len(), 1);
        assert!(buffer.due(1_050_000).is_empty());
        // The cut-short span goes on from where it stopped.
        let (from, to) = buffer.wanted(&player, now).expect("short of the lookahead");
        assert_eq!((from, to), (1_100_000, 1_220_000));
        buffer.failed();
        assert!(
            buffer.wanted(&player, now).is_some(),
            "a failed span is asked again"
        );
        buffer.fill(PlayedChunk {
            events: Vec::new(),
            until: to,
        });
        assert_eq!(buffer.wanted(&player, now), None, "far enough ahead");
        player.at = 1_150_000;
        assert_eq!(buffer.wanted(&player, now).map(|w| w.0), Some(1_220_000));
        // Never past now.
        let mut late = PlayBuffer::new(now - 10);
        assert_eq!(
            late.wanted(&Player::new(now - 10), now),
            Some((now - 10, now))
        );
        let mut done = PlayBuffer::new(now);
        assert_eq!(done.wanted(&Player::new(now), now), None);
    }
}
