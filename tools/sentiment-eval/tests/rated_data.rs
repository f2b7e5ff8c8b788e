//! The analyzer against the human-rated data in `data/sentiment`: the
//! figures must not regress, and plain-VADER mode must reproduce Python VADER.

use pulse_core::analytics::sentiment::SentimentAnalyzer;
use pulse_sentiment_eval::{data_file, evaluate_file, parse_rated};

/// Plain-VADER mode reproduces Python VADER 3.3.2 on all 7,908 rated texts,
/// except where VADER's `_but_check` finds a score with `list.index(value)`
/// and so rescales the wrong word when equal scores occur (fixed here).
#[test]
fn vader_mode_matches_python_vader_on_rated_data() {
    let reference = std::fs::read_to_string(data_file("vader_3.3.2_compound.txt")).unwrap();
    let expected: Vec<f64> = reference
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.parse().unwrap())
        .collect();
    let a = SentimentAnalyzer::vader();
    let tweets = std::fs::read_to_string(data_file("tweets.tsv")).unwrap();
    let amazon = std::fs::read_to_string(data_file("amazon_reviews.tsv")).unwrap();
    let mut texts: Vec<&str> = parse_rated(&tweets)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    texts.extend(parse_rated(&amazon).unwrap().into_iter().map(|(_, t)| t));
    assert_eq!(texts.len(), expected.len());
    let mismatches: Vec<&str> = texts
        .iter()
        .zip(&expected)
        .filter(|(text, want)| (a.analyze(text).compound - **want).abs() > 1e-4)
        .map(|(text, _)| *text)
        .collect();
    assert_eq!(mismatches.len(), 1, "{mismatches:#?}");
    assert!(mismatches[0].contains(" but "));
}

/// Measured figures (BENCHMARKS.md, "Sentiment"); fails if quality silently drops.
#[test]
fn evaluation_figures_do_not_regress() {
    const TOL: f64 = 0.002;
    let cases = [
        (SentimentAnalyzer::new(), "tweets.tsv", TWEETS_R, TWEETS_ACC),
        (
            SentimentAnalyzer::new(),
            "amazon_reviews.tsv",
            AMAZON_R,
            AMAZON_ACC,
        ),
        (SentimentAnalyzer::vader(), "tweets.tsv", 0.8722, 0.9688),
        (
            SentimentAnalyzer::vader(),
            "amazon_reviews.tsv",
            0.5896,
            0.7226,
        ),
    ];
    for (a, file, r, acc) in cases {
        let rep = evaluate_file(&a, &data_file(file)).unwrap();
        assert!(rep.pearson_r >= r - TOL, "{file}: {rep}");
        assert!(rep.sign_accuracy >= acc - TOL, "{file}: {rep}");
    }
}

const TWEETS_R: f64 = 0.8734;
const TWEETS_ACC: f64 = 0.9688;
const AMAZON_R: f64 = 0.5902;
const AMAZON_ACC: f64 = 0.7235;
