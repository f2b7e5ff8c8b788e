//! Word tables: the embedded VADER valence lexicon, VADER's hand-written word
//! lists (negations, boosters, special cases) and the market vocabulary.
//!
//! Everything is folded into one hash map from lower-case token to [`Entry`],
//! so that scoring needs exactly one lookup per token.

use rustc_hash::FxHashMap;

/// The analyzer's data files. The server embeds them; the browser loads
/// them when the compose box first needs them, so they are not in the WASM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexiconData<'a> {
    /// `token<TAB>mean valence`, generated from `vader_lexicon.txt` (see
    /// `tests::generate_compact_data`). The raw file would be 434 KB.
    pub valence_tsv: &'a str,
    /// `emoji<TAB>description` for the single-code-point emoji of
    /// `emoji_utf8_lexicon.txt`: VADER looks emoji up one code point at a
    /// time, so multi-code-point entries can never match and are left out.
    pub emoji_tsv: &'a str,
}

/// The data compiled into the server (every build but the browser's alone).
#[cfg(feature = "embedded-lexicon")]
pub const EMBEDDED: LexiconData<'static> = LexiconData {
    valence_tsv: include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/sentiment/lexicon.tsv"
    )),
    emoji_tsv: include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/sentiment/emoji.tsv"
    )),
};

/// Scalar added or subtracted by a booster ("very") or dampener ("kinda").
pub(crate) const B_INCR: f64 = 0.293;
pub(crate) const B_DECR: f64 = -0.293;
/// Extra intensity of an ALL-CAPS word in mixed-case text.
pub(crate) const C_INCR: f64 = 0.733;
/// Factor applied to a negated valence.
pub(crate) const N_SCALAR: f64 = -0.74;

/// VADER 3.3.2 `NEGATE`.
const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

/// VADER 3.3.2 `BOOSTER_DICT`, single words (the n-grams are in [`BOOSTER_NGRAMS`]).
const BOOSTERS: &[(&str, f64)] = &[
    ("absolutely", B_INCR),
    ("amazingly", B_INCR),
    ("awfully", B_INCR),
    ("completely", B_INCR),
    ("considerable", B_INCR),
    ("considerably", B_INCR),
    ("decidedly", B_INCR),
    ("deeply", B_INCR),
    ("effing", B_INCR),
    ("enormous", B_INCR),
    ("enormously", B_INCR),
    ("entirely", B_INCR),
    ("especially", B_INCR),
    ("exceptional", B_INCR),
    ("exceptionally", B_INCR),
    ("extreme", B_INCR),
    ("extremely", B_INCR),
    ("fabulously", B_INCR),
    ("flipping", B_INCR),
    ("flippin", B_INCR),
    ("frackin", B_INCR),
    ("fracking", B_INCR),
    ("fricking", B_INCR),
    ("frickin", B_INCR),
    ("frigging", B_INCR),
    ("friggin", B_INCR),
    ("fully", B_INCR),
    ("fuckin", B_INCR),
    ("fucking", B_INCR),
    ("fuggin", B_INCR),
    ("fugging", B_INCR),
    ("greatly", B_INCR),
    ("hella", B_INCR),
    ("highly", B_INCR),
    ("hugely", B_INCR),
    ("incredible", B_INCR),
    ("incredibly", B_INCR),
    ("intensely", B_INCR),
    ("major", B_INCR),
    ("majorly", B_INCR),
    ("more", B_INCR),
    ("most", B_INCR),
    ("particularly", B_INCR),
    ("purely", B_INCR),
    ("quite", B_INCR),
    ("really", B_INCR),
    ("remarkably", B_INCR),
    ("so", B_INCR),
    ("substantially", B_INCR),
    ("thoroughly", B_INCR),
    ("total", B_INCR),
    ("totally", B_INCR),
    ("tremendous", B_INCR),
    ("tremendously", B_INCR),
    ("uber", B_INCR),
    ("unbelievably", B_INCR),
    ("unusually", B_INCR),
    ("utter", B_INCR),
    ("utterly", B_INCR),
    ("very", B_INCR),
    ("almost", B_DECR),
    ("barely", B_DECR),
    ("hardly", B_DECR),
    ("kinda", B_DECR),
    ("kindof", B_DECR),
    ("kind-of", B_DECR),
    ("less", B_DECR),
    ("little", B_DECR),
    ("marginal", B_DECR),
    ("marginally", B_DECR),
    ("occasional", B_DECR),
    ("occasionally", B_DECR),
    ("partly", B_DECR),
    ("scarce", B_DECR),
    ("scarcely", B_DECR),
    ("slight", B_DECR),
    ("slightly", B_DECR),
    ("somewhat", B_DECR),
    ("sortof", B_DECR),
    ("sort-of", B_DECR),
    ("sorta", B_DECR),
];

/// Multi-word entries of VADER's `BOOSTER_DICT`; only the idiom check sees them.
pub(crate) const BOOSTER_NGRAMS: &[(&str, f64)] = &[
    ("just enough", B_DECR),
    ("kind of", B_DECR),
    ("sort of", B_DECR),
];

/// VADER 3.3.2 `SPECIAL_CASES`: phrases whose valence replaces the word's.
pub(crate) const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// Market vocabulary (extension `market_lexicon`), on VADER's -4..+4 scale.
/// Chosen so a typical strong word of the vocabulary sits near VADER's
/// "good" (1.9) / "bad" (-2.5), and slang at the level of comparable VADER
/// slang ("lol" 1.8, "wtf" -2.8). Words VADER already rates keep VADER's value
/// (dump -1.6, crash -1.7, recession -1.8, gain 2.4, loss -1.3, fud -1.1, scam -2.7).
///
/// | token | valence | why |
/// |---|---|---|
/// | bullish / bearish | +2.0 / -2.0 | the explicit opinion words of the domain |
/// | moon, mooning, moonshot | +1.5, +2.3, +1.8 | "moon" alone is often literal, so milder |
/// | rekt | -2.8 | heavy loss, like "wrecked" |
/// | dumping, dumped | -1.6 | as VADER's "dump" |
/// | pump, pumping, pumped | +1.2, +1.4, +1.4 | price rising; mildly positive (hype) |
/// | bagholder(s), bagholding | -2.0 | stuck with a losing position |
/// | tendies | +2.0 | profits (slang) |
/// | ath, atl | +1.8, -1.8 | all-time high / low |
/// | rally, rallies, rallying, rallied | +1.8 | |
/// | breakout | +1.5 | |
/// | upgrade(d/s), downgrade(d/s) | +1.5 / -1.5 | analyst actions |
/// | outperform(s/ed), underperform(s/ed) | +1.5 / -1.5 | |
/// | soar(s/ing/ed), skyrocket(s/ing/ed) | +2.0 / +2.3 | |
/// | surge(s/d), surging | +1.5 | |
/// | plunge(s/d), plunging, plummet(s/ed/ing), tank(ed/ing/s) | -2.0 / -2.3 / -1.8 | |
/// | slump, tumble(d/s), selloff, sell-off | -1.6 | |
/// | stonks, hodl, wagmi, lambo, rocket | +1.0, +1.0, +2.0, +1.5, +1.5 | 🚀 is the rocket emoji |
/// | ngmi, guh, rugpull, rugged | -2.0, -2.0, -2.5, -2.0 | |
/// | uptrend, downtrend | +1.5 / -1.5 | also 📈 / 📉 |
///
/// Multi-word phrases (merged into one token by the `phrases` extension):
///
/// | phrase | valence |
/// |---|---|
/// | to the moon | +2.8 |
/// | short squeeze | +1.5 |
/// | diamond hands / paper hands | +1.8 / -1.5 |
/// | all time high, all-time high(s), new highs / all time low, all-time low(s), new lows | +2.0 / -2.0 |
/// | beat earnings, beats earnings, earnings beat / missed earnings, misses earnings, earnings miss | +2.0 / -2.0 |
/// | bull run, bull market / bear market | +1.8 / -1.8 |
/// | pump and dump, rug pull, dead cat bounce | -2.3, -2.5, -1.5 |
/// | buy the dip | +1.2 |
pub(crate) const MARKET_WORDS: &[(&str, f64)] = &[
    ("bullish", 2.0),
    ("bearish", -2.0),
    ("moon", 1.5),
    ("mooning", 2.3),
    ("moonshot", 1.8),
    ("rekt", -2.8),
    ("dumping", -1.6),
    ("dumped", -1.6),
    ("pump", 1.2),
    ("pumping", 1.4),
    ("pumped", 1.4),
    ("bagholder", -2.0),
    ("bagholders", -2.0),
    ("bagholding", -2.0),
    ("tendies", 2.0),
    ("ath", 1.8),
    ("atl", -1.8),
    ("rally", 1.8),
    ("rallies", 1.8),
    ("rallying", 1.8),
    ("rallied", 1.8),
    ("breakout", 1.5),
    ("upgrade", 1.5),
    ("upgraded", 1.5),
    ("upgrades", 1.5),
    ("downgrade", -1.5),
    ("downgraded", -1.5),
    ("downgrades", -1.5),
    ("outperform", 1.5),
    ("outperforms", 1.5),
    ("outperformed", 1.5),
    ("underperform", -1.5),
    ("underperforms", -1.5),
    ("underperformed", -1.5),
    ("soar", 2.0),
    ("soars", 2.0),
    ("soaring", 2.0),
    ("soared", 2.0),
    ("skyrocket", 2.3),
    ("skyrockets", 2.3),
    ("skyrocketing", 2.3),
    ("skyrocketed", 2.3),
    ("surge", 1.5),
    ("surges", 1.5),
    ("surged", 1.5),
    ("surging", 1.5),
    ("plunge", -2.0),
    ("plunges", -2.0),
    ("plunged", -2.0),
    ("plunging", -2.0),
    ("plummet", -2.3),
    ("plummets", -2.3),
    ("plummeted", -2.3),
    ("plummeting", -2.3),
    ("tanked", -1.8),
    ("tanking", -1.8),
    ("tanks", -1.8),
    ("slump", -1.6),
    ("tumble", -1.6),
    ("tumbled", -1.6),
    ("tumbles", -1.6),
    ("selloff", -1.6),
    ("sell-off", -1.6),
    ("stonks", 1.0),
    ("hodl", 1.0),
    ("wagmi", 2.0),
    ("lambo", 1.5),
    ("rocket", 1.5),
    ("ngmi", -2.0),
    ("guh", -2.0),
    ("rugpull", -2.5),
    ("rugged", -2.0),
    ("uptrend", 1.5),
    ("downtrend", -1.5),
];

/// Market phrases; see the table on [`MARKET_WORDS`].
pub(crate) const MARKET_PHRASES: &[(&str, f64)] = &[
    ("to the moon", 2.8),
    ("short squeeze", 1.5),
    ("diamond hands", 1.8),
    ("paper hands", -1.5),
    ("all time high", 2.0),
    ("all-time high", 2.0),
    ("all-time highs", 2.0),
    ("new highs", 2.0),
    ("all time low", -2.0),
    ("all-time low", -2.0),
    ("all-time lows", -2.0),
    ("new lows", -2.0),
    ("beat earnings", 2.0),
    ("beats earnings", 2.0),
    ("earnings beat", 2.0),
    ("missed earnings", -2.0),
    ("misses earnings", -2.0),
    ("earnings miss", -2.0),
    ("bull run", 1.8),
    ("bull market", 1.8),
    ("bear market", -1.8),
    ("pump and dump", -2.3),
    ("rug pull", -2.5),
    ("dead cat bounce", -1.5),
    ("buy the dip", 1.2),
];

/// Emoji that carry a market meaning VADER's descriptions miss
/// (extension `market_lexicon`): replaced by a market token.
pub(crate) const MARKET_EMOJI: &[(char, &str)] = &[
    ('\u{1F680}', "rocket"),    // 🚀 "rocket" (already, kept for clarity)
    ('\u{1F4C8}', "uptrend"),   // 📈 "chart increasing"
    ('\u{1F4C9}', "downtrend"), // 📉 "chart decreasing"
];

/// Contrastive conjunctions treated like "but" (extension `contrast_words`).
const CONTRAST: &[&str] = &[
    "however",
    "although",
    "though",
    "nevertheless",
    "nonetheless",
];

/// Per-token facts the rules test; one bit each.
pub(crate) mod flag {
    pub const HAS_VALENCE: u32 = 1 << 0;
    pub const BOOSTER: u32 = 1 << 1;
    pub const NEGATE: u32 = 1 << 2;
    pub const NO: u32 = 1 << 3;
    pub const NEVER: u32 = 1 << 4;
    pub const SO_THIS: u32 = 1 << 5;
    pub const WITHOUT: u32 = 1 << 6;
    pub const DOUBT: u32 = 1 << 7;
    pub const LEAST: u32 = 1 << 8;
    pub const AT_VERY: u32 = 1 << 9;
    pub const OR_NOR: u32 = 1 << 10;
    pub const BUT: u32 = 1 << 11;
    pub const KIND: u32 = 1 << 12;
    pub const OF: u32 = 1 << 13;
    /// Word of a special-case phrase or booster n-gram: the idiom check must look.
    pub const IDIOM: u32 = 1 << 14;
    /// First word of a multi-word phrase (extension `phrases`).
    pub const PHRASE_START: u32 = 1 << 15;
    /// "however", "although", ... (extension `contrast_words`).
    pub const CONTRAST: u32 = 1 << 16;
}

/// What the tables know about one lower-case token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Entry {
    /// Lexicon valence (meaningful when `flags & HAS_VALENCE`).
    pub valence: f64,
    /// Booster scalar (meaningful when `flags & BOOSTER`).
    pub booster: f64,
    pub flags: u32,
}

/// A multi-word phrase scored as one token.
#[derive(Clone, Debug)]
pub(crate) struct Phrase {
    pub words: Box<[Box<str>]>,
    pub valence: f64,
}

/// All tables, built once per analyzer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lexicon {
    pub words: FxHashMap<Box<str>, Entry>,
    pub emoji: FxHashMap<char, Box<str>>,
    /// Phrases, longest first so that the longest match wins.
    pub phrases: Vec<Phrase>,
}

impl Lexicon {
    /// Builds the tables; `market` adds the market vocabulary, `contrast` the
    /// extra contrastive conjunctions, `phrases` the multi-word phrases
    /// (VADER's own unreachable multi-word lexicon entries and, with `market`,
    /// the market phrases).
    pub fn build(data: LexiconData<'_>, market: bool, contrast: bool, phrases: bool) -> Self {
        let mut lex = Lexicon::default();
        lex.words.reserve(8_000);
        let mut phrase_list: Vec<(&str, f64)> = Vec::new();
        for line in data.valence_tsv.lines() {
            let mut parts = line.split('\t');
            let (Some(token), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(valence) = value.parse::<f64>() else {
                continue;
            };
            if token.contains(' ') {
                // Never matches a whitespace-split token in VADER.
                phrase_list.push((token, valence));
                continue;
            }
            let e = lex.entry(token);
            e.valence = valence;
            e.flags |= flag::HAS_VALENCE;
        }
        if market {
            for &(token, valence) in MARKET_WORDS {
                let e = lex.entry(token);
                if e.flags & flag::HAS_VALENCE == 0 {
                    e.valence = valence;
                    e.flags |= flag::HAS_VALENCE;
                }
            }
            phrase_list.extend_from_slice(MARKET_PHRASES);
        }
        for &w in NEGATE {
            lex.entry(w).flags |= flag::NEGATE;
        }
        for &(w, b) in BOOSTERS {
            let e = lex.entry(w);
            e.booster = b;
            e.flags |= flag::BOOSTER;
        }
        let marks: &[(&str, u32)] = &[
            ("no", flag::NO),
            ("never", flag::NEVER),
            ("so", flag::SO_THIS),
            ("this", flag::SO_THIS),
            ("without", flag::WITHOUT),
            ("doubt", flag::DOUBT),
            ("least", flag::LEAST),
            ("at", flag::AT_VERY),
            ("very", flag::AT_VERY),
            ("or", flag::OR_NOR),
            ("nor", flag::OR_NOR),
            ("but", flag::BUT),
            ("kind", flag::KIND),
            ("of", flag::OF),
        ];
        for &(w, f) in marks {
            lex.entry(w).flags |= f;
        }
        for &(p, _) in SPECIAL_CASES.iter().chain(BOOSTER_NGRAMS) {
            for w in p.split(' ') {
                lex.entry(w).flags |= flag::IDIOM;
            }
        }
        if contrast {
            for &w in CONTRAST {
                lex.entry(w).flags |= flag::CONTRAST;
            }
        }
        if phrases {
            phrase_list.sort_by_key(|(p, _)| std::cmp::Reverse(p.split(' ').count()));
            for (p, valence) in phrase_list {
                let words: Box<[Box<str>]> = p.split(' ').map(Box::from).collect();
                if let Some(first) = words.first() {
                    lex.entry(first).flags |= flag::PHRASE_START;
                }
                lex.phrases.push(Phrase { words, valence });
            }
        }
        for line in data.emoji_tsv.lines() {
            let mut parts = line.split('\t');
            let (Some(e), Some(desc)) = (parts.next(), parts.next()) else {
                continue;
            };
            let mut chars = e.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                lex.emoji.insert(c, desc.into());
            }
        }
        if market {
            for &(c, token) in MARKET_EMOJI {
                lex.emoji.insert(c, token.into());
            }
        }
        lex.words.shrink_to_fit();
        lex
    }

    fn entry(&mut self, token: &str) -> &mut Entry {
        self.words.entry(token.into()).or_default()
    }

    #[inline]
    pub fn get(&self, lower: &str) -> Option<Entry> {
        self.words.get(lower).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// Regenerates `data/sentiment/lexicon.tsv` and `emoji.tsv` from the raw
    /// VADER files: `cargo test generate_compact_data -- --ignored`.
    #[test]
    #[ignore]
    fn generate_compact_data() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sentiment/");
        let raw = std::fs::read_to_string(format!("{dir}vader_lexicon.txt")).unwrap();
        let mut out = String::new();
        for line in raw.lines() {
            let mut parts = line.split('\t');
            if let (Some(t), Some(v)) = (parts.next(), parts.next()) {
                writeln!(out, "{t}\t{v}").unwrap();
            }
        }
        std::fs::write(format!("{dir}lexicon.tsv"), out).unwrap();
        let raw = std::fs::read_to_string(format!("{dir}emoji_utf8_lexicon.txt")).unwrap();
        let mut out = String::new();
        for line in raw.lines() {
            if let Some((e, d)) = line.split_once('\t') {
                if e.chars().count() == 1 {
                    writeln!(out, "{e}\t{d}").unwrap();
                }
            }
        }
        std::fs::write(format!("{dir}emoji.tsv"), out).unwrap();
    }

    #[test]
    fn tables_are_loaded() {
        let lex = Lexicon::build(EMBEDDED, false, false, false);
        assert!(lex.words.len() > 7_000);
        assert_eq!(lex.get("good").map(|e| e.valence), Some(1.9));
        assert_eq!(lex.get(":)").map(|e| e.valence), Some(2.0));
        assert!(lex
            .get("bullish")
            .is_none_or(|e| e.flags & flag::HAS_VALENCE == 0));
        assert!(lex.emoji.len() > 1_000);
        let market = Lexicon::build(EMBEDDED, true, false, true);
        assert_eq!(market.get("bullish").map(|e| e.valence), Some(2.0));
        // VADER's own value wins over the market table.
        assert_eq!(market.get("crash").map(|e| e.valence), Some(-1.7));
        assert!(market.phrases.iter().any(|p| &*p.words[0] == "to"));
    }
}
