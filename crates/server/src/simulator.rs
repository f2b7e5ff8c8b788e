//! Built-in simulated feed, on by default so the dashboard is alive on first start.
//!
//! Prices follow geometric Brownian motion. Everything is drawn from one
//! seeded generator, so a seed and a sequence of timestamps always give the
//! same data (tests rely on that).

use std::time::Duration;

use pulse_core::model::{validate_symbol, Tick, TimestampMs, ValidationError};

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

/// SplitMix64: tiny, fast, and stable across crate versions (unlike `rand`'s
/// default generators), which keeps seeded runs reproducible forever.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

struct SimulatedSymbol {
    symbol: String,
    price: f64,
    last_ts: Option<TimestampMs>,
}

/// Generates ticks for a set of symbols, one at a time, round-robin in random order.
pub struct TickGenerator {
    rng: SeededRng,
    volatility: f64,
    symbols: Vec<SimulatedSymbol>,
}

impl TickGenerator {
    pub fn new(config: &SimulatorConfig) -> Self {
        let mut rng = SeededRng::new(config.seed);
        let symbols = config
            .symbols
            .iter()
            .map(|symbol| SimulatedSymbol {
                symbol: symbol.clone(),
                // Plausible, varied starting prices between 20 and 520.
                price: (20.0 + rng.next_f64() * 500.0).round(),
                last_ts: None,
            })
            .collect();
        Self {
            rng,
            volatility: config.volatility,
            symbols,
        }
    }

    /// Continues from known prices (e.g. restored after a restart) instead
    /// of the seeded starting prices, so charts do not jump.
    pub fn resume_from(&mut self, last_prices: &[(String, f64)]) {
        for (symbol, price) in last_prices {
            if let Some(sim) = self.symbols.iter_mut().find(|s| &s.symbol == symbol) {
                if price.is_finite() && *price > 0.0 {
                    sim.price = *price;
                }
            }
        }
    }

    /// The next tick, stamped `ts`; the price moves by GBM over the time
    /// since this symbol's previous tick.
    pub fn next_tick(&mut self, ts: TimestampMs) -> Tick {
        let index = self.rng.below(self.symbols.len());
        let z = self.rng.normal();
        let volume = (1.0 + 500.0 * self.rng.next_f64().powi(3)).round();
        let sim = &mut self.symbols[index];
        let dt_secs = sim
            .last_ts
            .map_or(1.0, |last| ((ts - last).max(1) as f64) / 1000.0);
        let sigma = self.volatility;
        // Zero drift: exp(-σ²dt/2 + σ√dt·Z) keeps the expected price constant.
        let growth = (-0.5 * sigma * sigma * dt_secs + sigma * dt_secs.sqrt() * z).exp();
        let next = sim.price * growth;
        // Guard against degenerate parameters: a price must stay positive and finite.
        if next.is_finite() && next > 0.0 {
            sim.price = next;
        }
        sim.last_ts = Some(ts);
        Tick {
            symbol: sim.symbol.clone(),
            price: quote_price(sim.price),
            volume,
            ts,
        }
    }
}

/// Rounds to cents (sub-dollar prices to 1/10,000) without ever reaching zero.
fn quote_price(price: f64) -> f64 {
    let scale = if price >= 1.0 { 100.0 } else { 10_000.0 };
    ((price * scale).round() / scale).max(1.0 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> SimulatorConfig {
        SimulatorConfig {
            seed,
            tick_rate: 10.0,
            symbols: vec!["AAPL".into(), "MSFT".into(), "BTC-USD".into()],
            volatility: 0.001,
            backfill_secs: 0,
            post_rate: 1.0,
            engagement_rate: 1.0,
        }
    }

    fn run(config: &SimulatorConfig, n: i64) -> Vec<Tick> {
        let mut generator = TickGenerator::new(config);
        (0..n)
            .map(|i| generator.next_tick(1_780_000_000_000 + i * 100))
            .collect()
    }

    #[test]
    fn same_seed_gives_identical_ticks() {
        assert_eq!(run(&config(7), 500), run(&config(7), 500));
        assert_ne!(run(&config(7), 50), run(&config(8), 50));
    }

    #[test]
    fn prices_stay_positive_finite_and_valid() {
        let mut extreme = config(3);
        extreme.volatility = 0.1;
        for cfg in [config(1), extreme] {
            for tick in run(&cfg, 20_000) {
                assert!(tick.price.is_finite() && tick.price > 0.0, "{tick:?}");
                tick.validate(1_780_000_000_000 + 20_000 * 100).unwrap();
            }
        }
    }

    #[test]
    fn every_symbol_gets_ticks() {
        let ticks = run(&config(11), 300);
        for symbol in ["AAPL", "MSFT", "BTC-USD"] {
            assert!(ticks.iter().filter(|t| t.symbol == symbol).count() > 50);
        }
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = SeededRng::new(5);
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn resuming_continues_from_the_given_prices() {
        let mut generator = TickGenerator::new(&config(1));
        generator.resume_from(&[
            ("MSFT".into(), 1234.5),
            ("ZZZ".into(), 1.0),
            ("AAPL".into(), f64::NAN),
        ]);
        let msft = (0..50)
            .map(|i| generator.next_tick(1_780_000_000_000 + i * 100))
            .find(|t| t.symbol == "MSFT")
            .unwrap();
        assert!((msft.price - 1234.5).abs() < 20.0, "{}", msft.price);
    }

    #[test]
    fn backfill_is_evenly_spaced_and_capped() {
        let mut cfg = config(1);
        cfg.backfill_secs = 60;
        let times = cfg.backfill_times(1_000_000, 10_000);
        assert_eq!(times.len(), 600);
        assert_eq!(times[0], 1_000_000 - 60_000);
        assert!(times.windows(2).all(|w| w[1] - w[0] == 100));
        assert!(*times.last().unwrap() < 1_000_000);
        assert_eq!(cfg.backfill_times(1_000_000, 50).len(), 50);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let mut cfg = config(1);
        cfg.symbols = vec!["bad symbol".into()];
        assert!(matches!(cfg.validate(), Err(SimulatorError::Symbol { .. })));
        let mut cfg = config(1);
        cfg.tick_rate = f64::NAN;
        assert!(matches!(cfg.validate(), Err(SimulatorError::Rate(_))));
        let mut cfg = config(1);
        cfg.symbols.clear();
        assert!(matches!(cfg.validate(), Err(SimulatorError::NoSymbols)));
        assert!(config(1).validate().is_ok());
    }
}
