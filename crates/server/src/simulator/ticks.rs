//! Simulated market data: geometric Brownian motion per symbol.

use pulse_core::model::{Tick, TimestampMs};

use super::rng::SeededRng;
use super::SimulatorConfig;

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
    use crate::simulator::SimulatorError;

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
