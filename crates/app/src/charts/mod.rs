//! Charts drawn with plotters into SVG strings. The same functions run on the
//! server (first paint) and in the browser (live redraws), so both always
//! agree on what a chart looks like.
//!
//! Every chart first cleans its input (see "Input hygiene" below): plotters'
//! tick search never ends on an axis whose width is infinite (an infinite
//! volume, or finite values whose difference overflows), so a chart only ever
//! hands it finite, bounded, non-empty ranges, and no label or text
//! alternative can say NaN or inf.
//!
//! This module holds what every chart shares: the input hygiene, the axes,
//! [`render_svg`] and the text alternative. Each chart is its own module,
//! the look is in `style`.

use std::ops::Range;

use plotters::prelude::*;

use crate::format::{clock_minutes, clock_time, escape_xml};

mod candles;
mod engagement;
mod marks;
mod sentiment;
mod style;
#[cfg(test)]
mod test_support;

pub use candles::{candle_chart_svg, CANDLE_CHART_SIZE};
pub use engagement::{engagement_chart_svg, ENGAGEMENT_CHART_SIZE};
pub use sentiment::{sentiment_chart_svg, SENTIMENT_CHART_SIZE};

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

fn plottable_time(ts: i64) -> i64 {
    ts.clamp(-TIME_LIMIT, TIME_LIMIT)
}

/// The canvas size: at least big enough for the margins and label areas,
/// at most a size no page needs (so pixel arithmetic cannot overflow).
fn canvas((width, height): (u32, u32)) -> (u32, u32) {
    (width.clamp(160, 4096), height.clamp(120, 4096))
}

// ---------------------------------------------------------------- axes

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

// ------------------------------------------------------------ drawing

/// What a chart drew: plotters' elements, plus SVG markup of its own to lay
/// over them (see `candles`: many marks in one path). Plotters errors carry
/// the backend's type; the callers only need to know it failed.
type DrawResult = Result<Overlay, String>;

/// SVG elements a chart writes itself, drawn above plotters' output. Only
/// numbers and constant colours go into it, never user text.
type Overlay = String;

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
        draw(&root).and_then(|overlay| {
            root.present().map_err(|e| e.to_string())?;
            Ok(overlay)
        })
    };
    match drawn {
        Ok(overlay) => {
            if let Some(end) = svg.rfind("</svg>") {
                svg.insert_str(end, &overlay);
            }
        }
        // Plotters only fails on backend errors; an empty frame is better than a broken page.
        Err(_) => svg = empty_frame(width, height),
    }
    with_accessible_text(svg, title, description)
}

fn empty_frame(width: u32, height: u32) -> String {
    format!(
        r#"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"></svg>"#
    )
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
    use super::test_support::{assert_sane_svg, desc, well_formed};
    use super::*;

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
    fn axes_are_never_empty_or_infinite() {
        assert_eq!(time_axis(5_000, 5_000), 5_000..6_000);
        assert_eq!(
            time_axis(-TIME_LIMIT, -TIME_LIMIT),
            -TIME_LIMIT..1_000 - TIME_LIMIT
        );
        let flat = value_axis(Some((42.0, 42.0)));
        assert!(flat.start < 42.0 && flat.end > 42.0, "{flat:?}");
        let widest = value_axis(Some((-VALUE_LIMIT, VALUE_LIMIT)));
        assert!(widest.start.is_finite() && widest.end.is_finite());
        assert!((widest.end - widest.start).is_finite(), "{widest:?}");
        assert_eq!(bar_axis(f64::NAN, 1.1, 1.0), 0.0..1.0);
        assert!(bar_axis(VALUE_LIMIT, 1.1, 1.0).end.is_finite());
    }

    #[test]
    fn the_empty_frame_gets_the_text_alternative_escaped() {
        let svg = with_accessible_text(empty_frame(10, 20), "a<b & \"c\"", "d'e");
        assert_sane_svg(&svg);
        assert!(svg.starts_with(r#"<svg width="10" height="20""#), "{svg}");
        assert!(
            svg.contains("<title>a&lt;b &amp; &quot;c&quot;</title>"),
            "{svg}"
        );
        assert_eq!(desc(&svg), "d&#39;e");
    }

    /// The check every chart test relies on has to be able to say no.
    #[test]
    fn the_well_formedness_check_rejects_broken_svg() {
        let good =
            r#"<svg a="1" b='2'><g><text x="1">a &amp; b &#39; &#x27;</text></g><rect/></svg>"#;
        assert_eq!(well_formed(good), Ok(()));
        let broken = [
            "",
            "<g></g>",
            "<svg></svg><svg></svg>",
            "<svg></svg>trailing",
            "<svg><g></svg>",
            "<svg><g></g>",
            "<svg></g></svg>",
            "<svg><text>a & b</text></svg>",
            "<svg><text>a &bogus; b</text></svg>",
            "<svg><text>a < b</text></svg>",
            "<svg a=1></svg>",
            r#"<svg a="1></svg>"#,
            r#"<svg a="x"b="y"></svg>"#,
            r#"<svg a="1" a="2"></svg>"#,
            r#"<svg a="<"></svg>"#,
            r#"<svg a="&"></svg>"#,
            "<svg><text>\u{7}</text></svg>",
            "<svg><1a/></svg>",
            "<svgx></svgx>",
        ];
        for svg in broken {
            assert!(well_formed(svg).is_err(), "accepted {svg:?}");
        }
    }
}
