//! Simulated social activity: posts about the simulated symbols, drawn from a
//! phrase bank that covers what the sentiment analyzer must handle (plain
//! praise and complaints, neutral news, sarcasm, emoji, negations, caps,
//! market slang), and engagement on recent posts.

use pulse_core::model::{Engagement, EngagementKind, NewPost, TimestampMs};

use super::rng::SeededRng;

/// `{S}` is replaced by a symbol, written as `$SYM` or `SYM` at random.
const PHRASES: &[&str] = &[
    // Positive
    "{S} just crushed earnings, great quarter!",
    "Loving my {S} position, this rally looks strong 🚀",
    "{S} breakout confirmed. Bullish into the close.",
    "Really impressed by {S} guidance, solid growth ahead",
    "{S} to the moon 🚀🚀",
    "Added more {S} today, the chart looks GREAT",
    "Big upgrade on {S} this morning, well deserved",
    "{S} diamond hands paying off 💎🙌",
    "Not bad at all from {S} today",
    "{S} at an all-time high, what a run :)",
    // Negative
    "{S} is dumping hard, terrible guidance",
    "Sold all my {S}, this is a disaster",
    "{S} missed estimates again. Bearish.",
    "Bagholding {S} since the top, totally rekt 😭",
    "{S} downgrade is ugly, expect more pain",
    "I HATE how {S} trades after earnings!!!",
    "{S} crash wiped out my gains :(",
    "Worst week ever for {S}, avoid",
    "{S} is not looking good at all",
    "Paper hands selling {S} everywhere, what a mess",
    // Neutral / news
    "{S} reports earnings after the bell on Thursday",
    "Watching {S} at the 50 day moving average",
    "{S} volume is about average today",
    "What is everyone's price target for {S}?",
    "{S} annual meeting is scheduled for next month",
    "Anyone know when {S} pays the dividend?",
    // Sarcasm, negations, contrast
    "Oh great, {S} down another 5%. Just what I needed.",
    "{S} is not bad, but the valuation is insane",
    "Wow, {S} really nailed it... said no one ever",
    "{S} isn't terrible, I guess",
    "I don't love {S} here, but it's not a disaster either",
    "Never been so happy to sell {S}",
    "{S} is kind of okay, nothing special",
    "Can't stand the {S} hype anymore 🙄",
];

const AUTHORS: &[&str] = &[
    "ana_trades",
    "bullbear42",
    "quantqueen",
    "dividend_dan",
    "tape_reader",
    "macro_mia",
    "option_owl",
    "longterm_lee",
    "chart_chad",
    "value_vera",
];

/// Posts and engagement events from one seeded generator.
pub struct SocialGenerator {
    rng: SeededRng,
    symbols: Vec<String>,
}

impl SocialGenerator {
    pub fn new(seed: u64, symbols: Vec<String>) -> Self {
        // A different stream than the ticks', so changing one rate does not reshuffle the other.
        Self {
            rng: SeededRng::new(seed ^ 0x5EED_50C1_A100_0000),
            symbols,
        }
    }

    pub fn next_post(&mut self, ts: TimestampMs) -> NewPost {
        let phrase = PHRASES[self.rng.below(PHRASES.len())];
        let author = AUTHORS[self.rng.below(AUTHORS.len())];
        let symbol = match self.symbols.len() {
            0 => "the market".to_owned(),
            n => {
                let symbol = &self.symbols[self.rng.below(n)];
                if self.rng.next_f64() < 0.6 {
                    format!("${symbol}")
                } else {
                    symbol.clone()
                }
            }
        };
        NewPost {
            author: author.to_owned(),
            text: phrase.replace("{S}", &symbol),
            ts: Some(ts),
        }
    }

    /// An engagement event on one of `recent_post_ids` (newer posts get more),
    /// or `None` when there are no posts yet.
    pub fn next_engagement(
        &mut self,
        recent_post_ids: &[u64],
        ts: TimestampMs,
    ) -> Option<Engagement> {
        if recent_post_ids.is_empty() {
            return None;
        }
        // Squaring biases the pick toward the end of the list (the newest posts).
        let pick = self.rng.next_f64().sqrt();
        let index = ((pick * recent_post_ids.len() as f64) as usize).min(recent_post_ids.len() - 1);
        let roll = self.rng.next_f64();
        let kind = if roll < 0.7 {
            EngagementKind::Like
        } else if roll < 0.85 {
            EngagementKind::Comment
        } else {
            EngagementKind::Share
        };
        let delta = if kind == EngagementKind::Like && self.rng.next_f64() < 0.08 {
            -1
        } else {
            1
        };
        Some(Engagement {
            post_id: recent_post_ids[index],
            kind,
            delta,
            ts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::analytics::sentiment::SentimentAnalyzer;
    use pulse_core::model::SentimentLabel;

    fn symbols() -> Vec<String> {
        vec!["AAPL".into(), "TSLA".into()]
    }

    #[test]
    fn seeded_posts_are_reproducible_and_valid() {
        let run = |seed| {
            let mut generator = SocialGenerator::new(seed, symbols());
            (0..50)
                .map(|i| generator.next_post(1_780_000_000_000 + i))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        for post in run(3) {
            post.validate(1_780_000_000_100).unwrap();
            assert!(
                post.text.contains("AAPL") || post.text.contains("TSLA"),
                "{}",
                post.text
            );
        }
    }

    #[test]
    fn the_phrase_bank_yields_a_real_mix_of_sentiment() {
        let analyzer = SentimentAnalyzer::global();
        let mut counts = [0usize; 3];
        for phrase in PHRASES {
            let label = analyzer.analyze(&phrase.replace("{S}", "$AAPL")).label;
            counts[label as usize] += 1;
        }
        let [positive, neutral, negative] = counts;
        assert!(positive >= 8 && negative >= 8 && neutral >= 4, "{counts:?}");
        assert_eq!(SentimentLabel::Positive as usize, 0);
    }

    #[test]
    fn engagement_targets_known_posts() {
        let mut generator = SocialGenerator::new(1, symbols());
        assert!(generator.next_engagement(&[], 0).is_none());
        let ids = [5, 6, 7];
        let events: Vec<_> = (0..300)
            .filter_map(|i| generator.next_engagement(&ids, i))
            .collect();
        assert!(events
            .iter()
            .all(|e| ids.contains(&e.post_id) && e.delta != 0));
        let newest = events.iter().filter(|e| e.post_id == 7).count();
        let oldest = events.iter().filter(|e| e.post_id == 5).count();
        assert!(newest > oldest, "newer posts get more engagement");
        assert!(events.iter().any(|e| e.kind == EngagementKind::Share));
    }
}
