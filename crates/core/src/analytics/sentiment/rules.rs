//! VADER 3.3.2's scoring rules over a token list (`sentiment_valence`,
//! `_negation_check`, `_special_idioms_check`, `_least_check`, `_but_check`,
//! `score_valence`), with the fixes of the extended analyzer behind flags.

use super::lexicon::{flag, BOOSTER_NGRAMS, B_INCR, C_INCR, N_SCALAR, SPECIAL_CASES};
use super::tokenize::{PunctCounts, Scratch, Tok};
use super::Extensions;
use crate::model::{Sentiment, SentimentLabel};

/// VADER's normalization constant: `x / sqrt(x² + alpha)`.
const ALPHA: f64 = 15.0;

/// Scores `scratch.toks` into a [`Sentiment`].
pub(crate) fn score(ext: &Extensions, scratch: &mut Scratch, punct: PunctCounts) -> Sentiment {
    let upper_count = scratch.toks.iter().filter(|t| t.upper).count();
    let n = if ext.caps_cased_only {
        scratch.toks.iter().filter(|t| t.cased).count()
    } else {
        scratch.toks.len()
    };
    // VADER: caps only count as emphasis when the text is mixed case.
    let cap_diff = upper_count > 0 && upper_count < n;
    let mut sentiments = std::mem::take(&mut scratch.sentiments);
    sentiments.clear();
    let toks = &scratch.toks;
    for (i, t) in toks.iter().enumerate() {
        if t.has(flag::BOOSTER)
            || (t.has(flag::KIND) && toks.get(i + 1).is_some_and(|n| n.has(flag::OF)))
        {
            sentiments.push(0.0);
            continue;
        }
        let v = if t.has(flag::HAS_VALENCE) {
            word_valence(ext, scratch, i, cap_diff)
        } else {
            0.0
        };
        sentiments.push(v);
    }
    but_check(ext, toks, &mut sentiments);
    let s = finish(&sentiments, punct);
    scratch.sentiments = sentiments;
    s
}

#[inline]
fn in_lex(t: &Tok) -> bool {
    t.has(flag::HAS_VALENCE)
}

/// Negation test of one word: a NEGATE word or anything containing "n't".
#[inline]
fn negated(t: &Tok) -> bool {
    t.has(flag::NEGATE)
}

/// VADER's `scalar_inc_dec`.
#[inline]
fn scalar_inc_dec(t: &Tok, valence: f64, cap_diff: bool) -> f64 {
    if !t.has(flag::BOOSTER) {
        return 0.0;
    }
    let mut scalar = t.entry.booster;
    if valence < 0.0 {
        scalar = -scalar;
    }
    if t.upper && cap_diff {
        scalar += if valence > 0.0 { C_INCR } else { -C_INCR };
    }
    scalar
}

/// VADER's `sentiment_valence` for the lexicon word at `i`.
fn word_valence(ext: &Extensions, scratch: &Scratch, i: usize, cap_diff: bool) -> f64 {
    let toks = &scratch.toks;
    let t = &toks[i];
    let base = t.entry.valence;
    let mut valence = base;
    // "no" before a lexicon word negates it instead of counting itself.
    if t.has(flag::NO) && toks.get(i + 1).is_some_and(in_lex) {
        valence = 0.0;
    }
    let is = |j: usize, f: u32| toks[j].has(f);
    if (i > 0 && is(i - 1, flag::NO))
        || (i > 1 && is(i - 2, flag::NO))
        || (i > 2 && is(i - 3, flag::NO) && is(i - 1, flag::OR_NOR))
    {
        valence = base * N_SCALAR;
    }
    if t.upper && cap_diff {
        valence += if valence > 0.0 { C_INCR } else { -C_INCR };
    }
    if t.elongated && ext.elongation_emphasis {
        valence += if valence > 0.0 { B_INCR } else { -B_INCR };
    }
    for start_i in 0..3 {
        if i > start_i && !in_lex(&toks[i - start_i - 1]) {
            let mut s = scalar_inc_dec(&toks[i - start_i - 1], valence, cap_diff);
            if start_i == 1 {
                s *= 0.95;
            } else if start_i == 2 {
                s *= 0.9;
            }
            valence += s;
            valence = negation_check(ext, toks, valence, start_i, i);
            if start_i == 2 {
                valence = special_idioms_check(scratch, valence, i);
            }
        }
    }
    least_check(toks, valence, i)
}

/// VADER's `_negation_check` for the word `start_i + 1` positions back.
fn negation_check(ext: &Extensions, toks: &[Tok], valence: f64, start_i: usize, i: usize) -> f64 {
    let is = |j: usize, f: u32| toks[j].has(f);
    match start_i {
        0 => {
            if negated(&toks[i - 1]) {
                return valence * N_SCALAR;
            }
        }
        1 => {
            if is(i - 2, flag::NEVER) && is(i - 1, flag::SO_THIS) {
                return valence * 1.25;
            } else if is(i - 2, flag::WITHOUT) && is(i - 1, flag::DOUBT) {
                return valence;
            } else if negated(&toks[i - 2]) {
                return valence * N_SCALAR;
            }
        }
        _ => {
            // VADER 3.3.2 parses `never A and (B or C) or (D or E)` with the
            // last part unguarded, so any "so"/"this" right before a word
            // boosts it by 25 %; `fix_never_so` requires the "never".
            let never_so = if ext.fix_never_so {
                is(i - 3, flag::NEVER) && (is(i - 2, flag::SO_THIS) || is(i - 1, flag::SO_THIS))
            } else {
                (is(i - 3, flag::NEVER) && is(i - 2, flag::SO_THIS)) || is(i - 1, flag::SO_THIS)
            };
            if never_so {
                return valence * 1.25;
            } else if is(i - 3, flag::WITHOUT) && (is(i - 2, flag::DOUBT) || is(i - 1, flag::DOUBT))
            {
                return valence;
            } else if negated(&toks[i - 3]) {
                return valence * N_SCALAR;
            }
        }
    }
    valence
}

/// Joins the lower-case words `toks[from..to]` with single spaces into `buf`.
fn join<'b>(scratch: &Scratch, from: usize, to: usize, buf: &'b mut [u8; 96]) -> &'b str {
    let mut len = 0;
    for (k, t) in scratch.toks[from..to].iter().enumerate() {
        let w = scratch.word(t).as_bytes();
        let need = w.len() + usize::from(k > 0);
        if len + need > buf.len() {
            return "";
        }
        if k > 0 {
            buf[len] = b' ';
            len += 1;
        }
        buf[len..len + w.len()].copy_from_slice(w);
        len += w.len();
    }
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

fn lookup(table: &[(&str, f64)], key: &str) -> Option<f64> {
    table.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
}

/// VADER's `_special_idioms_check` (only reached for `i >= 3`).
fn special_idioms_check(scratch: &Scratch, mut valence: f64, i: usize) -> f64 {
    let toks = &scratch.toks;
    let n = toks.len();
    // Every phrase checked below contains one of the words i-2, i-1, i.
    if !toks[i - 2..=i].iter().any(|t| t.has(flag::IDIOM)) {
        return valence;
    }
    let mut b = [0u8; 96];
    // (from, to) ranges in VADER's order: onezero, twoonezero, twoone, threetwoone, threetwo.
    for (from, to) in [
        (i - 1, i + 1),
        (i - 2, i + 1),
        (i - 2, i),
        (i - 3, i),
        (i - 3, i - 1),
    ] {
        if let Some(v) = lookup(SPECIAL_CASES, join(scratch, from, to, &mut b)) {
            valence = v;
            break;
        }
    }
    if n - 1 > i {
        if let Some(v) = lookup(SPECIAL_CASES, join(scratch, i, i + 2, &mut b)) {
            valence = v;
        }
    }
    if n - 1 > i + 1 {
        if let Some(v) = lookup(SPECIAL_CASES, join(scratch, i, i + 3, &mut b)) {
            valence = v;
        }
    }
    // Booster n-grams such as "kind of" before the word.
    for (from, to) in [(i - 3, i), (i - 3, i - 1), (i - 2, i)] {
        if let Some(v) = lookup(BOOSTER_NGRAMS, join(scratch, from, to, &mut b)) {
            valence += v;
        }
    }
    valence
}

/// VADER's `_least_check`: "least good" is negated, "at least" / "very least" are not.
fn least_check(toks: &[Tok], valence: f64, i: usize) -> f64 {
    if i > 0 && !in_lex(&toks[i - 1]) && toks[i - 1].has(flag::LEAST) {
        if i > 1 && toks[i - 2].has(flag::AT_VERY) {
            return valence;
        }
        return valence * N_SCALAR;
    }
    valence
}

/// VADER's `_but_check`: words before the first "but" count half, words after
/// it 1.5 times. (VADER locates each score with `list.index(value)`, which
/// goes wrong when equal scores occur on both sides; this uses positions.)
/// With `contrast_words`, "however", "although", ... act like "but" when no
/// "but" occurs.
fn but_check(ext: &Extensions, toks: &[Tok], sentiments: &mut [f64]) {
    let mut pivot = toks.iter().position(|t| t.has(flag::BUT));
    if pivot.is_none() && ext.contrast_words {
        pivot = toks.iter().position(|t| t.has(flag::CONTRAST));
    }
    let Some(bi) = pivot else { return };
    for (si, s) in sentiments.iter_mut().enumerate() {
        if si < bi {
            *s *= 0.5;
        } else if si > bi {
            *s *= 1.5;
        }
    }
}

/// VADER's `normalize`.
#[inline]
pub(crate) fn normalize(score: f64) -> f64 {
    (score / (score * score + ALPHA).sqrt()).clamp(-1.0, 1.0)
}

/// VADER's `score_valence`: punctuation emphasis, compound and proportions.
fn finish(sentiments: &[f64], punct: PunctCounts) -> Sentiment {
    if sentiments.is_empty() {
        return Sentiment::NEUTRAL;
    }
    let ep = punct.excl.min(4) as f64 * 0.292;
    let qm = match punct.quest {
        0 | 1 => 0.0,
        q @ 2..=3 => q as f64 * 0.18,
        _ => 0.96,
    };
    let amp = ep + qm;
    let mut sum: f64 = sentiments.iter().sum();
    if sum > 0.0 {
        sum += amp;
    } else if sum < 0.0 {
        sum -= amp;
    }
    let compound = normalize(sum);
    let (mut pos, mut neg, mut neu) = (0.0f64, 0.0f64, 0usize);
    for &s in sentiments {
        if s > 0.0 {
            pos += s + 1.0;
        } else if s < 0.0 {
            neg += s - 1.0;
        } else {
            neu += 1;
        }
    }
    if pos > neg.abs() {
        pos += amp;
    } else if pos < neg.abs() {
        neg -= amp;
    }
    let total = pos + neg.abs() + neu as f64;
    if total.is_nan() || total <= 0.0 || !compound.is_finite() {
        return Sentiment::NEUTRAL;
    }
    Sentiment {
        compound,
        pos: (pos / total).abs(),
        neu: (neu as f64 / total).abs(),
        neg: (neg / total).abs(),
        label: SentimentLabel::from_compound(compound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_vader() {
        assert!((normalize(1.9) - 0.4404).abs() < 1e-4);
        assert_eq!(normalize(0.0), 0.0);
        assert!(normalize(1e300).abs() <= 1.0);
    }

    #[test]
    fn but_check_is_positional() {
        let ext = Extensions::NONE;
        let lex = super::super::lexicon::Lexicon::build(
            super::super::lexicon::EMBEDDED,
            false,
            false,
            false,
        );
        let mut scratch = Scratch::default();
        super::super::tokenize::tokenize("good but good", &lex, &ext, &mut scratch);
        let mut s = vec![1.9, 0.0, 1.9];
        but_check(&ext, &scratch.toks, &mut s);
        assert_eq!(s, vec![0.95, 0.0, 1.9 * 1.5]);
    }
}
