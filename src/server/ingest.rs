//! The single path every piece of data takes into Pulse: validate, update
//! the in-memory views, publish on the hub. HTTP, WebSocket `publish`, server
//! functions and the simulator all call this, so they cannot drift apart.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::model::{Tick, TimestampMs, ValidationError};
use crate::protocol::{StreamPosition, Topic};

use super::hub::{Hub, HubError, Published};

/// Ticks kept per symbol for the dashboard's first paint.
pub const RECENT_TICKS_PER_SYMBOL: usize = 600;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid {field}: {message}", field = .0.field, message = .0.message)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// Recent ticks of one symbol and the `ticks:<SYMBOL>` position they reach,
/// kept together so a snapshot plus `since` misses nothing and repeats nothing.
#[derive(Default)]
struct RecentTicks {
    ticks: VecDeque<Tick>,
    position: Option<StreamPosition>,
}

pub struct Ingest {
    hub: Arc<Hub>,
    recent: Mutex<BTreeMap<String, RecentTicks>>,
}

impl Ingest {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            recent: Mutex::new(BTreeMap::new()),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RecentTicks>> {
        self.recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Validates and publishes a tick on `ticks` and `ticks:<SYMBOL>`;
    /// returns its position on `ticks`.
    pub fn tick(&self, tick: Tick, now: TimestampMs) -> Result<Published, IngestError> {
        tick.validate(now)?;
        let symbol: Arc<str> = tick.symbol.as_str().into();
        // Publishing under the lock keeps the snapshot and its position consistent.
        let mut recent = self.recent();
        let published = self.hub.publish(
            &Topic::Ticks,
            &tick,
            Some(Arc::clone(&symbol)),
            Some(tick.ts),
        )?;
        let on_symbol = self.hub.publish(
            &Topic::SymbolTicks(tick.symbol.clone()),
            &tick,
            Some(symbol),
            Some(tick.ts),
        )?;
        let entry = recent.entry(tick.symbol.clone()).or_default();
        if entry.ticks.len() >= RECENT_TICKS_PER_SYMBOL {
            entry.ticks.pop_front();
        }
        entry.ticks.push_back(tick);
        entry.position = Some(on_symbol.into());
        Ok(published)
    }

    /// Symbols seen so far, sorted.
    pub fn symbols(&self) -> Vec<String> {
        self.recent().keys().cloned().collect()
    }

    /// The most recent ticks of `symbol` (oldest first) and the
    /// `ticks:<SYMBOL>` position right after the newest of them.
    pub fn recent_ticks(&self, symbol: &str) -> (Vec<Tick>, Option<StreamPosition>) {
        self.recent()
            .get(symbol)
            .map(|r| (r.ticks.iter().cloned().collect(), r.position.clone()))
            .unwrap_or_default()
    }
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as TimestampMs)
}
