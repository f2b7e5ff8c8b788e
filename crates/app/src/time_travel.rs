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
use crate::live::Backoff;
use crate::rpc_error::RpcError;
use pulse_core::model::TimestampMs;

/// The longest span of stored time one [`load_played`] call covers.
pub const MAX_PLAY_SPAN_MS: TimestampMs = 60 * 60 * 1000;
/// Events one call answers at most; a busier span ends early (see
/// [`PlayedChunk::until`]), before the first instant that does not fit
/// (unless that is the span's first instant: it is then answered whole).
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
    /// The end of the span being fetched, while a fetch is under way.
    asked_to: Option<TimestampMs>,
    /// After a failed fetch, the next one waits until then (wall time).
    retry_at: TimestampMs,
    backoff: Backoff,
}

/// Events one answer may add to the buffer: what the server sends at most
/// ([`MAX_PLAYED`], more only at one instant), with room to spare.
const MAX_CHUNK_EVENTS: usize = 8 * MAX_PLAYED;

impl PlayBuffer {
    /// A buffer for a dashboard whose snapshot shows the state at `at`.
    pub fn new(at: TimestampMs) -> Self {
        Self {
            events: VecDeque::new(),
            loaded_until: at,
            asked_to: None,
            retry_at: TimestampMs::MIN,
            backoff: Backoff::default(),
        }
    }

    /// The span to fetch next, if the buffer reaches less than the
    /// lookahead past `player.at`, no fetch is under way and no failure is
    /// being waited out.
    pub fn wanted(
        &mut self,
        player: &Player,
        now: TimestampMs,
    ) -> Option<(TimestampMs, TimestampMs)> {
        let ahead = (LOOKAHEAD_REAL_MS * f64::from(player.speed)) as i64;
        let horizon = player.at.saturating_add(ahead).min(now);
        if self.asked_to.is_some() || now < self.retry_at || self.loaded_until >= horizon {
            return None;
        }
        let to = horizon
            .max(self.loaded_until.saturating_add(ahead))
            .min(self.loaded_until.saturating_add(MAX_PLAY_SPAN_MS))
            .min(now);
        if to <= self.loaded_until {
            return None;
        }
        self.asked_to = Some(to);
        Some((self.loaded_until, to))
    }

    /// A fetched chunk (for the span [`PlayBuffer::wanted`] gave). Only what
    /// lies in that span is taken, in time order, and at most
    /// [`MAX_CHUNK_EVENTS`] of it (the rest is asked for again); an answer
    /// that covers none of the span counts as a failure, so a server that
    /// keeps answering so is not asked again ten times a second.
    pub fn fill(&mut self, chunk: PlayedChunk, now: TimestampMs, random: f64) {
        let Some(asked_to) = self.asked_to.take() else {
            return;
        };
        let from = self.loaded_until;
        let mut until = chunk.until.min(asked_to);
        if until <= from {
            self.wait_after_failure(now, random);
            return;
        }
        let mut events: Vec<(TimestampMs, LiveUpdate)> = chunk
            .events
            .into_iter()
            .filter(|(ts, _)| *ts > from && *ts <= until)
            .collect();
        // Stable: events of one moment keep the order they came in.
        events.sort_by_key(|(ts, _)| *ts);
        if let Some(&(cut, _)) = events.get(MAX_CHUNK_EVENTS) {
            // Everything of the first moment left out is asked for again.
            events.retain(|(ts, _)| *ts < cut);
            until = cut - 1;
            if until <= from {
                self.wait_after_failure(now, random);
                return;
            }
        }
        self.backoff.reset();
        self.events.extend(events);
        self.loaded_until = until;
    }

    /// A fetch failed; the span is asked for again after a backoff delay
    /// (`random` uniform in [0, 1) spreads the retries of many pages).
    pub fn failed(&mut self, now: TimestampMs, random: f64) {
        self.asked_to = None;
        self.wait_after_failure(now, random);
    }

    fn wait_after_failure(&mut self, now: TimestampMs, random: f64) {
        let delay = self.backoff.next_delay(random).as_millis() as i64;
        self.retry_at = now.saturating_add(delay);
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
    // Effects run only in the browser: the controls work from here on.
    let ready = RwSignal::new(false);
    Effect::new(move |_| ready.set(true));
    let clock = Memo::new(move |_| player.with(|p| p.map(|p| p.at / 1000 * 1000)));
    let playing = Memo::new(move |_| player.with(|p| p.is_some_and(|p| p.playing)));
    view! {
        <div class="travel" data-testid="time-travel" data-ready=move || ready.get().to_string()>
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
        buffer.fill(
            PlayedChunk {
                events: vec![tick(1_000_500), tick(1_001_000), tick(1_090_000)],
                until: 1_100_000, // the span was cut short
            },
            now,
            0.0,
        );
        assert_eq!(buffer.due(1_000_999).len(), 1);
        assert_eq!(buffer.due(1_001_000).len(), 1);
        assert!(buffer.due(1_050_000).is_empty());
        // The cut-short span goes on from where it stopped.
        let (from, to) = buffer.wanted(&player, now).expect("short of the lookahead");
        assert_eq!((from, to), (1_100_000, 1_220_000));
        buffer.fill(
            PlayedChunk {
                events: Vec::new(),
                until: to,
            },
            now,
            0.0,
        );
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

    #[test]
    fn a_failed_fetch_is_asked_again_after_a_growing_delay_not_every_step() {
        let mut now = 100_000_000;
        let player = Player::new(1_000_000);
        let mut buffer = PlayBuffer::new(player.at);
        let span = buffer.wanted(&player, now).expect("asked");
        let mut delays = Vec::new();
        for _ in 0..4 {
            buffer.failed(now, 0.0);
            let failed_at = now;
            let again = loop {
                now += 50; // the player's loop runs every 100 ms
                if let Some(again) = buffer.wanted(&player, now) {
                    break again;
                }
            };
            assert_eq!(again, span, "the same span again");
            delays.push(now - failed_at);
        }
        assert!(delays.windows(2).all(|d| d[1] > d[0]), "{delays:?}");
        assert!(delays[0] >= 100, "{delays:?}");
        // One answer that covers nothing of the span counts as a failure too.
        let mut stuck = PlayBuffer::new(player.at);
        let (from, _) = stuck.wanted(&player, now).expect("asked");
        stuck.fill(
            PlayedChunk {
                events: Vec::new(),
                until: from,
            },
            now,
            0.0,
        );
        assert_eq!(
            stuck.wanted(&player, now),
            None,
            "waits, not ten times a second"
        );
        // Later it is asked again, and an answer that works resets the delay.
        let (_, to) = stuck.wanted(&player, now + 10_000).expect("asked again");
        stuck.fill(
            PlayedChunk {
                events: Vec::new(),
                until: to,
            },
            now + 10_000,
            0.0,
        );
        assert_eq!(stuck.backoff.attempts(), 0);
    }

    #[test]
    fn a_chunk_is_taken_only_within_its_span_in_time_order_and_bounded() {
        let now = 100_000_000;
        let player = Player::new(1_000_000);
        let mut buffer = PlayBuffer::new(player.at);
        let (from, to) = buffer.wanted(&player, now).expect("asked");
        buffer.fill(
            PlayedChunk {
                events: vec![
                    tick(from + 30),
                    tick(from), // before the span: shown already
                    tick(from + 10),
                    tick(to + 1), // after it
                    tick(from + 20),
                ],
                until: to + 60_000, // more than was asked for
            },
            now,
            0.0,
        );
        let times = |updates: Vec<LiveUpdate>| -> Vec<TimestampMs> {
            updates
                .into_iter()
                .map(|update| match update {
                    LiveUpdate::Tick(tick) => tick.ts,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(times(buffer.due(to + 1)), [from + 10, from + 20, from + 30]);
        assert_eq!(buffer.loaded_until, to, "not past the span asked for");

        // A flood is cut at a moment, and that moment is asked for again.
        let mut flooded = PlayBuffer::new(player.at);
        let (from, to) = flooded.wanted(&player, now).expect("asked");
        let events = (0..MAX_CHUNK_EVENTS + 10)
            .map(|i| tick(from + 1 + (i / 2) as i64))
            .collect();
        flooded.fill(PlayedChunk { events, until: to }, now, 0.0);
        let kept = MAX_CHUNK_EVENTS;
        let cut = from + 1 + (kept / 2) as i64;
        assert_eq!(flooded.loaded_until, cut - 1);
        assert_eq!(flooded.due(to).len(), kept);
        assert_eq!(flooded.wanted(&player, now).map(|w| w.0), Some(cut - 1));
    }
}
