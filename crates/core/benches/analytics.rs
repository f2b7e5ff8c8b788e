//! Throughput of the analytics engines: `cargo bench --bench analytics`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pulse_core::analytics::engagement::{EngagementConfig, EngagementEngine};
use pulse_core::analytics::market::{MarketConfig, MarketEngine};
use pulse_core::model::{Engagement, EngagementKind, Tick};

const T0: i64 = 1_780_000_020_000;
const SYMBOLS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "BTC-USD",
];

/// Small deterministic generator, so the bench needs no `rand`.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

/// `n` ticks round-robin over the symbols, 5 ms apart (≈25 ticks per 1 s
/// candle per symbol), random walk prices, 1 % of them 0–3 s late.
fn ticks(n: usize) -> Vec<Tick> {
    let mut rng = Lcg(42);
    let mut prices = [100.0f64; SYMBOLS.len()];
    (0..n)
        .map(|i| {
            let s = i % SYMBOLS.len();
            prices[s] *= 1.0 + (rng.unit() - 0.5) * 0.002;
            let late = if rng.next().is_multiple_of(100) {
                (rng.next() % 3_000) as i64
            } else {
                0
            };
            Tick {
                symbol: SYMBOLS[s].to_string(),
                price: prices[s],
                volume: 1.0 + (rng.next() % 100) as f64,
                ts: T0 + i as i64 * 5 - late,
            }
        })
        .collect()
}

/// `n` events over 1,000 posts, 2 ms apart, 10 % unlikes.
fn events(n: usize) -> Vec<Engagement> {
    let mut rng = Lcg(7);
    (0..n)
        .map(|i| {
            let kind = match rng.next() % 6 {
                0..=3 => EngagementKind::Like,
                4 => EngagementKind::Comment,
                _ => EngagementKind::Share,
            };
            Engagement {
                post_id: rng.next() % 1_000,
                kind,
                delta: if rng.next().is_multiple_of(10) { -1 } else { 1 },
                ts: T0 + i as i64 * 2,
            }
        })
        .collect()
}

fn engagement_engine() -> EngagementEngine {
    let mut engine = EngagementEngine::new(EngagementConfig::default());
    for id in 0..1_000u64 {
        engine.register_post(id);
    }
    engine
}

fn market(c: &mut Criterion) {
    const N: usize = 100_000;
    let ticks = ticks(N);
    let mut group = c.benchmark_group("market");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("apply_100k_ticks", |b| {
        b.iter_batched(
            || MarketEngine::new(MarketConfig::default()),
            |mut engine| {
                for tick in &ticks {
                    black_box(engine.apply(tick));
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });

    // Indicators are computed on demand; measure a full dashboard refresh.
    let mut engine = MarketEngine::new(MarketConfig::default());
    for tick in &ticks {
        engine.apply(tick);
    }
    group.throughput(Throughput::Elements(SYMBOLS.len() as u64));
    group.bench_function("summaries_8_symbols", |b| {
        b.iter(|| black_box(engine.summaries()))
    });
    group.finish();
}

fn engagement(c: &mut Criterion) {
    const N: usize = 100_000;
    let events = events(N);
    let mut group = c.benchmark_group("engagement");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("apply_100k_events", |b| {
        b.iter_batched(
            engagement_engine,
            |mut engine| {
                for event in &events {
                    let _ = black_box(engine.apply(event));
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });

    let mut engine = engagement_engine();
    for event in &events {
        let _ = engine.apply(event);
    }
    let now = T0 + N as i64 * 2;
    group.throughput(Throughput::Elements(1));
    group.bench_function("top_posts_15m", |b| {
        b.iter(|| black_box(engine.top_posts(now, 15 * 60_000, 10)))
    });
    group.bench_function("rates", |b| b.iter(|| black_box(engine.rates(now))));
    group.finish();
}

criterion_group!(benches, market, engagement);
criterion_main!(benches);
