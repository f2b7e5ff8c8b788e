//! Built-in simulated feed, on by default so the dashboard is alive on first start.
//!
//! [`driver`] feeds ingest at the configured rates, [`ticks`] and [`social`]
//! generate the data, [`rng`] draws every random number.
//!
//! Prices follow geometric Brownian motion. Everything is drawn from one
//! seeded generator, so a seed and a sequence of timestamps always give the
//! same data (tests rely on that).

pub mod driver;
pub mod rng;
pub mod social;
pub mod ticks;

use std::time::Duration;

use pulse_core::model::{validate_symbol, TimestampMs, ValidationError};

pub use rng::SeededRng;
pub use ticks::TickGenerator;

#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorConfig {
    pub seed: u64,
    /// Ticks per second, all symbols together.
    pub tick_rate: f64,
    pub symbols: Vec<String>,
    /// Standard deviation of log returns per square-root second.
    pub volatility: f64,
    /// Seconds of past ticks generated at start.
    pub backfill_secs: u64,
    /// Posts per second.
    pub post_rate: f64,
    /// Engagement events per second.
    pub engagement_rate: f64,
}

/// Longest simulated past generated at start (one day).
pub const MAX_BACKFILL_SECS: u64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("simulator needs at least one symbol")]
    NoSymbols,
    #[error("simulator symbol '{symbol}': {source}")]
    Symbol {
        symbol: String,
        source: ValidationError,
    },
    #[error("simulator tick rate must be a finite number between 0.01 and 100000, got {0}")]
    Rate(f64),
    #[error("simulator backfill must be at most {MAX_BACKFILL_SECS} seconds, got {0}")]
    Backfill(u64),
    #[error("simulator volatility must be a finite number between 0 and 0.1, got {0}")]
    Volatility(f64),
    #[error("simulator {what} rate must be a finite number between 0 and 10000, got {rate}")]
    SocialRate { what: &'static str, rate: f64 },
}

impl SimulatorConfig {
    pub fn validate(&self) -> Result<(), SimulatorError> {
        if self.symbols.is_empty() {
            return Err(SimulatorError::NoSymbols);
        }
        for symbol in &self.symbols {
            validate_symbol(symbol).map_err(|source| SimulatorError::Symbol {
                symbol: symbol.clone(),
                source,
            })?;
        }
        if !(0.01..=100_000.0).contains(&self.tick_rate) {
            return Err(SimulatorError::Rate(self.tick_rate));
        }
        if self.backfill_secs > MAX_BACKFILL_SECS {
            return Err(SimulatorError::Backfill(self.backfill_secs));
        }
        if !(0.0..=0.1).contains(&self.volatility) {
            return Err(SimulatorError::Volatility(self.volatility));
        }
        for (what, rate) in [
            ("post", self.post_rate),
            ("engagement", self.engagement_rate),
        ] {
            if !(0.0..=10_000.0).contains(&rate) {
                return Err(SimulatorError::SocialRate { what, rate });
            }
        }
        Ok(())
    }

    pub fn tick_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.tick_rate)
    }

    /// Timestamps of the backfilled ticks, oldest first, ending at `now`:
    /// evenly spaced at the tick rate, at most `max_ticks` of them.
    pub fn backfill_times(&self, now: TimestampMs, max_ticks: usize) -> Vec<TimestampMs> {
        let count = ((self.backfill_secs as f64 * self.tick_rate) as usize).min(max_ticks);
        let step_ms = 1000.0 / self.tick_rate;
        (0..count)
            .map(|i| now - ((count - i) as f64 * step_ms) as TimestampMs)
            .collect()
    }
}
