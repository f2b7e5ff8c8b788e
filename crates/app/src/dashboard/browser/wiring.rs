//! The browser side of the dashboard (browser builds only): one connection whose
//! frames are coalesced per animation frame, lost history and symbol changes
//! reloaded through server functions, and the engagement window kept moving.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::chart_view::ChartView;
use crate::dashboard::{decode, load_dashboard, Panels, Routed};
use crate::live::{connect, ConnectionStatus, FrameCoalescer, LiveEvent, Subscription};
use crate::price_panel::load_symbol;
use pulse_core::protocol::{CandleUpdate, EventFrame, StreamPosition};

/// Candle events of every symbol, so a newly selected symbol's load can be caught up.
const CANDLE_REPLAY: usize = 512;
/// How long the resets of one reconnect are collected before reloading once.
const RESET_GATHERING: Duration = Duration::from_millis(50);
/// How often the engagement window scrolls while nobody reacts.
const ENGAGEMENT_SCROLL: Duration = Duration::from_secs(5);

/// The latest [`CANDLE_REPLAY`] candle events, oldest first.
type RecentCandles = Rc<RefCell<VecDeque<(u64, CandleUpdate)>>>;

/// Connects the page: live events into `panels`, resuming each topic from
/// its snapshot position, and `selected` followed by loading that symbol.
pub fn start(
    panels: Panels,
    positions: BTreeMap<String, StreamPosition>,
    status: RwSignal<ConnectionStatus>,
    selected: Memo<String>,
    view: Memo<ChartView>,
    loading: RwSignal<bool>,
) {
    let recent_candles = RecentCandles::default();
    let coalescer = frame_coalescer(panels, Rc::clone(&recent_candles));
    let reset = reloader(panels, selected, view);
    connect(
        subscriptions(panels, positions),
        status,
        move |event| match event {
            LiveEvent::Event(frame) => coalescer.push(frame),
            LiveEvent::Reset { topic } => reset(topic),
        },
    );
    follow_selection(panels, selected, view, loading, recent_candles);
    scroll_engagement(panels);
}

/// Applies each animation frame's events to the panels at once, and keeps
/// the latest candle events for [`follow_selection`].
fn frame_coalescer(panels: Panels, recent_candles: RecentCandles) -> FrameCoalescer<EventFrame> {
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
}

/// Every global topic from its snapshot position, and the candles of every
/// symbol: the shown symbol's from its position, the others from now on.
fn subscriptions(panels: Panels, positions: BTreeMap<String, StreamPosition>) -> Vec<Subscription> {
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
    let (shown, shown_position) = panels
        .price
        .with_untracked(|p| (p.symbol.clone(), p.position.clone()));
    for row in panels.watchlist.with_untracked(|w| w.rows.clone()) {
        let since = (row.symbol == shown)
            .then(|| shown_position.clone())
            .flatten();
        subscriptions.push(Subscription {
            topic: format!("candles:{}", row.symbol),
            since,
        });
    }
    subscriptions
}

/// What to do when a topic's history was lost: collect the resets of one
/// reconnect, then reload the dashboard once and reset those panels.
fn reloader(
    panels: Panels,
    selected: Memo<String>,
    view: Memo<ChartView>,
) -> impl Fn(String) + 'static {
    let resets: Rc<RefCell<Vec<String>>> = Rc::default();
    move |topic| {
        let first = {
            let mut pending = resets.borrow_mut();
            pending.push(topic);
            pending.len() == 1
        };
        if first {
            spawn_local(reload(panels, selected, view, Rc::clone(&resets)));
        }
    }
}

async fn reload(
    panels: Panels,
    selected: Memo<String>,
    view: Memo<ChartView>,
    resets: Rc<RefCell<Vec<String>>>,
) {
    gloo_timers::future::sleep(RESET_GATHERING).await;
    let symbol = selected.get_untracked();
    match load_dashboard(Some(symbol), Some(view.get_untracked())).await {
        Ok(data) => {
            let topics = std::mem::take(&mut *resets.borrow_mut());
            panels.reset(&topics, data);
        }
        Err(error) => {
            resets.borrow_mut().clear();
            leptos::logging::warn!("reloading after lost history failed: {error}");
        }
    }
}

/// Selecting a symbol (URL `?symbol=`) loads its candles and sentiment; a
/// new interval or range (`?interval=`, `?range=`) its candles.
fn follow_selection(
    panels: Panels,
    selected: Memo<String>,
    view: Memo<ChartView>,
    loading: RwSignal<bool>,
    recent_candles: RecentCandles,
) {
    Effect::new(move |_| {
        let symbol = selected.get();
        let wanted = view.get();
        if panels
            .price
            .with_untracked(|p| p.symbol == symbol && p.view == wanted)
        {
            return;
        }
        loading.set(true);
        spawn_local(load_selected(
            panels,
            (selected, symbol),
            (view, wanted),
            loading,
            Rc::clone(&recent_candles),
        ));
    });
}

/// Loads `symbol` as `view` shows it, catches its candles up with the
/// events seen meanwhile, and shows it unless a newer selection came first.
async fn load_selected(
    panels: Panels,
    (selected, symbol): (Memo<String>, String),
    (current_view, view): (Memo<ChartView>, ChartView),
    loading: RwSignal<bool>,
    recent_candles: RecentCandles,
) {
    let symbol_changed = panels.price.with_untracked(|p| p.symbol != symbol);
    let result = load_symbol(symbol.clone(), Some(view)).await;
    if selected.get_untracked() != symbol || current_view.get_untracked() != view {
        return; // a newer selection is loading
    }
    match result {
        Ok(data) => {
            let mut price = data.price;
            for (offset, update) in recent_candles.borrow().iter() {
                price.apply(*offset, update.clone());
            }
            panels.price.set(price);
            if symbol_changed {
                panels.sentiment.update(|s| s.symbol = data.sentiment);
            }
        }
        Err(error) => leptos::logging::warn!("loading {symbol} failed: {error}"),
    }
    loading.set(false);
}

/// Keeps the engagement window scrolling while nobody reacts.
fn scroll_engagement(panels: Panels) {
    set_interval(
        move || {
            panels
                .engagement
                .update(|e| e.advance(js_sys::Date::now() as i64))
        },
        ENGAGEMENT_SCROLL,
    );
}
