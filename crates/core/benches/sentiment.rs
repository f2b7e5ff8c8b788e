//! Throughput of `SentimentAnalyzer::analyze` on a mix of short market and
//! social posts: `cargo bench --bench sentiment`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pulse_core::analytics::sentiment::{mentioned_symbols, SentimentAnalyzer};

/// ~100 realistic posts: cashtags, mentions, URLs, emoji, negations, caps,
/// boosters, "but", slang and plain sentences.
const POSTS: &[&str] = &[
    "$AAPL to the moon 🚀🚀🚀",
    "bagholding $TSLA, totally rekt",
    "Not bad at all, earnings beat expectations",
    "$NVDA is VERY bullish right now!!!",
    "I don't think $AMD will recover this quarter",
    "@trader_joe you were right, huge rally today 📈",
    "Market crash incoming? Everything is dumping 📉",
    "diamond hands 💎🙌 holding $GME forever",
    "paper hands sold at the bottom lol",
    "New all-time high for $BTC, incredible run",
    "The Fed meeting was kind of boring but okay",
    "Downgrade from Goldman, $XYZ down 8% premarket",
    "short squeeze loading... $AMC",
    "Great quarter, but guidance was weak",
    "this stock is tanking and I am so done",
    "Thanks for the tip, made some tendies today 😂",
    "https://example.com/chart $SPY breakout above resistance",
    "Not sure about $META, could go either way",
    "absolutely terrible earnings call, CEO dodged every question",
    "Bought the dip, feeling good about it 👍🏽",
    "Why is nobody talking about $PLTR??",
    "sooooo happy I sold before the drop",
    "worst trade of my life 😭",
    "$MSFT steady as always, nothing exciting",
    "pump and dump, stay away",
    "Volume is picking up on $SOFI",
    "I love this community ❤️",
    "Analysts upgrade $NFLX to buy",
    "Missed earnings again, what a joke",
    "The chart looks ugly, lower lows everywhere",
    "HODL! We are not selling",
    "Can't believe how well $COIN did today",
    "$ARKK down another 5%, brutal",
    "Is this the bottom? Probably not...",
    "At least the dividend is safe",
    "nice gains today, happy with my portfolio",
    "Inflation data was worse than expected",
    "Bearish divergence on the daily, careful",
    "lol this market is crazy",
    "Holding strong, no fear",
    "The earnings were good, but the stock still fell",
    "rug pull on that new coin, lost everything",
    "I'm not happy with this position at all",
    "Very solid report from $JPM",
    "Ugh, stopped out again 😤",
    "$TSLA deliveries beat estimates!",
    "everything is red today",
    "Best day of the year for my account 🎉",
    "They said it would moon. It did not.",
    "Wow, what a comeback!",
    "panic selling everywhere, fear index spiking",
    "cautiously optimistic about next week",
    "this is fine 🔥",
    "$DIS streaming numbers disappoint",
    "Amazing product launch, take my money",
    "Recession fears grow as yields invert",
    "bought more $VTI, boring but effective",
    "Stop loss hit. Lesson learned.",
    "gm frens, wagmi",
    "@elonmusk please stop tweeting",
    "Support held perfectly, textbook bounce",
    "Earnings tomorrow, IV is insane",
    "That was a brutal sell-off",
    "Skyrocketing after FDA approval!!!",
    "no gains, no losses, just sideways chop",
    "I really hate how this market moves",
    "outperformed the S&P again this year",
    "$BABA plunged on regulatory news",
    "pretty good entry here IMO",
    "this rally is fake, don't trust it",
    "BUY BUY BUY",
    "Sell everything now",
    "Dead cat bounce, nothing more",
    "Fantastic execution by the team 👏",
    "I am worried about my retirement account",
    "Super excited for the merger news!",
    "guh. margin call.",
    "Let's go $RIVN 🚀",
    "fed up with these fake breakouts",
    "$INTC is a value trap, avoid",
    "nice and calm day in the market",
    "Never been so happy to take profits",
    "The CEO is a genius",
    "fraud allegations hit the stock hard",
    "slightly disappointed with the guidance",
    "Yields up, stocks down, same old story",
    "Strong buy rating maintained",
    "This is the worst possible outcome",
    "not bullish, not bearish, just watching",
    "love love love this setup",
    "Cheers to a green week 🍻",
    "bleeding money every day 😩",
    "Oil prices surge on supply fears",
    "Well done, great call on $AMZN",
    "Market closed early today",
    "huge loss on my puts, lesson learned",
    "wtf is going on with $SPY",
    "Solid earnings, solid guidance, solid company",
    "It isn't a horrible trade, just a small loss",
    "I'm kinda hoping for a pullback",
];

fn bench(c: &mut Criterion) {
    let analyzer = SentimentAnalyzer::new();
    let mut group = c.benchmark_group("sentiment");
    group.throughput(Throughput::Elements(POSTS.len() as u64));
    group.bench_function("analyze_posts", |b| {
        b.iter(|| {
            for post in POSTS {
                black_box(analyzer.analyze(black_box(post)));
            }
        })
    });
    let known = ["AAPL", "TSLA", "SPY", "NVDA", "BTC"];
    group.bench_function("mentioned_symbols_posts", |b| {
        b.iter(|| {
            for post in POSTS {
                black_box(mentioned_symbols(black_box(post), &known));
            }
        })
    });
    group.finish();
    c.bench_function("build_analyzer", |b| b.iter(SentimentAnalyzer::new));
}

criterion_group!(benches, bench);
criterion_main!(benches);
