//! Charts drawn with plotters into SVG strings. The same functions run on the
//! server (first paint) and in the browser (live redraws), so both always
//! agree on what a chart looks like.
//!
//! Every chart first cleans its input (see "Input hygiene" below): plotters'
//! tick search never ends on an axis whose width is infinite (an infinite
//! volume, or finite values whose difference overflows), so a chart only ever
//! hands it finite, bounded, non-empty ranges, and no label or text
//! alternative can say NaN or inf.

use std::ops::Range;

use plotters::chart::MeshStyle;
use plotters::prelude::*;

use pulse_core::analytics::engagement::RateBucket;
use pulse_core::model::Candle;

/// The candle chart: price candles with an SMA overlay above, volume bars below.
pub const CANDLE_CHART_SIZE: (u32, u32) = (720, 360);
pub const SENTIMENT_CHART_SIZE: (u32, u32) = (560, 220);
pub const ENGAGEMENT_CHART_SIZE: (u32, u32) = (560, 220);

const GRID: RGBColor = RGBColor(226, 232, 240);
const AXIS_TEXT: RGBColor = RGBColor(71, 85, 105);
pub const UP: RGBColor = RGBColor(4, 120, 87);
pub const DOWN: RGBColor = RGBColor(185, 28, 28);
/// The SMA overlay.
pub const SMA_LINE: RGBColor = RGBColor(37, 99, 235);
pub const OVERALL_LINE: RGBColor = RGBColor(109, 40, 217);
pub const SYMBOL_LINE: RGBColor = RGBColor(14, 116, 144);
pub const LIKES: RGBColor = RGBColor(219, 39, 119);
pub const SHARES: RGBColor = RGBColor(109, 40, 217);
pub const COMMENTS: RGBColor = RGBColor(217, 119, 6);
const ZERO: RGBColor = RGBColor(148, 163, 184);

// ---------------------------------------------------------------- text

/// Escapes text for use inside SVG/XML character data and attributes.
///
/// Characters XML 1.0 forbids even when escaped (most C0 controls, U+FFFE,
/// U+FFFF) become U+FFFD, so a symbol or title can never break the document.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
    out
}

/// Formats Unix ms as `HH:MM:SS` (UTC), without pulling a date library into the WASM.
pub fn clock_time(ts: i64) -> String {
    let secs = ts.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `HH:MM` (UTC).
pub fn clock_minutes(ts: i64) -> String {
    let mut time = clock_time(ts);
    time.truncate(5);
    time
}

/// What a formatter shows for a value it cannot show (never "NaN"/"inf").
const NO_VALUE: &str = "–";

/// Short numbers for axes: 950, 12.3k, 4.5M, 7.1B, 2.0T, then 1.6e308.
pub fn compact(value: f64) -> String {
    if !value.is_finite() {
        return NO_VALUE.to_owned();
    }
    let value = if value == 0.0 { 0.0 } else { value }; // no "-0"
    let abs = value.abs();
    if abs >= 1e15 {
        format!("{value:.1e}")
    } else if abs >= 1e12 {
        format!("{:.1}T", value / 1e12)
    } else if abs >= 1e9 {
        format!("{:.1}B", value / 1e9)
    } else if abs >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if abs >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if abs >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if abs >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
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

/// An axis label for `value` when ticks are about `step` apart: as many
/// decimals as the step needs (2 to 8), scientific notation once the number
/// would not fit the label area.
fn axis_number(value: f64, step: f64) -> String {
    if !value.is_finite() {
        return String::new();
    }
    let step = if step.is_finite() && step > 0.0 {
        step
    } else {
        1.0
    };
    // Ticks can land on float noise (1e-17, -0) where 0 was meant.
    let value = if value.abs() < step * 1e-6 {
        0.0
    } else {
        value
    };
    if value.abs() >= 1e9 {
        // Mantissa digits down to the step's decade: 1.0001e300 next to 1.0002e300.
        let digits = (value.abs().log10().floor() - step.log10().floor()).clamp(1.0, 6.0) as usize;
        format!("{value:.digits$e}")
    } else {
        let decimals = (-step.log10()).ceil().clamp(2.0, 8.0) as usize;
        format!("{value:.decimals$}")
    }
}

// ------------------------------------------------------- input hygiene

/// Largest magnitude a chart plots; larger finite values are clamped to it.
/// Far beyond any real price or volume, and small enough that an axis width
/// (difference of two values, plus headroom) can never overflow to infinity.
const VALUE_LIMIT: f64 = 1e300;

/// Timestamps are clamped to ±8.64e15 ms (the range of a JavaScript `Date`),
/// so integer axis arithmetic, and plotters' tick search on it, cannot overflow.
const TIME_LIMIT: i64 = 8_640_000_000_000_000;

/// A finite value, clamped to the plottable range; `None` for NaN/±inf.
fn plottable(value: f64) -> Option<f64> {
    value
        .is_finite()
        .then(|| value.clamp(-VALUE_LIMIT, VALUE_LIMIT))
}

/// A volume as a bar height: NaN and negative volumes draw nothing, and an
/// overflowed (+inf) or enormous volume draws the tallest bar.
fn bar_height(volume: f64) -> f64 {
    if volume > 0.0 {
        volume.min(VALUE_LIMIT)
    } else {
        0.0
    }
}

fn plottable_time(ts: i64) -> i64 {
    ts.clamp(-TIME_LIMIT, TIME_LIMIT)
}

/// A time axis from `start` to `end`, at least 1 s wide (so second labels
/// can differ). Callers pass [`plottable_time`]s plus at most a bucket, and
/// every point they draw lies inside: plotters' pixel mapping overflows for
/// points far outside the axis.
fn time_axis(start: i64, end: i64) -> Range<i64> {
    start..end.max(start.saturating_add(1_000))
}

/// A time label format and how many labels an axis may have so that no two
/// read the same: `HH:MM` when `minutes` is asked for and the axis spans at
/// least two minutes, else `HH:MM:SS`. With at most span/resolution labels
/// plotters steps by at least the resolution.
fn time_labels(axis: &Range<i64>, minutes: bool, most: usize) -> (usize, fn(i64) -> String) {
    let span = axis.end.saturating_sub(axis.start);
    let (unit, format): (i64, fn(i64) -> String) = if minutes && span >= 120_000 {
        (60_000, clock_minutes)
    } else {
        (1_000, clock_time)
    };
    let count = usize::try_from(span / unit).map_or(most, |n| n.clamp(1, most));
    (count, format)
}

/// The smallest and largest of `values` (all finite), or `None` if there are none.
fn bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((low, high)) => Some((low.min(v), high.max(v))),
    })
}

/// A value axis around `low..=high` (finite, within [`VALUE_LIMIT`]) with
/// 8 % headroom; a flat series still gets a non-zero width.
fn value_axis(bounds: Option<(f64, f64)>) -> Range<f64> {
    let Some((low, high)) = bounds else {
        return 0.0..1.0;
    };
    let magnitude = low.abs().max(high.abs());
    let pad = ((high - low) * 0.08).max(magnitude * 1e-4).max(1e-6);
    (low - pad)..(high + pad)
}

/// A `0..top` axis for bars up to `max` with `headroom`, at least `min_top`
/// high (`f64::max` also turns a NaN into `min_top`) and never infinite.
fn bar_axis(max: f64, headroom: f64, min_top: f64) -> Range<f64> {
    0.0..(max * headroom).max(min_top).min(VALUE_LIMIT * 2.0)
}

/// The canvas size: at least big enough for the margins and label areas,
/// at most a size no page needs (so pixel arithmetic cannot overflow).
fn canvas((width, height): (u32, u32)) -> (u32, u32) {
    (width.clamp(160, 4096), height.clamp(120, 4096))
}

// ------------------------------------------------------------ drawing

/// Draws with plotters into an SVG string and adds the text alternative.
fn render_svg(
    size: (u32, u32),
    title: &str,
    description: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> String {
    let (width, height) = canvas(size);
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw(&root).and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    if drawn.is_err() {
        // Plotters only fails on backend errors; an empty frame is better than a broken page.
        svg = format!(
            r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"></svg>"#
        );
    }
    with_accessible_text(svg, title, description)
}

/// Plotters errors carry the backend's type; the callers only need to know it failed.
type DrawResult = Result<(), String>;

/// Pulse's grid and axis look, on any chart's mesh.
fn house_mesh<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    labels: TextStyle<'b>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged,
    Y: Ranged,
    DB: DrawingBackend,
{
    mesh.light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS_TEXT)
        .label_style(labels)
}

fn label_font<'a>() -> TextStyle<'a> {
    ("sans-serif", 13).into_font().color(&AXIS_TEXT)
}

// ------------------------------------------------------- candle chart

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

fn draw_candles<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    bars: &[Bar],
    interval: i64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
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
    let body = |start: i64| (start + interval * 15 / 100, start + interval * 85 / 100);
    let color = |b: &Bar| if b.rising() { UP } else { DOWN };
    price.draw_series(bars.iter().map(|b| {
        let mid = b.start + interval / 2;
        PathElement::new(vec![(mid, b.low), (mid, b.high)], color(b).stroke_width(1))
    }))?;
    price.draw_series(bars.iter().map(|b| {
        let (x0, x1) = body(b.start);
        let (top, bottom) = (b.open.max(b.close), b.open.min(b.close));
        Rectangle::new([(x0, top), (x1, bottom)], color(b).filled().stroke_width(1))
    }))?;
    price.draw_series(LineSeries::new(
        bars.iter()
            .filter_map(|b| b.sma.map(|v| (b.start + interval / 2, v))),
        SMA_LINE.stroke_width(2),
    ))?;

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
    volume.draw_series(bars.iter().map(|b| {
        let (x0, x1) = body(b.start);
        Rectangle::new([(x0, b.volume), (x1, 0.0)], color(b).mix(0.45).filled())
    }))?;
    Ok(())
}

// ---------------------------------------------------- sentiment chart

/// The points that can be drawn: finite, compound clamped to its [-1, 1] scale.
fn sentiment_points(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    points
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|&(ts, v)| (plottable_time(ts), v.clamp(-1.0, 1.0)))
        .collect()
}

/// Rolling mean compound over time, overall and (optionally) for one symbol.
pub fn sentiment_chart_svg(
    title: &str,
    overall: &[(i64, f64)],
    symbol: Option<(&str, &[(i64, f64)])>,
    size: (u32, u32),
) -> String {
    let overall = sentiment_points(overall);
    let symbol = symbol.map(|(name, points)| (name, sentiment_points(points)));
    let mut description = match overall.last() {
        Some((_, mean)) => format!(
            "{title}: overall mean compound {mean:+.2} over {} updates",
            overall.len()
        ),
        None => format!("{title}: no posts yet"),
    };
    if let Some((name, points)) = &symbol {
        if let Some((_, mean)) = points.last() {
            description.push_str(&format!(", {name} {mean:+.2}"));
        }
    }
    let symbol_points = symbol.as_ref().map_or(&[][..], |(_, p)| p.as_slice());
    render_svg(size, title, &description, |root| {
        draw_sentiment(root, &overall, symbol_points).map_err(|e| e.to_string())
    })
}

fn draw_sentiment<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    overall: &[(i64, f64)],
    symbol: &[(i64, f64)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let times = overall.iter().chain(symbol).map(|(ts, _)| *ts);
    let x_range = match (times.clone().min(), times.max()) {
        (Some(start), Some(end)) => time_axis(start, end),
        _ => time_axis(0, 60_000),
    };
    let (start, end) = (x_range.start, x_range.end);
    let (x_labels, x_label) = time_labels(&x_range, false, 4);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(x_range, -1.0..1.0)?;
    house_mesh(&mut chart.configure_mesh(), label_font())
        .x_labels(x_labels)
        .y_labels(5)
        .x_label_formatter(&|ts| x_label(*ts))
        .y_label_formatter(&|v| format!("{:+.1}", if *v == 0.0 { 0.0 } else { *v }))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(start, 0.0), (end, 0.0)],
        ZERO.stroke_width(1),
    )))?;
    chart.draw_series(LineSeries::new(
        overall.iter().copied(),
        OVERALL_LINE.stroke_width(2),
    ))?;
    chart.draw_series(LineSeries::new(
        symbol.iter().copied(),
        SYMBOL_LINE.stroke_width(2),
    ))?;
    Ok(())
}

// --------------------------------------------------- engagement chart

/// Longest bucket a chart draws (one year): keeps bucket arithmetic far from overflow.
const MAX_BUCKET_MS: i64 = 366 * 86_400_000;

/// A bucket as drawn: start clamped, counts non-negative.
struct Stack {
    start: i64,
    likes: i64,
    comments: i64,
    shares: i64,
}

impl Stack {
    fn total(&self) -> i64 {
        self.likes
            .saturating_add(self.comments)
            .saturating_add(self.shares)
    }
}

fn stacks(buckets: &[RateBucket]) -> Vec<Stack> {
    let mut stacks: Vec<Stack> = buckets
        .iter()
        .map(|b| Stack {
            start: plottable_time(b.start),
            likes: b.likes.max(0),
            comments: b.comments.max(0),
            shares: b.shares.max(0),
        })
        .collect();
    stacks.sort_by_key(|s| s.start);
    stacks
}

/// Likes, shares and comments per bucket, stacked.
pub fn engagement_chart_svg(
    title: &str,
    buckets: &[RateBucket],
    bucket_ms: i64,
    size: (u32, u32),
) -> String {
    let bucket_ms = bucket_ms.clamp(1, MAX_BUCKET_MS);
    let stacks = stacks(buckets);
    let (likes, shares, comments) = stacks.iter().fold((0i64, 0i64, 0i64), |(l, s, c), b| {
        (
            l.saturating_add(b.likes),
            s.saturating_add(b.shares),
            c.saturating_add(b.comments),
        )
    });
    let description = match (stacks.first(), stacks.last()) {
        (Some(first), Some(last)) => format!(
            "{title}: from {} to {}, {likes} likes, {shares} shares, {comments} comments",
            clock_time(first.start),
            clock_time(last.start + bucket_ms),
        ),
        _ => format!("{title}: no engagement yet"),
    };
    render_svg(size, title, &description, |root| {
        draw_engagement(root, &stacks, bucket_ms).map_err(|e| e.to_string())
    })
}

fn draw_engagement<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    stacks: &[Stack],
    bucket_ms: i64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_range = match (stacks.first(), stacks.last()) {
        (Some(first), Some(last)) => time_axis(first.start, last.start + bucket_ms),
        _ => time_axis(0, 60 * bucket_ms),
    };
    let (x_labels, x_label) = time_labels(&x_range, true, 4);
    let max = stacks.iter().map(Stack::total).max().unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(x_range, bar_axis(max as f64, 1.15, 4.0))?;
    house_mesh(chart.configure_mesh().disable_x_mesh(), label_font())
        .x_labels(x_labels)
        .y_labels(4)
        .x_label_formatter(&|ts| x_label(*ts))
        .y_label_formatter(&|v| compact(*v))
        .draw()?;
    let gap = (bucket_ms / 8).max(1);
    for b in stacks {
        let (x0, x1) = (b.start + gap, b.start + bucket_ms - gap);
        let mut base = 0.0;
        for (count, color) in [(b.likes, LIKES), (b.comments, COMMENTS), (b.shares, SHARES)] {
            if count > 0 {
                let top = base + count as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, top), (x1, base)],
                    color.filled(),
                )))?;
                base = top;
            }
        }
    }
    Ok(())
}

/// Adds `role="img"`, `<title>` and `<desc>` right after the opening `<svg …>` tag.
fn with_accessible_text(svg: String, title: &str, description: &str) -> String {
    let Some(open_end) = svg.find('>') else {
        return svg;
    };
    let mut out = String::with_capacity(svg.len() + title.len() + description.len() + 64);
    out.push_str(&svg[..open_end]);
    out.push_str(r#" role="img">"#);
    out.push_str("<title>");
    out.push_str(&escape_xml(title));
    out.push_str("</title><desc>");
    out.push_str(&escape_xml(description));
    out.push_str("</desc>");
    out.push_str(&svg[open_end + 1..]);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, RecvTimeoutError};
    use std::time::Duration;

    use super::*;
    use pulse_core::model::CandleInterval;

    /// Runs `render` on its own thread and fails if it has not finished in 20 s:
    /// a guard against endless loops, not a performance assertion.
    fn finishes<T: Send + 'static>(what: &str, render: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = channel();
        std::thread::spawn(move || {
            let _ = done.send(render());
        });
        match result.recv_timeout(Duration::from_secs(20)) {
            Ok(value) => value,
            Err(RecvTimeoutError::Timeout) => panic!("{what}: still drawing after 20 s"),
            Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked while drawing"),
        }
    }

    /// Well-formed enough for browsers: one root, balanced tags, no raw `<` in text.
    fn assert_well_formed_svg(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                stack.push(name.to_owned());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
        let forbidden = svg
            .chars()
            .find(|&c| c < ' ' && !matches!(c, '\t' | '\n' | '\r'));
        assert_eq!(forbidden, None, "a character XML forbids");
    }

    /// Well-formed, and no number anywhere in it (labels, `<desc>`, coordinates) is NaN or inf.
    fn assert_sane_svg(svg: &str) {
        assert_well_formed_svg(svg);
        let lower = svg.to_ascii_lowercase();
        assert!(!lower.contains("nan"), "NaN in {}", excerpt(svg, "nan"));
        assert!(!lower.contains("inf"), "inf in {}", excerpt(svg, "inf"));
    }

    fn excerpt(svg: &str, needle: &str) -> String {
        let at = svg.to_ascii_lowercase().find(needle).unwrap_or(0);
        let (from, to) = (at.saturating_sub(80), at + 80);
        svg.char_indices()
            .filter(|(i, _)| (from..to).contains(i))
            .map(|(_, c)| c)
            .collect()
    }

    /// The text of every `<text>` element (the axis labels).
    fn labels(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_owned())
            })
            .collect()
    }

    /// At least `at_least` labels, no two alike (a repeated label tells the reader nothing).
    fn assert_distinct(labels: Vec<String>, at_least: usize) {
        let mut distinct = labels.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() >= at_least, "labels {labels:?}");
        assert_eq!(distinct.len(), labels.len(), "repeated labels {labels:?}");
    }

    fn time_labels_of(svg: &str) -> Vec<String> {
        labels(svg)
            .into_iter()
            .filter(|l| l.contains(':'))
            .collect()
    }

    fn desc(svg: &str) -> &str {
        let start = svg.find("<desc>").expect("no <desc>") + "<desc>".len();
        &svg[start..svg.find("</desc>").expect("no </desc>")]
    }

    /// Values a hostile or broken producer can put in front of a chart.
    const HOSTILE: [f64; 14] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
        1.6e308,
        1e300,
        -1e300,
        1e-300,
        -1e-300,
        f64::MIN_POSITIVE,
        5e-324,
        0.0,
        -0.0,
    ];

    const T0: i64 = 1_780_000_000_000;

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
        assert!(svg.to_ascii_uppercase().contains("#2563EB"), "no SMA line");
        assert!(svg.contains("<rect"), "no candle bodies");
        assert!(labels(&svg).len() >= 6, "no axis labels");
        assert!(svg.contains(r#"role="img""#));
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
        let svg = draw_sentiment_guarded("sentiment", mood(3), "AAPL", vec![]);
        assert_distinct(time_labels_of(&svg), 1);
        let svg = draw_engagement_guarded("engagement", activity(13), 10_000);
        assert_distinct(time_labels_of(&svg), 1);
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
        let title = "<script>alert(\"x\")</script> & 'AT&T'\u{7}";
        let svg = candle_chart_svg(title, &candles(3), &[None; 3], CANDLE_CHART_SIZE);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains(
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;AT&amp;T&#39;\u{FFFD}"
        ));
        assert_sane_svg(&svg);
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

    // ----------------------------------------------------- sentiment

    fn mood(n: usize) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (T0 + i as i64 * 500, (i as f64 * 0.3).sin() * 0.8))
            .collect()
    }

    fn draw_sentiment_guarded(
        what: &str,
        overall: Vec<(i64, f64)>,
        name: &'static str,
        symbol: Vec<(i64, f64)>,
    ) -> String {
        finishes(what, move || {
            sentiment_chart_svg(
                "Rolling sentiment",
                &overall,
                Some((name, &symbol)),
                SENTIMENT_CHART_SIZE,
            )
        })
    }

    #[test]
    fn sentiment_with_hostile_values_finishes_and_stays_finite() {
        for value in HOSTILE {
            let mut overall = mood(5);
            overall.push((T0 + 10_000, value));
            let symbol = vec![(T0, value)];
            let svg = draw_sentiment_guarded("hostile compound", overall, "AAPL", symbol);
            assert_sane_svg(&svg);
        }
    }

    #[test]
    fn sentiment_text_uses_the_last_finite_value() {
        let overall = vec![(T0, 0.25), (T0 + 1_000, f64::NAN)];
        let symbol = vec![(T0, 0.5), (T0 + 1_000, f64::INFINITY)];
        let svg = draw_sentiment_guarded("NaN last", overall, "AAPL", symbol);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains("overall mean compound +0.25 over 1 updates"),
            "{}",
            desc(&svg)
        );
        assert!(desc(&svg).contains("AAPL +0.50"), "{}", desc(&svg));
    }

    #[test]
    fn sentiment_empty_one_point_and_many_draw() {
        let svg = draw_sentiment_guarded("empty", vec![], "AAPL", vec![]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("no posts yet"));
        let svg = draw_sentiment_guarded("one", vec![(T0, 0.5)], "AAPL", vec![(T0, -0.5)]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("over 1 updates"));
        assert_distinct(time_labels_of(&svg), 1);
        let svg = draw_sentiment_guarded("many", mood(300), "AAPL", mood(200));
        assert_sane_svg(&svg);
        assert!(labels(&svg).len() >= 4, "no axis labels");
        let svg = finishes("no symbol", || {
            sentiment_chart_svg("S", &mood(3), None, SENTIMENT_CHART_SIZE)
        });
        assert_sane_svg(&svg);
    }

    #[test]
    fn sentiment_extreme_timestamps_finish() {
        let overall = vec![(i64::MIN, 0.1), (i64::MAX, 0.2), (0, -0.3)];
        let svg = draw_sentiment_guarded("i64 ends", overall, "AAPL", vec![(i64::MAX, 1.0)]);
        assert_sane_svg(&svg);
    }

    #[test]
    fn sentiment_with_a_hundred_thousand_points_finishes() {
        let mut overall = mood(100_000);
        overall.push((T0 + 100_000_000, f64::NAN));
        let svg = draw_sentiment_guarded("100k", overall, "AAPL", mood(100_000));
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("over 100000 updates"));
    }

    #[test]
    fn sentiment_symbol_and_title_are_escaped() {
        let svg = finishes("escaping", || {
            sentiment_chart_svg(
                "Mood of <b>\"you\"</b>",
                &mood(3),
                Some(("<script>&'\u{0}", &mood(3))),
                SENTIMENT_CHART_SIZE,
            )
        });
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(
            svg.contains("&lt;script&gt;&amp;&#39;\u{FFFD}"),
            "{}",
            desc(&svg)
        );
        assert!(svg.contains("Mood of &lt;b&gt;&quot;you&quot;&lt;/b&gt;"));
        assert_sane_svg(&svg);
    }

    // ---------------------------------------------------- engagement

    fn bucket(start: i64, likes: i64, shares: i64, comments: i64) -> RateBucket {
        RateBucket {
            start,
            likes,
            shares,
            comments,
        }
    }

    fn activity(n: usize) -> Vec<RateBucket> {
        (0..n)
            .map(|i| {
                bucket(
                    T0 + i as i64 * 10_000,
                    i as i64 % 7,
                    i as i64 % 3,
                    i as i64 % 5,
                )
            })
            .collect()
    }

    fn draw_engagement_guarded(what: &str, buckets: Vec<RateBucket>, bucket_ms: i64) -> String {
        finishes(what, move || {
            engagement_chart_svg("Engagement", &buckets, bucket_ms, ENGAGEMENT_CHART_SIZE)
        })
    }

    #[test]
    fn engagement_with_extreme_counts_finishes() {
        let buckets = vec![
            bucket(T0, i64::MAX, i64::MAX, i64::MAX),
            bucket(T0 + 10_000, i64::MIN, -1, 0),
            bucket(T0 + 20_000, i64::MAX, 0, 1),
        ];
        let svg = draw_engagement_guarded("i64::MAX counts", buckets, 10_000);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains(&format!("{} likes", i64::MAX)),
            "{}",
            desc(&svg)
        );
        let long: Vec<String> = labels(&svg).into_iter().filter(|l| l.len() > 8).collect();
        assert!(long.is_empty(), "labels too long for the axis: {long:?}");
    }

    #[test]
    fn engagement_with_extreme_buckets_and_timestamps_finishes() {
        for bucket_ms in [i64::MIN, -1, 0, 1, i64::MAX] {
            for start in [i64::MIN, 0, T0, i64::MAX] {
                let buckets = vec![
                    bucket(start, 1, 2, 3),
                    bucket(start.saturating_add(1), 0, 0, 1),
                ];
                let svg = draw_engagement_guarded("extreme bucket", buckets, bucket_ms);
                assert_sane_svg(&svg);
            }
            assert_sane_svg(&draw_engagement_guarded(
                "empty, odd bucket",
                vec![],
                bucket_ms,
            ));
        }
    }

    #[test]
    fn engagement_empty_one_and_many_draw() {
        let svg = draw_engagement_guarded("empty", vec![], 10_000);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("no engagement yet"));
        let svg = draw_engagement_guarded("one", vec![bucket(T0, 1, 0, 0)], 10_000);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("1 likes, 0 shares, 0 comments"));
        assert_distinct(time_labels_of(&svg), 1);
        let svg = draw_engagement_guarded("many", activity(60), 10_000);
        assert_sane_svg(&svg);
        assert!(svg.contains("<rect"), "no bars");
        assert!(labels(&svg).len() >= 4, "no axis labels");
    }

    #[test]
    fn engagement_with_a_hundred_thousand_buckets_finishes() {
        let mut buckets = activity(100_000);
        buckets[50_000].likes = i64::MAX;
        let svg = draw_engagement_guarded("100k", buckets, 10_000);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains(&format!("{} likes", i64::MAX)),
            "{}",
            desc(&svg)
        );
    }

    #[test]
    fn engagement_titles_are_escaped() {
        let svg = finishes("escaping", || {
            engagement_chart_svg(
                "<script>&\"'</script>\u{1b}",
                &activity(3),
                10_000,
                ENGAGEMENT_CHART_SIZE,
            )
        });
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&amp;&quot;&#39;&lt;/script&gt;\u{FFFD}"));
        assert_sane_svg(&svg);
    }

    // ------------------------------------------------------- helpers

    #[test]
    fn compact_never_says_nan_or_inf_and_stays_short() {
        assert_eq!(compact(f64::INFINITY), NO_VALUE);
        assert_eq!(compact(f64::NEG_INFINITY), NO_VALUE);
        assert_eq!(compact(f64::NAN), NO_VALUE);
        assert_eq!(compact(1.6e308), "1.6e308");
        assert_eq!(compact(f64::MAX), "1.8e308");
        assert_eq!(compact(2.5e12), "2.5T");
        assert_eq!(compact(7.14e9), "7.1B");
        assert_eq!(compact(4.5e6), "4.5M");
        assert_eq!(compact(12_345.0), "12k");
        assert_eq!(compact(1_234.0), "1.2k");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(-0.0), "0");
        assert_eq!(compact(1e-300), "0.0");
    }

    #[test]
    fn axis_numbers_follow_the_step() {
        assert_eq!(axis_number(42.5, 0.5), "42.50");
        assert_eq!(axis_number(0.000_012, 0.000_002), "0.000012");
        assert_eq!(axis_number(-1e-17, 0.1), "0.00");
        assert_eq!(axis_number(-0.0, 0.1), "0.00");
        assert_eq!(axis_number(1e300, 1e299), "1.0e300");
        assert_eq!(axis_number(1.0001e300, 1e296), "1.0001e300");
        assert_eq!(axis_number(1.00005e300, 5e295), "1.00005e300");
        assert_eq!(axis_number(f64::NAN, 1.0), "");
        assert_eq!(axis_number(5.0, f64::NAN), "5.00");
    }

    #[test]
    fn price_text_is_readable_at_any_size() {
        assert_eq!(price_text(101.256), "101.26");
        assert_eq!(price_text(-0.0), "0.00");
        assert_eq!(price_text(1e300), "1.000e300");
        assert_eq!(price_text(0.000_5), "5.000e-4");
        assert_eq!(price_text(f64::NAN), NO_VALUE);
    }

    #[test]
    fn escape_xml_replaces_characters_xml_forbids() {
        assert_eq!(
            escape_xml("a\u{0}b\u{1b}c\td\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\td\u{FFFD}"
        );
        assert_eq!(escape_xml("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
    }

    #[test]
    fn clock_time_formats_utc() {
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(3_723_000), "01:02:03");
        assert_eq!(clock_time(-1_000), "23:59:59");
        assert_eq!(clock_time(i64::MIN).len(), 8);
        assert_eq!(clock_time(i64::MAX).len(), 8);
    }
}
