//! Marks a chart writes as SVG paths of its own, laid over plotters' axes
//! (see [`super::render_svg`]): many bars or candles of one colour in one
//! `<path>`, instead of an element each, keep a chart's size and the
//! browser's parse time flat in the number of marks.

use std::fmt::Write;

use plotters::style::RGBColor;

/// `#RRGGBB`: the colours are constants, so nothing here needs escaping.
pub fn hex(color: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
}

/// A rectangle between two pixel corners, at least one pixel each way (a
/// flat candle or a bar of one still shows), appended to a path's `d`.
pub fn rect_path(d: &mut String, (x0, y0): (i32, i32), (x1, y1): (i32, i32)) {
    let (left, top) = (x0.min(x1), y0.min(y1));
    let width = x0.abs_diff(x1).max(1);
    let height = y0.abs_diff(y1).max(1);
    let _ = write!(d, "M{left} {top}h{width}v{height}h-{width}z");
}

/// `<path {attrs} d="{d}"/>`, or nothing for an empty `d`.
pub fn path(svg: &mut String, attrs: &str, d: &str) {
    if !d.is_empty() {
        let _ = write!(svg, r#"<path {attrs} d="{d}"/>"#);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_are_normalised_and_never_empty() {
        let mut d = String::new();
        rect_path(&mut d, (10, 40), (4, 20));
        rect_path(&mut d, (7, 7), (7, 7));
        assert_eq!(d, "M4 20h6v20h-6zM7 7h1v1h-1z");
        assert_eq!(hex(RGBColor(4, 120, 87)), "#047857");
        let mut svg = String::new();
        path(&mut svg, r#"fill="red""#, "");
        assert!(svg.is_empty());
        path(&mut svg, r#"fill="red""#, &d);
        assert!(svg.starts_with(r#"<path fill="red" d="M4 20"#), "{svg}");
    }
}
