//! The browser side of time travel (browser builds only): a clock that
//! moves the past forward while playing, fetches the stored events ahead
//! of it, and hands the due ones to the panels through the same
//! per-animation-frame path as live events.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::chart_view::ChartView;
use crate::dashboard::{LiveUpdate, Panels, Routed};
use crate::live::FrameCoalescer;
use crate::time_travel::{load_played, PlayBuffer, Player};

/// How often the clock moves on and due events are handed out.
const STEP: Duration = Duration::from_millis(100);

/// Plays the stored past from the player's moment on.
pub fn start(panels: Panels, player: RwSignal<Option<Player>>, symbol: String, view: ChartView) {
    let Some(at) = player.get_untracked().map(|p| p.at) else {
        return;
    };
    let buffer = Rc::new(RefCell::new(PlayBuffer::new(at)));
    let coalescer = FrameCoalescer::new(move |updates: Vec<LiveUpdate>| {
        panels.apply(Routed::new(updates));
    });
    let last = std::cell::Cell::new(js_sys::Date::now());
    set_interval(
        move || {
            let now = js_sys::Date::now();
            let elapsed = now - last.replace(now);
            let wall = now as i64;
            let Some(mut clock) = player.get_untracked() else {
                return;
            };
            clock.advance(elapsed, wall);
            if clock != player.get_untracked().unwrap_or(clock) {
                player.set(Some(clock));
            }
            for update in buffer.borrow_mut().due(clock.at) {
                coalescer.push(update);
            }
            if clock.playing {
                panels.engagement.update(|e| e.advance(clock.at));
            }
            let wanted = buffer.borrow_mut().wanted(&clock, wall);
            if let Some((from, to)) = wanted {
                let buffer = Rc::clone(&buffer);
                let symbol = symbol.clone();
                spawn_local(async move {
                    match load_played(symbol, view, from, to).await {
                        Ok(chunk) => buffer.borrow_mut().fill(
                            chunk,
                            js_sys::Date::now() as i64,
                            js_sys::Math::random(),
                        ),
                        Err(error) => {
                            buffer
                                .borrow_mut()
                                .failed(js_sys::Date::now() as i64, js_sys::Math::random());
                            leptos::logging::warn!("loading the past failed: {error}");
                        }
                    }
                });
            }
        },
        STEP,
    );
}
