//! What the chart tests share: a well-formedness check for the SVG (by hand,
//! so no XML crate joins the dependencies), a guard against endless drawing,
//! readers for labels and the text alternative, and hostile inputs.

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::Duration;

/// Runs `render` on its own thread and fails if it has not finished in 20 s:
/// a guard against endless loops, not a performance assertion.
pub fn finishes<T: Send + 'static>(what: &str, render: impl FnOnce() -> T + Send + 'static) -> T {
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

/// Checks that `svg` is well-formed XML with one `<svg>` root and nothing
/// after it: balanced tags, valid names, quoted and unique attributes, `&`
/// only in entity references, no raw `<` in text or attribute values and no
/// character XML forbids. Stricter than XML in one way: a raw `>` inside an
/// attribute value is rejected too (the charts escape it).
pub fn well_formed(svg: &str) -> Result<(), String> {
    if let Some(c) = svg.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        return Err(format!("a character XML forbids: {c:?}"));
    }
    let body = svg.trim_end();
    if !body.starts_with("<svg") {
        return Err(format!("the root is not <svg>: {}", head(body)));
    }
    let mut open: Vec<&str> = Vec::new();
    let mut root_closed = false;
    let mut rest = body;
    while !rest.is_empty() {
        if root_closed {
            return Err(format!("content after the root: {}", head(rest)));
        }
        let Some(start) = rest.find('<') else {
            return Err(format!("text outside the root: {}", head(rest)));
        };
        character_data(&rest[..start])?;
        let after = &rest[start + 1..];
        let end = after
            .find('>')
            .ok_or_else(|| format!("unclosed tag: {}", head(after)))?;
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.contains('<') {
            return Err(format!("`<` inside a tag: {}", head(tag)));
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim_end();
            match open.pop() {
                Some(opened) if opened == name => root_closed = open.is_empty(),
                opened => return Err(format!("</{name}> closes {opened:?}")),
            }
        } else if tag.starts_with('!') || tag.starts_with('?') {
            return Err(format!("unexpected declaration or comment: {}", head(tag)));
        } else {
            let (tag, empty) = match tag.strip_suffix('/') {
                Some(tag) => (tag, true),
                None => (tag, false),
            };
            let name = start_tag(tag)?;
            if open.is_empty() && name != "svg" {
                return Err(format!("the root is <{name}>, not <svg>"));
            }
            if empty {
                root_closed = open.is_empty();
            } else {
                open.push(name);
            }
        }
    }
    if !open.is_empty() {
        return Err(format!("unclosed elements: {open:?}"));
    }
    Ok(())
}

/// The element name of a start tag's inside (`name attr="v" …`), after
/// checking its attributes.
fn start_tag(tag: &str) -> Result<&str, String> {
    let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
    let name = &tag[..name_end];
    check_name(name)?;
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = &tag[name_end..];
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return Ok(name);
        }
        if trimmed.len() == rest.len() {
            return Err(format!("no space before attribute in <{tag}>"));
        }
        let eq = trimmed
            .find('=')
            .ok_or_else(|| format!("attribute without value in <{tag}>"))?;
        let attribute = trimmed[..eq].trim_end();
        check_name(attribute)?;
        if seen.contains(&attribute) {
            return Err(format!("duplicate attribute {attribute} in <{tag}>"));
        }
        seen.push(attribute);
        let value = trimmed[eq + 1..].trim_start();
        let quote = value
            .chars()
            .next()
            .filter(|q| matches!(q, '"' | '\''))
            .ok_or_else(|| format!("unquoted {attribute} in <{tag}>"))?;
        let close = value[1..]
            .find(quote)
            .ok_or_else(|| format!("unterminated {attribute} in <{tag}>"))?;
        character_data(&value[1..close + 1])?;
        rest = &value[close + 2..];
    }
}

/// An XML name, as far as SVG uses them: a letter or `_`, then letters,
/// digits, `_`, `-`, `.` and `:`.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!("not an XML name: {name:?}"))
    }
}

/// Text or an attribute value: every `&` starts an entity reference.
fn character_data(text: &str) -> Result<(), String> {
    for (at, _) in text.match_indices('&') {
        let entity = &text[at + 1..];
        let end = entity
            .find(';')
            .ok_or_else(|| format!("bare `&`: {}", head(&text[at..])))?;
        let name = &entity[..end];
        let known = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || name
                .strip_prefix("#x")
                .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
            || name
                .strip_prefix('#')
                .is_some_and(|dec| !dec.is_empty() && dec.chars().all(|c| c.is_ascii_digit()));
        if !known {
            return Err(format!("unknown entity &{name};"));
        }
    }
    Ok(())
}

fn head(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Well-formed (see [`well_formed`]), and no number anywhere in it (labels,
/// `<desc>`, coordinates) is NaN or inf.
pub fn assert_sane_svg(svg: &str) {
    if let Err(error) = well_formed(svg) {
        panic!("malformed SVG: {error}");
    }
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
pub fn labels(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

/// At least `at_least` labels, no two alike (a repeated label tells the reader nothing).
pub fn assert_distinct(labels: Vec<String>, at_least: usize) {
    let mut distinct = labels.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= at_least, "labels {labels:?}");
    assert_eq!(distinct.len(), labels.len(), "repeated labels {labels:?}");
}

pub fn time_labels_of(svg: &str) -> Vec<String> {
    labels(svg)
        .into_iter()
        .filter(|l| l.contains(':'))
        .collect()
}

/// The text alternative (still escaped).
pub fn desc(svg: &str) -> &str {
    let start = svg.find("<desc>").expect("no <desc>") + "<desc>".len();
    &svg[start..svg.find("</desc>").expect("no </desc>")]
}

/// The `<title>` (still escaped).
pub fn title(svg: &str) -> &str {
    let start = svg.find("<title>").expect("no <title>") + "<title>".len();
    &svg[start..svg.find("</title>").expect("no </title>")]
}

/// The numbers of the path with these attributes, in order (`M4 20h6v20h-6z`
/// gives 4, 20, 6, 20, -6): what a test reads a mark's pixels from.
pub fn path_numbers(svg: &str, attrs: &str) -> Vec<i64> {
    let open = format!("<path {attrs} d=\"");
    let start = svg.find(&open).unwrap_or_else(|| panic!("no path {attrs}")) + open.len();
    let d = &svg[start..start + svg[start..].find('"').unwrap_or(0)];
    d.split(|c: char| c.is_ascii_alphabetic() || c == ' ')
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("not a number in {d:?}"))
        })
        .collect()
}

/// Values a hostile or broken producer can put in front of a chart.
pub const HOSTILE: [f64; 14] = [
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

/// A realistic timestamp (2026).
pub const T0: i64 = 1_780_000_000_000;

/// A title with everything that needs escaping, and what it must become.
pub const HOSTILE_TITLE: &str = "<script>alert(\"x\")</script> & 'AT&T'\u{7}";
pub const HOSTILE_TITLE_ESCAPED: &str =
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;AT&amp;T&#39;\u{FFFD}";
