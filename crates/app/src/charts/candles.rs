//! The candle chart: price candles with an SMA overlay above, volume bars below.

use std::fmt::Write;

use plotters::prelude::*;

use pulse_core::model::Candle;

use super::marks::{hex, path, rect_path};
use super::style::{house_mesh, label_font, DOWN, SMA_LINE, UP};
use super::{
    axis_number, bar_axis, bounds, plottable, plottable_time, render_svg, time_axis, time_labels,
    value_axis, VALUE_LIMIT,
};
use crate::format::{clock_time, compact, NO_VALUE};

pub const CANDLE_CHART_SIZE: (u32, u32) = (720, 360);

/// A volume as a bar height: NaN and negative volumes draw nothing, and an
/// overflowed (+inf) or enormous volume draws the tallest bar.
fn bar_height(volume: f64) -> f64 {
    if volume > 0.0 {
        volume.min(VALUE_LIMIT)
    } else {
        0.0
    }
}

/// A price for the text alternative: two decimals, scientific notation where
/// two decimals would be unreadable (huge) or say nothing (tiny).
fn price_text(value: f64) -> String {
    if !value.is_finite() {
        return NO_VALUE.to_owned();
    }
    let abs = value.abs();
    if abs == 0.0 {
        "0.00".to_owned()
    } else if (0.01..1e9).contains(&abs) {
        format!("{value:.2}")
    } else {
        format!("{value:.3e}")
    }
}

/// A candle as drawn: prices finite and clamped (`low <= open, close <= high`
/// even if the input disagreed), volume a bar height, SMA finite or absent.
struct Bar {
    start: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    sma: Option<f64>,
}

impl Bar {
    fn rising(&self) -> bool {
        self.close >= self.open
    }
}

/// The candles that can be drawn, oldest first, each with its aligned SMA.
/// A candle with a non-finite price is left out (with its SMA value).
fn bars(candles: &[Candle], sma: &[Option<f64>]) -> Vec<Bar> {
    let mut bars: Vec<Bar> = candles
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let open = plottable(c.open)?;
            let close = plottable(c.close)?;
            let high = plottable(c.high)?.max(open).max(close);
            let low = plottable(c.low)?.min(open).min(close);
            Some(Bar {
                start: plottable_time(c.start),
                open,
                high,
                low,
                close,
                volume: bar_height(c.volume),
                sma: sma.get(i).copied().flatten().and_then(plottable),
            })
        })
        .collect();
    bars.sort_by_key(|b| b.start);
    bars
}

/// Candles of one symbol and interval (oldest first) with `sma` aligned to them.
pub fn candle_chart_svg(
    title: &str,
    candles: &[Candle],
    sma: &[Option<f64>],
    size: (u32, u32),
) -> String {
    let interval = candles
        .first()
        .map_or(1_000, |c| c.interval.millis())
        .max(1);
    let bars = bars(candles, sma);
    render_svg(size, title, &candle_description(title, &bars), |root| {
        draw_candles(root, &bars, interval).map_err(|e| e.to_string())
    })
}

fn candle_description(title: &str, bars: &[Bar]) -> String {
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
        return format!("{title}: no candles yet");
    };
    let (low, high) = bounds(bars.iter().flat_map(|b| [b.low, b.high])).unwrap_or_default();
    // Saturates instead of overflowing: each volume is at most VALUE_LIMIT.
    let volume = bars
        .iter()
        .fold(0.0, |sum, b| (sum + b.volume).min(VALUE_LIMIT));
    let sma = last
        .sma
        .map_or_else(String::new, |v| format!(", SMA {}", price_text(v)));
    format!(
        "{title}: {} candles from {} to {}, last close {}, low {}, high {}, volume {}{sma}",
        bars.len(),
        clock_time(first.start),
        clock_time(last.start),
        price_text(last.close),
        price_text(low),
        price_text(high),
        compact(volume),
    )
}

/// One colour's marks of one layer, as the `d` of a single SVG path.
#[derive(Default)]
struct Marks {
    up: String,
    down: String,
}

impl Marks {
    fn of(&mut self, bar: &Bar) -> &mut String {
        if bar.rising() {
            &mut self.up
        } else {
            &mut self.down
        }
    }

    /// The two paths; `paint` gives the attributes for a colour.
    fn write(&self, svg: &mut String, paint: impl Fn(RGBColor) -> String) {
        path(svg, &paint(UP), &self.up);
        path(svg, &paint(DOWN), &self.down);
    }
}

/// Axes, grid and labels come from plotters; the candles, volume bars and
/// SMA are written as a handful of paths (one per colour and layer) rather
/// than plotters' three elements per candle: a long range then costs a few
/// bytes per candle, and the browser parses 7 elements, not thousands.
fn draw_candles<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    bars: &[Bar],
    interval: i64,
) -> Result<String, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (_, height) = root.dim_in_pixel();
    let (upper, lower) = root.split_vertically(height * 72 / 100);
    let x_range = match (bars.first(), bars.last()) {
        (Some(first), Some(last)) => time_axis(first.start, last.start + interval),
        _ => time_axis(0, 60 * interval),
    };
    let y_range = value_axis(bounds(
        bars.iter()
            .flat_map(|b| [Some(b.low), Some(b.high), b.sma])
            .flatten(),
    ));
    let max_volume = bars.iter().map(|b| b.volume).fold(0.0, f64::max);
    const PRICE_LABELS: usize = 6;
    let (x_labels, x_label) = time_labels(&x_range, interval >= 60_000, 6);
    let price_step = (y_range.end - y_range.start) / PRICE_LABELS as f64;

    let mut price = ChartBuilder::on(&upper)
        .margin_top(10)
        .margin_right(12)
        .margin_left(4)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range.clone(), y_range)?;
    house_mesh(&mut price.configure_mesh(), label_font())
        .x_labels(x_labels)
        .y_labels(PRICE_LABELS)
        .y_label_formatter(&|p| axis_number(*p, price_step))
        .draw()?;

    let mut volume = ChartBuilder::on(&lower)
        .margin_right(12)
        .margin_left(4)
        .margin_bottom(4)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, bar_axis(max_volume, 1.1, 1.0))?;
    house_mesh(volume.configure_mesh().disable_x_mesh(), label_font())
        .x_labels(x_labels)
        .y_labels(3)
        .x_label_formatter(&|ts| x_label(*ts))
        .y_label_formatter(&|v| compact(*v))
        .draw()?;

    // Every point below lies inside its chart's axes (they were built from
    // these bars), so the pixels need no clipping.
    let body = |start: i64| (start + interval * 15 / 100, start + interval * 85 / 100);
    let (mut wicks, mut bodies, mut bars_of_volume) =
        (Marks::default(), Marks::default(), Marks::default());
    let mut sma = String::new();
    for b in bars {
        let mid = b.start + interval / 2;
        let (x, high) = price.backend_coord(&(mid, b.high));
        let (_, low) = price.backend_coord(&(mid, b.low));
        let _ = write!(wicks.of(b), "M{x} {high}V{low}");
        let (x0, x1) = body(b.start);
        rect_path(
            bodies.of(b),
            price.backend_coord(&(x0, b.open.max(b.close))),
            price.backend_coord(&(x1, b.open.min(b.close))),
        );
        if b.volume > 0.0 {
            rect_path(
                bars_of_volume.of(b),
                volume.backend_coord(&(x0, b.volume)),
                volume.backend_coord(&(x1, 0.0)),
            );
        }
        if let Some(value) = b.sma {
            let (x, y) = price.backend_coord(&(mid, value));
            let step = if sma.is_empty() { 'M' } else { 'L' };
            let _ = write!(sma, "{step}{x} {y}");
        }
    }
    let mut svg = String::with_capacity(
        [&wicks, &bodies, &bars_of_volume]
            .iter()
            .map(|m| m.up.len() + m.down.len() + 64)
            .sum::<usize>()
            + sma.len()
            + 64,
    );
    wicks.write(&mut svg, |c| {
        format!(r#"fill="none" stroke="{}" stroke-width="1""#, hex(c))
    });
    bodies.write(&mut svg, |c| format!(r#"fill="{}""#, hex(c)));
    path(
        &mut svg,
        &format!(r#"fill="none" stroke="{}" stroke-width="2""#, hex(SMA_LINE)),
        &sma,
    );
    bars_of_volume.write(&mut svg, |c| {
        format!(r#"fill="{}" fill-opacity="0.45""#, hex(c))
    });
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::TIME_LIMIT;
    use super::*;
    use pulse_core::model::CandleInterval;

    fn candle(start: i64, open: f64, high: f64, low: f64, close: f64, volume: f64) -> Candle {
        Candle {
            symbol: "X".into(),
            interval: CandleInterval::OneSecond,
            start,
            open,
            high,
            low,
            close,
            volume,
        }
    }

    fn flat(start: i64, price: f64, volume: f64) -> Candle {
        candle(start, price, price, price, price, volume)
    }

    fn candles(n: usize) -> Vec<Candle> {
        (0..n)
            .map(|i| {
                let open = 100.0 + (i as f64 * 0.7).sin() * 3.0;
                let close = 100.0 + (i as f64 * 0.7 + 0.5).sin() * 3.0;
                let (high, low) = (open.max(close) + 0.4, open.min(close) - 0.4);
                candle(
                    T0 + i as i64 * 1_000,
                    open,
                    high,
                    low,
                    close,
                    10.0 + i as f64,
                )
            })
            .collect()
    }

    fn sma_of(candles: &[Candle]) -> Vec<Option<f64>> {
        let closes: Vec<f64> = candles.iter().map(|c| c.close).collect();
        pulse_core::analytics::market::sma(&closes, 3)
    }

    fn draw_candles_guarded(what: &str, candles: Vec<Candle>, sma: Vec<Option<f64>>) -> String {
        finishes(what, move || {
            candle_chart_svg("X 1s candles", &candles, &sma, CANDLE_CHART_SIZE)
        })
    }

    // ------------------------------------------------------- candles

    /// Issue 9: two ticks of volume 1.6e308 in one candle sum to +inf, and the
    /// 0..inf volume axis sent plotters' tick search into an endless loop
    /// (server at 100 % CPU, never answering again).
    #[test]
    fn infinite_volume_from_two_huge_ticks_finishes() {
        let svg = draw_candles_guarded(
            "volume 1.6e308 + 1.6e308",
            vec![flat(T0, 10.0, 1.6e308 + 1.6e308)],
            vec![None],
        );
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("1 candles"), "{}", desc(&svg));
    }

    /// Two candles of 1.6e308 each: the summed volume in the text alternative
    /// overflowed to "infM".
    #[test]
    fn huge_volumes_in_two_candles_have_a_finite_total() {
        let svg = draw_candles_guarded(
            "two huge volumes",
            vec![flat(T0, 10.0, 1.6e308), flat(T0 + 1_000, 10.0, 1.6e308)],
            vec![None, None],
        );
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("volume 1.0e300"), "{}", desc(&svg));
    }

    #[test]
    fn every_hostile_value_in_every_field_finishes_and_stays_finite() {
        finishes("hostile candle fields", || {
            for value in HOSTILE {
                for field in 0..6 {
                    let mut c = candles(4);
                    let target = &mut c[2];
                    match field {
                        0 => target.open = value,
                        1 => target.high = value,
                        2 => target.low = value,
                        3 => target.close = value,
                        4 => target.volume = value,
                        _ => {}
                    }
                    let mut sma = sma_of(&c);
                    if field == 5 {
                        sma[2] = Some(value);
                    }
                    let svg = candle_chart_svg("X", &c, &sma, CANDLE_CHART_SIZE);
                    assert_sane_svg(&svg);
                }
                // A whole series of the value, in every field.
                let c = vec![flat(T0, value, value), flat(T0 + 1_000, value, value)];
                let svg = candle_chart_svg("X", &c, &[Some(value); 2], CANDLE_CHART_SIZE);
                assert_sane_svg(&svg);
            }
        });
    }

    #[test]
    fn the_widest_finite_price_range_finishes() {
        // f64::MAX - f64::MIN overflows to +inf: the axis width itself was infinite.
        let svg = draw_candles_guarded(
            "price range f64::MIN..f64::MAX",
            vec![candle(T0, f64::MIN, f64::MAX, f64::MIN, f64::MAX, 1.0)],
            vec![Some(f64::MAX)],
        );
        assert_sane_svg(&svg);
    }

    #[test]
    fn candles_with_non_finite_prices_are_left_out() {
        let mut c = candles(3);
        c[1].close = f64::NAN;
        let svg = draw_candles_guarded("one NaN close", c, vec![None; 3]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("2 candles"), "{}", desc(&svg));

        let svg = draw_candles_guarded(
            "only NaN",
            vec![flat(T0, f64::NAN, 1.0)],
            vec![Some(f64::NAN)],
        );
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("no candles yet"), "{}", desc(&svg));
    }

    #[test]
    fn empty_candles_draw_an_empty_chart() {
        let svg = draw_candles_guarded("empty", vec![], vec![]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("no candles yet"));
        assert!(
            !svg.to_ascii_uppercase().contains("#2563EB"),
            "an SMA line was drawn"
        );
    }

    #[test]
    fn one_candle_draws() {
        let svg = draw_candles_guarded("one candle", candles(1), vec![None]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("1 candles"));
        // One second of axis: the labels step by whole seconds, never "12:00:00" twice.
        assert_distinct(time_labels_of(&svg), 1);
    }

    #[test]
    fn many_candles_draw_bodies_an_sma_line_and_labels() {
        let c = candles(120);
        let sma = sma_of(&c);
        let svg = draw_candles_guarded("120 candles", c, sma);
        assert_sane_svg(&svg);
        assert!(
            svg.contains(r##"stroke="#2563EB" stroke-width="2" d="M"##),
            "no SMA line"
        );
        for color in ["#047857", "#B91C1C"] {
            assert!(
                svg.contains(&format!(r#"<path fill="{color}" d="M"#)),
                "no {color} bodies"
            );
        }
        assert!(labels(&svg).len() >= 6, "no axis labels");
        assert!(svg.contains(r#"role="img""#));
    }

    /// The browser's time on a long range went into parsing three elements
    /// per candle: now the element count does not grow with the candles,
    /// and a candle costs a few dozen bytes.
    #[test]
    fn candles_are_a_fixed_number_of_paths_whatever_their_count() {
        let elements = |n: usize| {
            let c = candles(n);
            let sma = sma_of(&c);
            let svg = draw_candles_guarded("n candles", c, sma);
            assert_sane_svg(&svg);
            (
                svg.matches('<').count(),
                svg.matches("<path").count(),
                svg.len(),
            )
        };
        let (few, few_paths, few_bytes) = elements(100);
        let (many, many_paths, many_bytes) = elements(2_000);
        assert_eq!(
            few_paths, 7,
            "wicks, bodies and volume in two colours, and the SMA"
        );
        assert_eq!(many_paths, 7);
        // Only the grid and the labels differ (plotters' ticks for the other span).
        assert!(
            many.abs_diff(few) < 50,
            "{few} elements for 100 candles, {many} for 2,000"
        );
        let per_candle = (many_bytes - few_bytes) / 1_900;
        assert!(per_candle < 64, "{per_candle} bytes per candle");
    }

    #[test]
    fn a_candle_is_drawn_where_its_prices_are() {
        // Rising: open 10, close 20, high 25, low 5; then a falling one.
        let c = vec![
            candle(T0, 10.0, 25.0, 5.0, 20.0, 4.0),
            candle(T0 + 1_000, 20.0, 21.0, 14.0, 15.0, 2.0),
        ];
        let svg = draw_candles_guarded("two candles", c, vec![None; 2]);
        // Pixel y grows downwards: high above the body's top, low below its bottom.
        let wick = path_numbers(&svg, r##"fill="none" stroke="#047857" stroke-width="1""##);
        let [x, high, low] = wick[..] else {
            panic!("{wick:?}")
        };
        let body = path_numbers(&svg, r##"fill="#047857""##);
        let [left, top, width, height, back] = body[..] else {
            panic!("{body:?}")
        };
        assert!(high < top && top + height < low, "{wick:?} {body:?}");
        assert!(
            left < x && x < left + width && back == -width,
            "{wick:?} {body:?}"
        );
        // The falling candle's body spans 20 down to 15: half the rising one's 10..20.
        let falling = path_numbers(&svg, r##"fill="#B91C1C""##);
        assert!(
            (falling[3] * 2 - height).abs() <= 2,
            "{falling:?} against {body:?}"
        );
        assert!(
            falling[0] > left + width,
            "the second candle is to the right"
        );
        // Volume 4 against 2: twice as tall, both standing on the same baseline.
        let up = path_numbers(&svg, r##"fill="#047857" fill-opacity="0.45""##);
        let down = path_numbers(&svg, r##"fill="#B91C1C" fill-opacity="0.45""##);
        assert_eq!(up[1] + up[3], down[1] + down[3], "{up:?} {down:?}");
        assert!((down[3] * 2 - up[3]).abs() <= 2, "{up:?} {down:?}");
    }

    #[test]
    fn a_flat_series_gets_distinct_price_labels() {
        let c: Vec<Candle> = (0..30).map(|i| flat(T0 + i * 1_000, 42.0, 5.0)).collect();
        let svg = draw_candles_guarded("flat", c, vec![None; 30]);
        assert_sane_svg(&svg);
        assert_distinct(
            labels(&svg)
                .into_iter()
                .filter(|l| l.starts_with("42") || l.starts_with("41"))
                .collect(),
            3,
        );
    }

    #[test]
    fn huge_prices_get_short_labels_and_text() {
        let c = vec![flat(T0, 1e300, 1.0), flat(T0 + 1_000, 1.0001e300, 1.0)];
        let svg = draw_candles_guarded("huge prices", c, vec![None; 2]);
        assert_sane_svg(&svg);
        let long: Vec<String> = labels(&svg).into_iter().filter(|l| l.len() > 12).collect();
        assert!(long.is_empty(), "labels too long for the axis: {long:?}");
        assert_distinct(
            labels(&svg)
                .into_iter()
                .filter(|l| l.contains("e"))
                .collect(),
            3,
        );
        assert!(desc(&svg).len() < 300, "{}", desc(&svg));
        assert!(
            desc(&svg).contains("last close 1.000e300"),
            "{}",
            desc(&svg)
        );
    }

    #[test]
    fn tiny_price_ranges_get_labels_that_differ() {
        let c = vec![flat(T0, 0.000_01, 1.0), flat(T0 + 1_000, 0.000_012, 1.0)];
        let svg = draw_candles_guarded("tiny range", c, vec![None; 2]);
        assert_sane_svg(&svg);
        assert_distinct(
            labels(&svg)
                .into_iter()
                .filter(|l| l.starts_with("0.0000"))
                .collect(),
            3,
        );

        let c = vec![flat(T0, 1e-300, 1e-300), flat(T0 + 1_000, 2e-300, 1e-300)];
        let svg = draw_candles_guarded("1e-300", c, vec![None; 2]);
        assert_sane_svg(&svg);
    }

    #[test]
    fn negative_and_mixed_prices_draw() {
        let c = vec![
            candle(T0, -5.0, 3.0, -8.0, 2.0, 1.0),
            candle(T0 + 1_000, 2.0, 1e6, -1e6, -3.0, 2.0),
            // high below low: drawn from the values it has.
            candle(T0 + 2_000, 1.0, -10.0, 10.0, 2.0, -4.0),
        ];
        let svg = draw_candles_guarded("mixed", c, vec![Some(-1.0), None, Some(7.0)]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("3 candles"), "{}", desc(&svg));
    }

    #[test]
    fn extreme_and_unsorted_timestamps_finish() {
        let c = vec![
            flat(i64::MAX, 1.0, 1.0),
            flat(i64::MIN, 2.0, 1.0),
            flat(0, 3.0, 1.0),
            flat(i64::MAX - 1, 4.0, 1.0),
        ];
        let svg = draw_candles_guarded("timestamps at the i64 ends", c, vec![None; 4]);
        assert_sane_svg(&svg);
        let c = vec![flat(i64::MAX, 1.0, 1.0)];
        assert_sane_svg(&draw_candles_guarded("one at i64::MAX", c, vec![None]));
    }

    #[test]
    fn time_labels_never_repeat_on_short_spans() {
        for n in [1, 2, 3, 7, 100] {
            let c = candles(n);
            let svg = draw_candles_guarded("seconds", c.clone(), vec![None; n]);
            assert_distinct(time_labels_of(&svg), 1);
            let minutes: Vec<Candle> = c
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c.interval = CandleInterval::OneMinute;
                    c.start = T0 + i as i64 * 60_000;
                    c
                })
                .collect();
            let svg = draw_candles_guarded("minutes", minutes, vec![None; n]);
            assert_distinct(time_labels_of(&svg), 1);
        }
    }

    #[test]
    fn a_hundred_thousand_candles_with_a_broken_one_finish() {
        let mut c = candles(100_001);
        c[100_000].close = f64::NAN;
        let sma = sma_of(&c);
        let svg = draw_candles_guarded("100k candles", c, sma);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("100000 candles"), "{}", desc(&svg));
    }

    #[test]
    fn candle_titles_are_escaped() {
        let svg = candle_chart_svg(HOSTILE_TITLE, &candles(3), &[None; 3], CANDLE_CHART_SIZE);
        assert_sane_svg(&svg);
        assert!(!svg.contains("<script>"));
        assert_eq!(title(&svg), HOSTILE_TITLE_ESCAPED);
        // The text alternative starts with the title: escaped there too.
        assert!(
            desc(&svg).starts_with(HOSTILE_TITLE_ESCAPED),
            "{}",
            desc(&svg)
        );
    }

    /// The symbol reaches the chart only through the title; a hostile symbol
    /// in the candles themselves is never written into the SVG.
    #[test]
    fn hostile_symbols_are_escaped_or_left_out() {
        let symbol = "<b>A&B\"'</b>";
        let mut c = candles(3);
        c.iter_mut().for_each(|c| c.symbol = symbol.into());
        let svg = candle_chart_svg(
            &format!("{symbol} 1s candles"),
            &c,
            &[None; 3],
            CANDLE_CHART_SIZE,
        );
        assert_sane_svg(&svg);
        assert!(
            !svg.contains("<b>") && !svg.contains("A&B"),
            "raw symbol in the SVG"
        );
        assert_eq!(
            title(&svg),
            "&lt;b&gt;A&amp;B&quot;&#39;&lt;/b&gt; 1s candles"
        );
    }

    #[test]
    fn odd_canvas_sizes_still_draw() {
        for size in [(0, 0), (1, 1), (u32::MAX, u32::MAX), (720, 0)] {
            let svg = finishes("odd size", move || {
                candle_chart_svg("X", &candles(5), &[None; 5], size)
            });
            assert_sane_svg(&svg);
        }
    }

    #[test]
    fn candles_sharing_one_timestamp_draw() {
        // All at one instant (a zero-width time axis) and all at one price.
        let c: Vec<Candle> = (0..5).map(|_| flat(T0, 7.0, 1.0)).collect();
        let svg = draw_candles_guarded("one instant", c, vec![Some(7.0); 5]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("5 candles"), "{}", desc(&svg));
        assert_distinct(time_labels_of(&svg), 1);
    }

    #[test]
    fn zero_volume_everywhere_draws_an_empty_volume_axis() {
        let c: Vec<Candle> = (0..4).map(|i| flat(T0 + i * 1_000, 1.0, 0.0)).collect();
        let svg = draw_candles_guarded("no volume", c, vec![None; 4]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("volume 0"), "{}", desc(&svg));
    }

    #[test]
    fn timestamps_at_the_clamp_limits_draw() {
        for start in [TIME_LIMIT, -TIME_LIMIT, TIME_LIMIT - 1_000, i64::MIN + 1] {
            let svg = draw_candles_guarded("at the limit", vec![flat(start, 1.0, 1.0)], vec![None]);
            assert_sane_svg(&svg);
            assert!(desc(&svg).contains("1 candles"), "{}", desc(&svg));
        }
    }

    #[test]
    fn price_text_is_readable_at_any_size() {
        assert_eq!(price_text(101.256), "101.26");
        assert_eq!(price_text(-0.0), "0.00");
        assert_eq!(price_text(1e300), "1.000e300");
        assert_eq!(price_text(0.000_5), "5.000e-4");
        assert_eq!(price_text(f64::NAN), NO_VALUE);
    }
}
