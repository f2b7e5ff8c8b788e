//! Lexicon- and rule-based sentiment of short social / market posts.
//!
//! The core is a faithful port of VADER 3.3.2 (Hutto & Gilbert, 2014; MIT
//! licence, see `data/sentiment/LICENSE-vaderSentiment.txt`): valence lexicon,
//! negation window, boosters and dampeners with distance decay, ALL-CAPS
//! emphasis, the "but" shift, `!`/`?` amplification, emoji and emoticons and
//! VADER's idiom special cases. On top of it, [`Extensions`] adds the market
//! vocabulary and general fixes, each measured on the human-rated data in
//! `data/sentiment` (figures in `BENCHMARKS.md`, section "Sentiment analyzer").
//!
//! The analyzer is pure computation over embedded tables: no I/O, threads or
//! clocks, so it runs unchanged in the browser (wasm32).

mod lexicon;
mod rules;
mod symbols;
mod tokenize;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
#[cfg(feature = "embedded-lexicon")]
use std::sync::OnceLock;

use crate::model::Sentiment;
use lexicon::Lexicon;
pub use lexicon::LexiconData;
#[cfg(feature = "embedded-lexicon")]
pub use lexicon::EMBEDDED as EMBEDDED_LEXICON;
use tokenize::Scratch;

pub use symbols::mentioned_symbols;

/// Switches for everything the analyzer does beyond VADER 3.3.2.
/// [`Extensions::RECOMMENDED`] is what [`SentimentAnalyzer::new`] uses;
/// [`Extensions::NONE`] reproduces VADER. Switches that measurably hurt on
/// the human-rated data stay off in `RECOMMENDED` (see `BENCHMARKS.md`,
/// "Sentiment analyzer": "Tried and left off").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extensions {
    /// `$CASHTAG`s, `@mention`s and URLs are not words: skip them entirely.
    pub skip_entities: bool,
    /// Decode HTML entities (`&amp;`, `&lt;3`, `&#39;`) before tokenizing.
    pub html_entities: bool,
    /// Drop emoji modifiers (U+FE0F, ZWJ, skin tones), keep an emoji's
    /// description apart from the following text, and read the typographic
    /// apostrophe (U+2019, as typed on phones) as `'` so "don’t" negates.
    pub unicode_cleanup: bool,
    /// Market vocabulary and market emoji (see the table in `lexicon.rs`).
    pub market_lexicon: bool,
    /// Multi-word phrases as single tokens (VADER's own multi-word lexicon
    /// entries such as "fed up", which its tokenizer can never match, and
    /// the market phrases such as "to the moon").
    pub phrases: bool,
    /// Strip punctuation from short words too ("ok," → "ok"); VADER keeps
    /// punctuation on anything of at most two characters.
    pub short_words: bool,
    /// Look up elongated words ("goooood") with runs collapsed.
    pub elongation: bool,
    /// An elongated sentiment word is emphasized like a booster (+0.293).
    pub elongation_emphasis: bool,
    /// ALL-CAPS emphasis needs mixed case among the words that have letters
    /// (VADER also counts numbers and emoticons as "not upper case").
    pub caps_cased_only: bool,
    /// Fix VADER's operator-precedence slip in the "never so/this" rule.
    pub fix_never_so: bool,
    /// "however", "although", "though", ... shift emphasis like "but".
    pub contrast_words: bool,
}

impl Extensions {
    /// Plain VADER 3.3.2.
    pub const NONE: Extensions = Extensions {
        skip_entities: false,
        html_entities: false,
        unicode_cleanup: false,
        market_lexicon: false,
        phrases: false,
        short_words: false,
        elongation: false,
        elongation_emphasis: false,
        caps_cased_only: false,
        fix_never_so: false,
        contrast_words: false,
    };
    /// The measured-good set (see `BENCHMARKS.md`, "Sentiment analyzer").
    pub const RECOMMENDED: Extensions = Extensions {
        skip_entities: true,
        html_entities: true,
        unicode_cleanup: true,
        market_lexicon: true,
        phrases: true,
        short_words: false,
        elongation: true,
        elongation_emphasis: true,
        caps_cased_only: false,
        fix_never_so: false,
        contrast_words: false,
    };
}

impl Default for Extensions {
    fn default() -> Self {
        Self::RECOMMENDED
    }
}

/// Scores texts; build once (it holds ~8,000 lexicon entries) and share.
#[derive(Clone, Debug)]
pub struct SentimentAnalyzer {
    lex: Lexicon,
    ext: Extensions,
}

thread_local! {
    /// Per-thread buffers so that `analyze` does not allocate per call.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl SentimentAnalyzer {
    /// An analyzer built from `data` (the browser's copy, loaded on demand).
    pub fn from_data(data: LexiconData<'_>, ext: Extensions) -> Self {
        Self {
            lex: Lexicon::build(data, ext.market_lexicon, ext.contrast_words, ext.phrases),
            ext,
        }
    }

    /// The analyzer with the recommended extensions, built from the embedded data.
    #[cfg(feature = "embedded-lexicon")]
    pub fn new() -> Self {
        Self::with_extensions(Extensions::RECOMMENDED)
    }

    /// Plain VADER 3.3.2 behaviour (for comparison and the reference tests).
    #[cfg(feature = "embedded-lexicon")]
    pub fn vader() -> Self {
        Self::with_extensions(Extensions::NONE)
    }

    /// An analyzer with a chosen set of extensions.
    #[cfg(feature = "embedded-lexicon")]
    pub fn with_extensions(ext: Extensions) -> Self {
        Self::from_data(lexicon::EMBEDDED, ext)
    }

    /// The process-wide analyzer (built on first use).
    #[cfg(feature = "embedded-lexicon")]
    pub fn global() -> &'static SentimentAnalyzer {
        static GLOBAL: OnceLock<SentimentAnalyzer> = OnceLock::new();
        GLOBAL.get_or_init(SentimentAnalyzer::new)
    }

    /// The extensions this analyzer applies.
    pub fn extensions(&self) -> Extensions {
        self.ext
    }

    /// Sentiment of `text`: `compound` in [-1, 1], `pos + neu + neg ≈ 1`.
    pub fn analyze(&self, text: &str) -> Sentiment {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.analyze_with(text, &mut scratch),
            // Only reachable by re-entrance; fall back to fresh buffers.
            Err(_) => self.analyze_with(text, &mut Scratch::default()),
        })
    }

    fn analyze_with(&self, text: &str, scratch: &mut Scratch) -> Sentiment {
        let punct = tokenize::tokenize(text, &self.lex, &self.ext, scratch);
        rules::score(&self.ext, scratch, punct)
    }
}

#[cfg(feature = "embedded-lexicon")]
impl Default for SentimentAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}
