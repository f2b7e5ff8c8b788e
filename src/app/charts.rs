//! Charts drawn with plotters into SVG strings. The same functions run on the
//! server (first paint) and in the browser (live redraws), so both always
//! agree on what a chart looks like.

use plotters::prelude::*;

use crate::model::Tick;

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
pub fn price_chart_svg(title: &str, ticks: &[Tick], (width, height): (u32, u32)) -> String {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw_price_chart(&root, ticks).and_then(|()| root.present())
    };
    if drawn.is_err() {
        // Plotters only fails on backend errors; an empty frame is better than a broken page.
        svg = format!(
            r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"></svg>"#
        );
    }
    with_accessible_text(svg, title, &price_description(title, ticks))
}

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

fn draw_price_chart<DB: DrawingBackend>(
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
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(AXIS_TEXT)
        .label_style(("sans-serif", 12).into_font().color(&AXIS_TEXT))
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
