//! Text formatting shared by the panels and the charts: clock times, short
//! numbers, signed changes and XML escaping. Plain functions of their input,
//! so the server's first paint and the browser's redraws print the same text.

/// What a formatter shows for a value it cannot show (never "NaN"/"inf").
pub const NO_VALUE: &str = "–";

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

/// A change with its sign always shown (`+1.25`, `-0.50`).
pub fn signed(value: f64, decimals: usize) -> String {
    format!("{value:+.decimals$}")
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(clock_minutes(3_723_000), "01:02");
    }

    #[test]
    fn signed_always_shows_the_sign() {
        assert_eq!(signed(1.254, 2), "+1.25");
        assert_eq!(signed(-0.5, 2), "-0.50");
        assert_eq!(signed(0.0, 1), "+0.0");
    }
}
