//! Behaviour tests of the analyzer: VADER reference values, the extensions'
//! intent and robustness on odd input (the figures on the rated data are
//! tested in `tools/sentiment-eval`, which reads the files).

use super::*;
use crate::model::SentimentLabel;

/// (text, compound of Python vaderSentiment 3.3.2). Covers every VADER rule:
/// lexicon, punctuation, caps, boosters/dampeners, negation window, "never
/// so", "without doubt", "no", "least" / "at least", "but", "kind of",
/// special cases (VADER 3.3.2's table: "beating heart" is 3.5 and there is no
/// "broken heart"), emoticons and emoji, 1-character tokens.
const VADER_REFERENCE: &[(&str, f64)] = &[
    ("VADER is smart, handsome, and funny.", 0.8316),
    ("VADER is smart, handsome, and funny!", 0.8439),
    ("VADER is very smart, handsome, and funny.", 0.8545),
    ("VADER is VERY SMART, handsome, and FUNNY.", 0.9227),
    ("VADER is VERY SMART, handsome, and FUNNY!!!", 0.9342),
    (
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        0.9469,
    ),
    ("VADER is not smart, handsome, nor funny.", -0.7424),
    ("The book was good.", 0.4404),
    ("At least it isn't a horrible book.", 0.431),
    ("The book was only kind of good.", 0.3832),
    (
        "The plot was good, but the characters are uncompelling and the dialog is not great.",
        -0.7042,
    ),
    ("Today SUX!", -0.5461),
    ("Today only kinda sux! But I'll get by, lol", 0.5249),
    ("Make sure you :) or :D today!", 0.8633),
    ("Catch utf-8 emoji such as 💘 and 💋 and 😁", 0.875),
    ("Not bad at all", 0.431),
    ("", 0.0),
    ("   ", 0.0),
    ("The movie was bad.", -0.5423),
    ("The movie was not bad.", 0.431),
    ("The movie was never so good.", 0.6626),
    ("This is never this good", 0.6084),
    ("It was without doubt good", 0.6136),
    ("It was not really good", -0.3865),
    ("He is not the best", -0.5216),
    ("There is no good option", -0.3412),
    ("there is no hope or joy", -0.6681),
    ("no", -0.296),
    ("This is the least good movie", -0.3412),
    ("At the very least good food", 0.4902),
    ("It is kind of awesome", 0.5868),
    ("It is sort of bad", -0.5849),
    ("It is extremely bad", -0.5849),
    ("It is EXTREMELY bad", -0.6732),
    ("He is a total badass", 0.4005),
    ("That party was the shit", -0.2263),
    ("That concert was the bomb", 0.6124),
    ("Yeah right, that is great", 0.743),
    ("It was the kiss of death for them", -0.6124),
    ("This cake is to die for", -0.5994),
    ("My broken heart hurts", -0.25),
    ("Is it good??", 0.504),
    ("Is it good????", 0.594),
    ("Is it good?", 0.4404),
    ("Great!!!!!!", 0.7405),
    ("I :( hate it", -0.765),
    (":-( so sad", -0.7089),
    ("I love it but it is expensive", 0.3818),
    ("good good good but bad", -0.2263),
    ("I am so happy", 0.6948),
    ("I am happy", 0.5719),
    ("I can't stand it", 0.0),
    ("I don't like it", -0.2755),
    ("It isnt good", -0.3412),
    ("Nothing good happens", -0.3412),
    ("It was GREAT", 0.7034),
    ("IT WAS GREAT", 0.6249),
    ("hardly good", 0.3832),
    ("the food was barely good", 0.3832),
    ("Without a doubt, the best", 0.7438),
    ("I ❤ this", 0.6369),
    ("😂😂😂", 0.8271),
    ("I am :-) and <3", 0.6369),
    ("lol", 0.4215),
    ("This is not bad, it is good", 0.6956),
    ("I haven't seen anything so terrible", -0.6113),
    ("I LOVE it, kinda", 0.7125),
    ("I also like it", 0.3612),
    ("I like it", 0.3612),
    ("we will never so much as smile", 0.4144),
    ("Not only good but great", 0.7138),
    ("The service was sort of ok", 0.228),
    ("It's just enough fun", 0.4601),
    ("!!!!!!", 0.0),
    (":)", 0.4588),
    ("I", 0.0),
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-3
}

#[test]
fn vader_mode_matches_reference_table() {
    let a = SentimentAnalyzer::vader();
    let bad: Vec<String> = VADER_REFERENCE
        .iter()
        .filter_map(|&(text, want)| {
            let got = a.analyze(text).compound;
            (!close(got, want)).then(|| format!("{text:?}: got {got:.4}, want {want}"))
        })
        .collect();
    assert!(VADER_REFERENCE.len() >= 60);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The recommended analyzer keeps VADER's behaviour on plain sentences,
/// except where an extension deliberately differs.
#[test]
fn recommended_mode_agrees_on_plain_sentences() {
    let a = SentimentAnalyzer::new();
    // Lexicon phrase "can't stand" (-2.0), unreachable for VADER's tokenizer.
    assert!(a.analyze("I can't stand it").compound < -0.3);
    for &(text, want) in VADER_REFERENCE
        .iter()
        .filter(|(t, _)| *t != "I can't stand it")
    {
        let got = a.analyze(text).compound;
        assert!(close(got, want), "{text:?}: got {got:.4}, want {want}");
    }
}

fn compound(text: &str) -> f64 {
    SentimentAnalyzer::global().analyze(text).compound
}

#[test]
fn single_character_tokens_are_kept() {
    // "I" is a token: it counts towards the caps differential, so "LOVE" is emphasized.
    assert!(compound("I LOVE it") > compound("i LOVE it") - 1e-9);
    assert!(compound(":)") > 0.4);
    assert!(compound(":(") < -0.4);
    assert!(compound("I :( hate it") < compound("I hate it"));
}

#[test]
fn boosters_match_whole_tokens_only() {
    let a = SentimentAnalyzer::vader();
    assert_eq!(
        a.analyze("I also like it").compound,
        a.analyze("I like it").compound
    );
    assert!(a.analyze("I so like it").compound > a.analyze("I like it").compound);
    assert_eq!(compound("I also like it"), compound("I like it"));
    // "also" / "sorry" contain "so" but are no boosters.
    assert_eq!(compound("also good"), compound("xyz good"));
    assert_eq!(
        compound("I also ALSO like it"),
        compound("I xyz XYZ like it")
    );
}

#[test]
fn at_least_is_not_a_negation() {
    assert!(compound("at least it is good") > 0.0);
    assert!(compound("the least good movie") < 0.0);
    assert!(compound("at the very least good") > 0.0);
}

#[test]
fn market_vocabulary_has_the_documented_sign() {
    let positive = [
        "$AAPL to the moon 🚀",
        "bullish on $NVDA",
        "diamond hands 💎🙌",
        "new all-time high for $BTC",
        "short squeeze incoming",
        "huge rally today, tendies for everyone",
        "$AMD beat earnings, analysts upgrade",
        "breakout above resistance 📈",
        "$GME mooning",
        "hodl, wagmi",
    ];
    let negative = [
        "bagholding $TSLA, totally rekt",
        "bearish on tech",
        "paper hands sold the bottom",
        "$XYZ missed earnings, downgrade incoming",
        "market crash, everything dumping 📉",
        "classic pump and dump",
        "this stock is tanking",
        "bagholders everywhere",
        "new all time low",
        "rug pull, ngmi",
    ];
    for t in positive {
        assert!(compound(t) >= 0.05, "{t}: {}", compound(t));
    }
    for t in negative {
        assert!(compound(t) <= -0.05, "{t}: {}", compound(t));
    }
}

#[test]
fn market_words_obey_the_rules() {
    assert!(compound("very bullish") > compound("bullish"));
    assert!(compound("not bullish") < 0.0);
    assert!(compound("BULLISH on this one") > compound("bullish on this one"));
    assert!(compound("bullish!!!") > compound("bullish"));
    assert!(compound("to the moon") > compound("moon"));
    // "moon" alone is milder than the explicit opinion word.
    assert!(compound("moon") < compound("bullish"));
}

#[test]
fn entities_are_not_words() {
    for t in [
        "$BEAR",
        "@happy",
        "@happy $BEAR",
        "https://great.example.com/love",
        "www.good.com",
    ] {
        let s = SentimentAnalyzer::global().analyze(t);
        assert_eq!(s.compound, 0.0, "{t}");
        assert_eq!(s.label, SentimentLabel::Neutral);
    }
    assert_eq!(compound("@happy this is bad"), compound("this is bad"));
    assert_eq!(compound("love it $SAD"), compound("love it"));
    // A price is not a cashtag; "$:" is an emoticon.
    assert!(compound("$:") < 0.0);
}

#[test]
fn html_entities_are_decoded() {
    assert_eq!(compound("good &amp; cheap"), compound("good & cheap"));
    assert!(compound("&lt;3 this") > 0.3);
    assert_eq!(compound("it&#39;s not good"), compound("it's not good"));
    // Unknown or broken entities are left alone.
    assert_eq!(compound("&bogus; good"), compound("xyz good"));
    assert_eq!(compound("&#xZZ; &#99999999; &"), 0.0);
}

#[test]
fn emoji_and_modifiers() {
    assert!(compound("❤️") > 0.3, "red heart with VS16");
    assert_eq!(
        compound("love 👍🏽"),
        compound("love 👍"),
        "skin tone is dropped"
    );
    assert!(
        compound("😂good") >= compound("😂"),
        "description does not glue onto the next word"
    );
    assert!(
        compound("I don’t like it") < 0.0,
        "typographic apostrophe negates"
    );
    assert!(compound("👨\u{200D}👩\u{200D}👧") >= -1.0);
}

#[test]
fn elongated_words_are_recognized() {
    assert!(compound("this is goooood") > compound("this is good"));
    assert!(compound("sooooo bad") < compound("bad"));
    assert!(compound("baaaaad") < 0.0);
}

#[test]
fn phrases_from_the_lexicon() {
    // VADER's lexicon rates "fed up" (-1.8), which its tokenizer can't match.
    assert!(compound("I am fed up") < 0.0);
    assert_eq!(
        SentimentAnalyzer::vader().analyze("I am fed up").compound,
        0.0
    );
}

/// xorshift64*: a tiny deterministic generator for the property tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "good",
    "BAD",
    "not",
    "never",
    "so",
    "this",
    "very",
    "kind",
    "of",
    "but",
    "BUT",
    "least",
    "at",
    "no",
    "without",
    "doubt",
    "the",
    "shit",
    "bomb",
    "to",
    "die",
    "for",
    "moon",
    "$AAPL",
    "@me",
    "http://x.io",
    "&amp;",
    "&lt;3",
    "&#",
    ":)",
    ":-(",
    "<3",
    "!",
    "?",
    "!!!",
    "???",
    ",",
    ".",
    "😂",
    "❤️",
    "👍🏽",
    "👨\u{200D}👩\u{200D}👧",
    "🚀",
    "\u{FFFD}",
    "e\u{301}",
    "שלום",
    "مرحبا",
    "\u{202E}",
    "İ",
    "ß",
    "ǅ",
    "goooood",
    "sooooo",
    "kinda",
    "sort",
    "n't",
    "don’t",
    "fed",
    "up",
    " ",
    "\t",
    "\n",
    "\u{1c}",
    "\u{a0}",
    "",
    "diamond",
    "hands",
    "rekt",
    "bullish",
    "I",
    "A",
];

#[test]
fn scores_are_bounded_and_proportions_sum_to_one() {
    let a = SentimentAnalyzer::new();
    let v = SentimentAnalyzer::vader();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut text = String::new();
    for _ in 0..3_000 {
        text.clear();
        let n = rng.next() % 25;
        for _ in 0..n {
            text.push_str(rng.pick(PIECES));
            if !rng.next().is_multiple_of(3) {
                text.push(' ');
            }
        }
        for analyzer in [&a, &v] {
            let s = analyzer.analyze(&text);
            assert!(
                s.compound.is_finite() && (-1.0..=1.0).contains(&s.compound),
                "{text:?}: {s:?}"
            );
            let sum = s.pos + s.neu + s.neg;
            assert!((sum - 1.0).abs() < 1e-9, "{text:?}: {s:?}");
            assert!(s.pos >= 0.0 && s.neu >= 0.0 && s.neg >= 0.0);
            assert_eq!(s.label, SentimentLabel::from_compound(s.compound));
        }
    }
}

#[test]
fn odd_input_does_not_panic() {
    let long = "good but not bad, really 🚀 ".repeat(4_000);
    assert!(long.len() > 100_000);
    let cases = [
        "",
        "   ",
        "\t\n\r",
        &long,
        "e\u{301}\u{301}\u{301} a\u{308}",
        "שלום עולם טוב",
        "مرحبا بالعالم",
        "\u{202E}good\u{202C}",
        "!",
        "?",
        ".",
        "!!!!!!",
        "??????",
        "👨\u{200D}👩\u{200D}👧\u{200D}👦👍🏿👍🏻🏳️\u{200D}🌈",
        "\u{FFFD}",
        "\u{FFFD}\u{FFFD} good \u{FFFD}",
        "&",
        "&#",
        "&#x;",
        "$",
        "@",
        "http://",
        "no",
        "but",
        "kind of",
        "at least",
        "never so",
    ];
    for t in cases {
        for a in [SentimentAnalyzer::global(), &SentimentAnalyzer::vader()] {
            let s = a.analyze(t);
            assert!((-1.0..=1.0).contains(&s.compound), "{t:?}");
        }
    }
    assert_eq!(
        SentimentAnalyzer::global().analyze(""),
        crate::model::Sentiment::NEUTRAL
    );
    assert_eq!(
        SentimentAnalyzer::global().analyze("  \n "),
        crate::model::Sentiment::NEUTRAL
    );
    assert_eq!(SentimentAnalyzer::global().analyze("!!!!!!").compound, 0.0);
}

#[test]
fn analyzer_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SentimentAnalyzer>();
    assert!(std::ptr::eq(
        SentimentAnalyzer::global(),
        SentimentAnalyzer::global()
    ));
    assert_eq!(
        SentimentAnalyzer::default().extensions(),
        Extensions::RECOMMENDED
    );
}
