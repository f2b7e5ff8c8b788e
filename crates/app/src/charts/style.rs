//! The charts' look: palette, label font and grid, in one place so the three
//! charts match each other and the page's CSS colours.

use plotters::chart::MeshStyle;
use plotters::prelude::*;

pub const GRID: RGBColor = RGBColor(226, 232, 240);
pub const AXIS_TEXT: RGBColor = RGBColor(71, 85, 105);
/// A rising candle.
pub const UP: RGBColor = RGBColor(4, 120, 87);
/// A falling candle.
pub const DOWN: RGBColor = RGBColor(185, 28, 28);
/// The SMA overlay.
pub const SMA_LINE: RGBColor = RGBColor(37, 99, 235);
pub const OVERALL_LINE: RGBColor = RGBColor(109, 40, 217);
pub const SYMBOL_LINE: RGBColor = RGBColor(14, 116, 144);
/// The sentiment chart's zero line.
pub const ZERO: RGBColor = RGBColor(148, 163, 184);
pub const LIKES: RGBColor = RGBColor(219, 39, 119);
pub const SHARES: RGBColor = RGBColor(109, 40, 217);
pub const COMMENTS: RGBColor = RGBColor(217, 119, 6);

/// Pulse's grid and axis look, on any chart's mesh.
pub fn house_mesh<'m, 'a, 'b, X, Y, DB>(
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

pub fn label_font<'a>() -> TextStyle<'a> {
    ("sans-serif", 13).into_font().color(&AXIS_TEXT)
}
