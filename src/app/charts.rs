//! Charts drawn with plotters into SVG strings. The same functions run on the
//! server (first paint) and in the browser (live redraws), so both always
//! agree on what a chart looks like.

use plotters::chart::MeshStyle;
use plotters::prelude::*;

use crate::analytics::engagement::RateBucket;
use crate::model::{Candle, Tick};

pub const PRICE_CHART_SIZE: (u32, u32) = (720, 300);

const LINE: RGBColor = RGBColor(37, 99, 235);
const GRID: RGBColor = RGBColor(226, 232, 240);
const AXIS_TEXT: RGBColor = RGBColor(71, 85, 105);

/// Escapes text for use inside SVG/XML character data and attributes.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
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

/// A line chart of tick prices with time and price axes.
///
/// `title` is shown to screen readers (`<title>`/`<desc>`); it is escaped.
pub fn price_chart_svg(title: &str, ticks: &[Tick], size: (u32, u32)) -> String {
    render_svg(size, title, &price_description(title, ticks), |root| {
        draw_price_chart(root, ticks)
    })
}

/// Draws with plotters into an SVG string and adds the text alternative.
fn render_svg(
    (width, height): (u32, u32),
    title: &str,
    description: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> String {
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

fn price_description(title: &str, ticks: &[Tick]) -> String {
    match (ticks.first(), ticks.last()) {
        (Some(first), Some(last)) => {
            let (low, high) = price_range(ticks);
            format!(
                "{title}: {} prices from {} to {}, last {:.2}, low {low:.2}, high {high:.2}",
                ticks.len(),
                clock_time(first.ts),
                clock_time(last.ts),
                last.price
            )
        }
        _ => format!("{title}: no prices yet"),
    }
}

fn price_range(ticks: &[Tick]) -> (f64, f64) {
    ticks
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
            (lo.min(t.price), hi.max(t.price))
        })
}

fn draw_price_chart(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    ticks: &[Tick],
) -> DrawResult {
    draw_price_line(root, ticks).map_err(|e| e.to_string())
}

fn draw_price_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    ticks: &[Tick],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (x_range, y_range) = match (ticks.first(), ticks.last()) {
        (Some(first), Some(last)) => {
            let (low, high) = price_range(ticks);
            let pad = ((high - low) * 0.08).max(high.abs() * 1e-4).max(1e-6);
            let end = if last.ts > first.ts {
                last.ts
            } else {
                first.ts + 1_000
            };
            (first.ts..end, (low - pad)..(high + pad))
        }
        _ => (0..60_000, 0.0..1.0),
    };
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(26)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y_range)?;
    house_mesh(
        &mut chart.configure_mesh(),
        ("sans-serif", 12).into_font().color(&AXIS_TEXT),
    )
    .x_labels(5)
    .y_labels(6)
    .x_label_formatter(&|ts| clock_time(*ts))
    .y_label_formatter(&|price| format!("{price:.2}"))
    .draw()?;
    chart.draw_series(LineSeries::new(
        ticks.iter().map(|t| (t.ts, t.price)),
        LINE.stroke_width(2),
    ))?;
    Ok(())
}

/// The candle chart: price candles with an SMA overlay above, volume bars below.
pub const CANDLE_CHART_SIZE: (u32, u32) = (720, 360);
pub const SENTIMENT_CHART_SIZE: (u32, u32) = (560, 220);
pub const ENGAGEMENT_CHART_SIZE: (u32, u32) = (560, 220);

pub const UP: RGBColor = RGBColor(4, 120, 87);
pub const DOWN: RGBColor = RGBColor(185, 28, 28);
/// The SMA overlay (the same blue as the tick line).
pub const SMA_LINE: RGBColor = LINE;
pub const OVERALL_LINE: RGBColor = RGBColor(109, 40, 217);
pub const SYMBOL_LINE: RGBColor = RGBColor(14, 116, 144);
pub const LIKES: RGBColor = RGBColor(219, 39, 119);
pub const SHARES: RGBColor = RGBColor(109, 40, 217);
pub const COMMENTS: RGBColor = RGBColor(217, 119, 6);
const ZERO: RGBColor = RGBColor(148, 163, 184);

/// `HH:MM` (UTC).
pub fn clock_minutes(ts: i64) -> String {
    let mut time = clock_time(ts);
    time.truncate(5);
    time
}

/// Short numbers for axes: 950, 12.3k, 4.5M.
pub fn compact(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if abs >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if abs >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

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

/// Candles of one symbol and interval (oldest first) with `sma` aligned to them.
pub fn candle_chart_svg(
    title: &str,
    candles: &[Candle],
    sma: &[Option<f64>],
    size: (u32, u32),
) -> String {
    render_svg(
        size,
        title,
        &candle_description(title, candles, sma),
        |root| draw_candles(root, candles, sma).map_err(|e| e.to_string()),
    )
}

fn candle_description(title: &str, candles: &[Candle], sma: &[Option<f64>]) -> String {
    let (Some(first), Some(last)) = (candles.first(), candles.last()) else {
        return format!("{title}: no candles yet");
    };
    let low = candles.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
    let high = candles
        .iter()
        .map(|c| c.high)
        .fold(f64::NEG_INFINITY, f64::max);
    let volume: f64 = candles.iter().map(|c| c.volume).sum();
    let sma = sma
        .last()
        .copied()
        .flatten()
        .map_or_else(String::new, |v| format!(", SMA {v:.2}"));
    format!(
        "{title}: {} candles from {} to {}, last close {:.2}, low {low:.2}, high {high:.2}, volume {}{sma}",
        candles.len(),
        clock_time(first.start),
        clock_time(last.start),
        last.close,
        compact(volume),
    )
}

fn draw_candles<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    candles: &[Candle],
    sma: &[Option<f64>],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (_, height) = root.dim_in_pixel();
    let (upper, lower) = root.split_vertically(height * 72 / 100);
    let interval = candles
        .first()
        .map_or(1_000, |c| c.interval.millis())
        .max(1);
    let minutes = interval >= 60_000;
    let (x_range, y_range, max_volume) = match (candles.first(), candles.last()) {
        (Some(first), Some(last)) => {
            let mut low = f64::INFINITY;
            let mut high = f64::NEG_INFINITY;
            for c in candles {
                low = low.min(c.low);
                high = high.max(c.high);
            }
            for v in sma.iter().flatten() {
                low = low.min(*v);
                high = high.max(*v);
            }
            let pad = ((high - low) * 0.08).max(high.abs() * 1e-4).max(1e-6);
            let volume = candles.iter().map(|c| c.volume).fold(0.0, f64::max);
            (
                first.start..last.start + interval,
                (low - pad)..(high + pad),
                volume,
            )
        }
        _ => (0..60 * interval, 0.0..1.0, 0.0),
    };
    let x_label = move |ts: &i64| {
        if minutes {
            clock_minutes(*ts)
        } else {
            clock_time(*ts)
        }
    };

    let mut price = ChartBuilder::on(&upper)
        .margin_top(10)
        .margin_right(12)
        .margin_left(4)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range.clone(), y_range)?;
    house_mesh(&mut price.configure_mesh(), label_font())
        .x_labels(6)
        .y_labels(6)
        .y_label_formatter(&|p| format!("{p:.2}"))
        .draw()?;
    let body = |start: i64| (start + interval * 15 / 100, start + interval * 85 / 100);
    price.draw_series(candles.iter().map(|c| {
        let mid = c.start + interval / 2;
        let color = if c.close >= c.open { UP } else { DOWN };
        PathElement::new(vec![(mid, c.low), (mid, c.high)], color.stroke_width(1))
    }))?;
    price.draw_series(candles.iter().map(|c| {
        let (x0, x1) = body(c.start);
        let color = if c.close >= c.open { UP } else { DOWN };
        let (top, bottom) = if (c.close - c.open).abs() < f64::EPSILON {
            (c.close, c.close)
        } else {
            (c.open.max(c.close), c.open.min(c.close))
        };
        Rectangle::new([(x0, top), (x1, bottom)], color.filled().stroke_width(1))
    }))?;
    price.draw_series(LineSeries::new(
        candles
            .iter()
            .zip(sma)
            .filter_map(|(c, v)| v.map(|v| (c.start + interval / 2, v))),
        SMA_LINE.stroke_width(2),
    ))?;

    let mut volume = ChartBuilder::on(&lower)
        .margin_right(12)
        .margin_left(4)
        .margin_bottom(4)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, 0.0..(max_volume * 1.1).max(1.0))?;
    house_mesh(volume.configure_mesh().disable_x_mesh(), label_font())
        .x_labels(6)
        .y_labels(3)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|v| compact(*v))
        .draw()?;
    volume.draw_series(candles.iter().map(|c| {
        let (x0, x1) = body(c.start);
        let color = if c.close >= c.open { UP } else { DOWN };
        Rectangle::new([(x0, c.volume), (x1, 0.0)], color.mix(0.45).filled())
    }))?;
    Ok(())
}

/// Rolling mean compound over time, overall and (optionally) for one symbol.
pub fn sentiment_chart_svg(
    title: &str,
    overall: &[(i64, f64)],
    symbol: Option<(&str, &[(i64, f64)])>,
    size: (u32, u32),
) -> String {
    let mut description = match overall.last() {
        Some((_, mean)) => format!(
            "{title}: overall mean compound {mean:+.2} over {} updates",
            overall.len()
        ),
        None => format!("{title}: no posts yet"),
    };
    if let Some((name, points)) = symbol {
        if let Some((_, mean)) = points.last() {
            description.push_str(&format!(", {name} {mean:+.2}"));
        }
    }
    render_svg(size, title, &description, |root| {
        draw_sentiment(root, overall, symbol.map(|(_, p)| p).unwrap_or(&[]))
            .map_err(|e| e.to_string())
    })
}

fn draw_sentiment<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    overall: &[(i64, f64)],
    symbol: &[(i64, f64)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (mut start, mut end) = (i64::MAX, i64::MIN);
    for (ts, _) in overall.iter().chain(symbol) {
        start = start.min(*ts);
        end = end.max(*ts);
    }
    if start > end {
        (start, end) = (0, 60_000);
    }
    if end <= start {
        end = start + 1_000;
    }
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(start..end, -1.0..1.0)?;
    house_mesh(&mut chart.configure_mesh(), label_font())
        .x_labels(4)
        .y_labels(5)
        .x_label_formatter(&|ts| clock_time(*ts))
        .y_label_formatter(&|v| format!("{v:+.1}"))
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

/// Likes, shares and comments per bucket, stacked.
pub fn engagement_chart_svg(
    title: &str,
    buckets: &[RateBucket],
    bucket_ms: i64,
    size: (u32, u32),
) -> String {
    let (likes, shares, comments) = buckets.iter().fold((0, 0, 0), |(l, s, c), b| {
        (
            l + b.likes.max(0),
            s + b.shares.max(0),
            c + b.comments.max(0),
        )
    });
    let description = match (buckets.first(), buckets.last()) {
        (Some(first), Some(last)) => format!(
            "{title}: from {} to {}, {likes} likes, {shares} shares, {comments} comments",
            clock_time(first.start),
            clock_time(last.start + bucket_ms),
        ),
        _ => format!("{title}: no engagement yet"),
    };
    render_svg(size, title, &description, |root| {
        draw_engagement(root, buckets, bucket_ms.max(1)).map_err(|e| e.to_string())
    })
}

fn draw_engagement<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    buckets: &[RateBucket],
    bucket_ms: i64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_range = match (buckets.first(), buckets.last()) {
        (Some(first), Some(last)) => first.start..last.start + bucket_ms,
        _ => 0..60 * bucket_ms,
    };
    let max = buckets
        .iter()
        .map(|b| b.likes.max(0) + b.shares.max(0) + b.comments.max(0))
        .max()
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(x_range, 0.0..(max as f64 * 1.15).max(4.0))?;
    house_mesh(chart.configure_mesh().disable_x_mesh(), label_font())
        .x_labels(4)
        .y_labels(4)
        .x_label_formatter(&|ts| clock_minutes(*ts))
        .y_label_formatter(&|v| compact(*v))
        .draw()?;
    let gap = (bucket_ms / 8).max(1);
    for b in buckets {
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
    use super::*;

    fn ticks(n: usize) -> Vec<Tick> {
        (0..n)
            .map(|i| Tick {
                symbol: "AAPL".into(),
                price: 100.0 + (i as f64 * 0.7).sin() * 3.0,
                volume: 10.0,
                ts: 1_780_000_000_000 + i as i64 * 250,
            })
            .collect()
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
    }

    #[test]
    fn empty_series_draws_an_empty_chart() {
        let svg = price_chart_svg("AAPL", &[], PRICE_CHART_SIZE);
        assert_well_formed_svg(&svg);
        assert!(svg.contains("no prices yet"));
        assert!(
            !svg.to_ascii_uppercase().contains("#2563EB"),
            "a data line was drawn"
        );
    }

    #[test]
    fn one_point_series_draws() {
        let svg = price_chart_svg("AAPL", &ticks(1), PRICE_CHART_SIZE);
        assert_well_formed_svg(&svg);
        assert!(svg.contains("1 prices"));
    }

    #[test]
    fn many_point_series_draws_a_line_with_axis_labels() {
        let svg = price_chart_svg("AAPL", &ticks(500), PRICE_CHART_SIZE);
        assert_well_formed_svg(&svg);
        assert!(
            svg.to_ascii_uppercase().contains("#2563EB"),
            "no data line drawn"
        );
        assert!(svg.contains("<text"), "no axis labels");
        assert!(svg.contains(r#"role="img""#));
    }

    #[test]
    fn titles_are_escaped() {
        let svg = price_chart_svg("<script>alert(1)</script>", &ticks(3), PRICE_CHART_SIZE);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert_well_formed_svg(&svg);
    }

    #[test]
    fn clock_time_formats_utc() {
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(3_723_000), "01:02:03");
        assert_eq!(clock_time(-1_000), "23:59:59");
    }
}
