//! Prints agreement of the sentiment analyzer with the human ratings:
//! `cargo run --release --bin sentiment-eval [-- --ablation]`.
//!
//! `--ablation` also prints plain VADER, the recommended extensions added one
//! at a time (cumulative), and each switch flipped against the recommended set.

use pulse_core::analytics::sentiment::{Extensions, SentimentAnalyzer};
use pulse_sentiment_eval::{data_file, evaluate_file};

const FILES: [&str; 2] = ["tweets.tsv", "amazon_reviews.tsv"];

type Toggle = (&'static str, fn(&mut Extensions) -> &mut bool);

const TOGGLES: [Toggle; 11] = [
    ("skip_entities", |e| &mut e.skip_entities),
    ("html_entities", |e| &mut e.html_entities),
    ("unicode_cleanup", |e| &mut e.unicode_cleanup),
    ("market_lexicon", |e| &mut e.market_lexicon),
    ("phrases", |e| &mut e.phrases),
    ("elongation", |e| &mut e.elongation),
    ("elongation_emphasis", |e| &mut e.elongation_emphasis),
    ("caps_cased_only", |e| &mut e.caps_cased_only),
    ("short_words", |e| &mut e.short_words),
    ("fix_never_so", |e| &mut e.fix_never_so),
    ("contrast_words", |e| &mut e.contrast_words),
];

fn report(name: &str, analyzer: &SentimentAnalyzer) -> Result<(), Box<dyn std::error::Error>> {
    println!("## {name}");
    for file in FILES {
        let r = evaluate_file(analyzer, &data_file(file))?;
        println!("{file:<20} {r}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    report("pulse (recommended extensions)", &SentimentAnalyzer::new())?;
    if !std::env::args().any(|a| a == "--ablation") {
        return Ok(());
    }
    report("VADER 3.3.2 (no extensions)", &SentimentAnalyzer::vader())?;
    let mut cumulative = Extensions::NONE;
    for (name, get) in TOGGLES {
        let mut recommended = Extensions::RECOMMENDED;
        if !*get(&mut recommended) {
            continue;
        }
        *get(&mut cumulative) = true;
        let a = SentimentAnalyzer::with_extensions(cumulative);
        report(&format!("cumulative: + {name}"), &a)?;
    }
    for (name, get) in TOGGLES {
        let mut ext = Extensions::RECOMMENDED;
        let flag = get(&mut ext);
        *flag = !*flag;
        let verb = if *flag { "with" } else { "without" };
        let a = SentimentAnalyzer::with_extensions(ext);
        report(&format!("recommended {verb} {name}"), &a)?;
    }
    Ok(())
}
