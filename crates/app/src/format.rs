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

/// Formats Unix ms as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn date_time(ts: i64) -> String {
    let (year, month, day) = civil_from_days(ts.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02} {}", clock_time(ts))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm; valid far beyond any timestamp Pulse takes).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day number ([`days_from_civil`]'s inverse).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn dates_convert_both_ways() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(1_584_368_437_000), "2020-03-16 14:20:37");
        assert_eq!(date_time(-1_000), "1969-12-31 23:59:59");
        for days in [-800_000, -1, 0, 59, 60, 11_016, 18_337, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(18_321), (2020, 2, 29));
    }

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
