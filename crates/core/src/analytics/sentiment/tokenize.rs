//! Text → tokens, following VADER's `SentiText` and emoji replacement, plus
//! the optional clean-ups of the extended analyzer.
//!
//! Tokens never own strings: their lower-case form is a range into one
//! reusable buffer, so tokenizing allocates nothing once the scratch space
//! has grown to the size of the texts seen.

use super::lexicon::{flag, Entry, Lexicon};
use super::Extensions;

/// One word or emoticon, after punctuation stripping and lookup.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tok {
    /// Byte range of the lower-case form in [`Scratch::lower`].
    pub lo: u32,
    pub hi: u32,
    pub entry: Entry,
    /// Python's `str.isupper()` of the token as written.
    pub upper: bool,
    /// Has at least one cased letter.
    pub cased: bool,
    /// Found in the lexicon only after collapsing letter runs ("goooood").
    pub elongated: bool,
}

impl Tok {
    #[inline]
    pub fn has(&self, f: u32) -> bool {
        self.entry.flags & f != 0
    }
}

/// Reusable buffers of one analysis.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The text after emoji replacement / entity decoding, when needed.
    pub text: String,
    /// Lower-case forms of all tokens, back to back.
    pub lower: String,
    pub toks: Vec<Tok>,
    pub sentiments: Vec<f64>,
    /// Buffer for elongation retries.
    pub tmp: String,
}

impl Scratch {
    #[inline]
    pub fn word(&self, t: &Tok) -> &str {
        self.lower.get(t.lo as usize..t.hi as usize).unwrap_or("")
    }
}

/// Python's `str.split()` separators: Unicode white space plus the ASCII
/// information separators 0x1C..0x1F.
#[inline]
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `string.punctuation`.
#[inline]
fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// Emoji modifiers that carry no sentiment: variation selectors, zero-width
/// joiner, skin tones.
#[inline]
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' | '\u{1F3FB}'..='\u{1F3FF}'
    )
}

/// Counts of `!` and `?` that the punctuation amplifier uses.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PunctCounts {
    pub excl: usize,
    pub quest: usize,
}

/// Decodes the HTML entity at the start of `s` (which begins with `&`):
/// returns the character and the entity's length in bytes.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s.get(..12.min(s.len())).unwrap_or(s).find(';')?;
    let name = s.get(1..end)?;
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((c, end + 1))
}

/// Rewrites `text` into `out` the way VADER does before tokenizing: each emoji
/// becomes its description. With `ext.unicode_cleanup`, modifiers are dropped
/// and the description is also followed by a space (VADER glues the next
/// character onto the last description word); with `ext.html_entities`,
/// entities such as `&amp;` are decoded.
fn rewrite(text: &str, lex: &Lexicon, ext: &Extensions, out: &mut String) {
    out.clear();
    let mut prev_space = true;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '&' && ext.html_entities {
            if let Some((d, len)) = decode_entity(rest) {
                out.push(d);
                prev_space = d == ' ';
                rest = rest.get(len..).unwrap_or("");
                continue;
            }
        }
        rest = rest.get(c.len_utf8()..).unwrap_or("");
        if ext.unicode_cleanup {
            if is_emoji_modifier(c) {
                continue;
            }
            if c == '\u{2019}' {
                out.push('\'');
                prev_space = false;
                continue;
            }
        }
        if let Some(desc) = lex.emoji.get(&c) {
            if !prev_space {
                out.push(' ');
            }
            out.push_str(desc);
            if ext.unicode_cleanup {
                out.push(' ');
                prev_space = true;
            } else {
                prev_space = false;
            }
        } else {
            out.push(c);
            prev_space = c == ' ';
        }
    }
}

/// Is this raw token a `$CASHTAG`, `@mention` or URL (never scored)?
pub(crate) fn is_entity_token(raw: &str) -> bool {
    let t = raw.trim_start_matches(['(', '[', '{', '"', '\'', '<', '*', '_']);
    let b = t.as_bytes();
    match b.first() {
        Some(b'$') => b.get(1).is_some_and(|c| c.is_ascii_alphabetic()),
        Some(b'@') => b
            .get(1)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_'),
        _ => {
            let lower_starts = |p: &str| {
                b.len() >= p.len()
                    && b.get(..p.len())
                        .is_some_and(|s| s.eq_ignore_ascii_case(p.as_bytes()))
            };
            lower_starts("http://") || lower_starts("https://") || lower_starts("www.")
        }
    }
}

/// Python's `str.isupper()`: at least one cased character, none lower case.
#[inline]
fn is_upper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_ascii() {
            if c.is_ascii_lowercase() {
                return false;
            }
            cased |= c.is_ascii_uppercase();
        } else if c.is_lowercase() {
            return false;
        } else if c.is_uppercase() {
            cased = true;
        }
    }
    cased
}

/// VADER's `_strip_punc_if_word`: strip surrounding punctuation unless that
/// leaves at most two characters (so ":)" and ":-(" survive). With
/// `short_words`, a short remainder made only of letters ("ok," → "ok",
/// "I." → "I") is stripped too, since it is a word, not an emoticon.
#[inline]
fn strip_punct(raw: &str, short_words: bool) -> &str {
    let stripped = raw.trim_matches(is_punct);
    if stripped.chars().nth(2).is_some() {
        return stripped;
    }
    if short_words && !stripped.is_empty() && stripped.chars().all(char::is_alphabetic) {
        return stripped;
    }
    raw
}

/// Appends the lower-case form of `s` to `buf`.
#[inline]
fn push_lower(buf: &mut String, s: &str) {
    if s.is_ascii() {
        buf.extend(s.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        for c in s.chars() {
            buf.extend(c.to_lowercase());
        }
    }
}

/// Writes `word` with runs of equal characters capped at `keep` into `out`
/// ("goooood" → "good" with 2, "god" with 1). Returns whether `word` has a
/// run of three or more equal letters, i.e. whether it looks elongated.
fn collapse_runs(word: &str, keep: usize, out: &mut String) -> bool {
    out.clear();
    let mut elongated = false;
    let mut prev = None;
    let mut run = 0;
    for c in word.chars() {
        if Some(c) == prev {
            run += 1;
        } else {
            prev = Some(c);
            run = 1;
        }
        elongated |= run == 3 && c.is_alphabetic();
        if run <= keep {
            out.push(c);
        }
    }
    elongated
}

/// Tokenizes `text` into `scratch.toks` and returns the `!`/`?` counts.
pub(crate) fn tokenize(
    text: &str,
    lex: &Lexicon,
    ext: &Extensions,
    scratch: &mut Scratch,
) -> PunctCounts {
    let Scratch {
        text: rewritten,
        lower,
        toks,
        tmp,
        ..
    } = scratch;
    lower.clear();
    toks.clear();
    let needs_rewrite = !text.is_ascii() || (ext.html_entities && text.contains('&'));
    let src: &str = if needs_rewrite {
        rewrite(text, lex, ext, rewritten);
        rewritten.as_str()
    } else {
        text
    };
    let mut counts = PunctCounts::default();
    for raw in src.split(is_py_space).filter(|t| !t.is_empty()) {
        if ext.skip_entities && is_entity_token(raw) {
            continue;
        }
        for b in raw.bytes() {
            counts.excl += usize::from(b == b'!');
            counts.quest += usize::from(b == b'?');
        }
        let word = strip_punct(raw, ext.short_words);
        let lo = lower.len();
        push_lower(lower, word);
        let hi = lower.len();
        let key = lower.get(lo..hi).unwrap_or("");
        let mut entry = lex.get(key);
        let mut elongated = false;
        if entry.is_none() && ext.elongation {
            for keep in [2, 1] {
                if collapse_runs(key, keep, tmp) {
                    if let Some(e) = lex.get(tmp) {
                        entry = Some(e);
                        elongated = true;
                        break;
                    }
                }
            }
        }
        let mut entry = entry.unwrap_or_default();
        if entry.flags & flag::NEGATE == 0 && key.contains("n't") {
            entry.flags |= flag::NEGATE;
        }
        toks.push(Tok {
            lo: lo as u32,
            hi: hi as u32,
            entry,
            upper: is_upper(word),
            cased: word.chars().any(|c| c.is_uppercase() || c.is_lowercase()),
            elongated,
        });
    }
    if !lex.phrases.is_empty() {
        merge_phrases(lex, lower, toks);
    }
    counts
}

/// Replaces each occurrence of a known multi-word phrase by a single token
/// carrying the phrase's valence.
fn merge_phrases(lex: &Lexicon, lower: &str, toks: &mut Vec<Tok>) {
    if !toks.iter().any(|t| t.has(flag::PHRASE_START)) {
        return;
    }
    let word = |t: &Tok| lower.get(t.lo as usize..t.hi as usize).unwrap_or("");
    let mut out = 0;
    let mut i = 0;
    while i < toks.len() {
        let mut consumed = 1;
        let mut merged = toks[i];
        if toks[i].has(flag::PHRASE_START) {
            for p in &lex.phrases {
                let n = p.words.len();
                if i + n <= toks.len()
                    && p.words
                        .iter()
                        .zip(&toks[i..i + n])
                        .all(|(w, t)| **w == *word(t))
                {
                    merged.hi = toks[i + n - 1].hi;
                    merged.entry = Entry {
                        valence: p.valence,
                        booster: 0.0,
                        flags: flag::HAS_VALENCE,
                    };
                    merged.upper = toks[i..i + n].iter().all(|t| t.upper);
                    merged.cased = toks[i..i + n].iter().any(|t| t.cased);
                    merged.elongated = false;
                    consumed = n;
                    break;
                }
            }
        }
        toks[out] = merged;
        out += 1;
        i += consumed;
    }
    toks.truncate(out);
}
