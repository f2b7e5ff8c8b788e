//! What drawing a long range costs, on the server (first paint) and in the
//! browser (the same function, compiled to WASM): the candle chart of a year
//! of daily candles and of a day of 1 min candles, with their SMA, and the
//! roll-up of a month of 1 min candles into days.
//!
//! `cargo bench -p pulse-app --bench charts`

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use pulse_app::charts::{candle_chart_svg, CANDLE_CHART_SIZE};
use pulse_core::analytics::market::{rollup, sma};
use pulse_core::model::{Candle, CandleInterval};

fn series(interval: CandleInterval, count: usize) -> Vec<Candle> {
    let mut price = 2_500.0_f64;
    (0..count)
        .map(|i| {
            let open = price;
            price *= 1.0 + ((i * 7919 % 200) as f64 - 100.0) / 10_000.0;
            Candle {
                symbol: "SPX".into(),
                interval,
                start: 1_546_387_200_000 + i as i64 * interval.millis(),
                open,
                high: open.max(price) * 1.002,
                low: open.min(price) * 0.998,
                close: price,
                volume: 1_000.0 + (i % 37) as f64 * 10.0,
            }
        })
        .collect()
}

fn draw(candles: &[Candle]) -> String {
    let closes: Vec<f64> = candles.iter().map(|c| c.close).collect();
    let averages = sma(&closes, 20);
    candle_chart_svg("SPX candles", candles, &averages, CANDLE_CHART_SIZE)
}

fn charts(c: &mut Criterion) {
    let year = series(CandleInterval::OneDay, 365);
    let day = series(CandleInterval::OneMinute, 1_440);
    let month = series(CandleInterval::OneMinute, 30 * 1_440);
    println!(
        "svg bytes: a year of days {}, a day of minutes {}",
        draw(&year).len(),
        draw(&day).len()
    );
    c.bench_function("chart: 365 daily candles", |b| {
        b.iter(|| draw(black_box(&year)))
    });
    c.bench_function("chart: 1,440 one-minute candles", |b| {
        b.iter(|| draw(black_box(&day)))
    });
    c.bench_function("rollup: 43,200 one-minute candles into days", |b| {
        b.iter(|| rollup(black_box(&month), CandleInterval::OneDay))
    });
}

criterion_group!(benches, charts);
criterion_main!(benches);
