use super::*;
use crate::broker::memory::MemoryBroker;
use crate::broker::BrokerConfig;
use pulse_core::model::{CandleInterval, EngagementKind};

const NOW: TimestampMs = 1_780_000_000_000;

fn ingest() -> Ingest {
    Ingest::new(MemoryBroker::new(BrokerConfig::default(), "t"), None)
}

fn tick(symbol: &str, price: f64, ts: TimestampMs) -> Tick {
    Tick {
        symbol: symbol.into(),
        price,
        volume: 1.0,
        ts,
    }
}

fn new_post(text: &str) -> NewPost {
    NewPost {
        author: "ann".into(),
        text: text.into(),
        ts: Some(NOW),
    }
}

#[tokio::test]
async fn a_bad_item_rejects_the_whole_batch() {
    let ingest = ingest();
    let error = ingest
        .ticks(vec![tick("AAPL", 1.0, NOW), tick("AAPL", -1.0, NOW)], NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(error, IngestError::Invalid { index: 1, ref error } if error.field == "price")
    );
    assert!(
        ingest.symbols().is_empty(),
        "nothing from the batch applied"
    );
    assert_eq!(ingest.broker().position(&Topic::Ticks).offset, 0);
}

#[tokio::test]
async fn posts_are_scored_attributed_and_aggregated() {
    let ingest = ingest();
    ingest.tick(tick("TSLA", 200.0, NOW), NOW).await.unwrap();
    ingest.tick(tick("AAPL", 180.0, NOW), NOW).await.unwrap();
    let posts = ingest
        .posts(
            vec![
                new_post("TSLA is going to the moon, love it!"),
                new_post("$AAPL is a terrible dump $MADEUP"),
            ],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(posts[0].id, 1);
    assert_eq!(posts[0].symbols, ["TSLA"]);
    assert!(posts[0].sentiment.compound > 0.3);
    assert_eq!(posts[1].symbols, ["AAPL"], "only tracked symbols count");
    assert!(posts[1].sentiment.compound < -0.3);
    let (overall, by_symbol) = ingest.sentiment();
    assert_eq!(
        (overall.posts, overall.positive, overall.negative),
        (2, 1, 1)
    );
    assert_eq!(by_symbol["TSLA"].positive, 1);
    let feed = ingest.recent_posts(10, None);
    assert_eq!(feed.iter().map(|p| p.post.id).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(ingest.recent_posts(10, Some(2)).len(), 1);
}

#[tokio::test]
async fn engagement_needs_a_known_post_and_never_goes_negative() {
    let ingest = ingest();
    let post = ingest
        .posts(vec![new_post("hello")], NOW)
        .await
        .unwrap()
        .remove(0);
    let like = |post_id, delta| Engagement {
        post_id,
        kind: EngagementKind::Like,
        delta,
        ts: NOW,
    };
    let error = ingest
        .engagements(vec![like(post.id, 1), like(999, 1)], NOW)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        IngestError::UnknownPost {
            index: 1,
            post_id: 999
        }
    ));
    assert_eq!(
        ingest.recent_posts(1, None)[0].engagement.likes,
        0,
        "batch not applied"
    );
    ingest
        .engagements(vec![like(post.id, 2), like(post.id, -5)], NOW)
        .await
        .unwrap();
    assert_eq!(ingest.recent_posts(1, None)[0].engagement.likes, 0);
    ingest
        .engagements(vec![like(post.id, 3)], NOW)
        .await
        .unwrap();
    assert_eq!(ingest.recent_posts(1, None)[0].engagement.likes, 3);
}

#[tokio::test]
async fn ticks_build_candles() {
    let ingest = ingest();
    ingest
        .ticks(
            vec![
                tick("A", 10.0, NOW),
                tick("A", 12.0, NOW + 10),
                tick("A", 9.0, NOW + 20),
            ],
            NOW + 20,
        )
        .await
        .unwrap();
    let candles = ingest.candles("A", CandleInterval::OneSecond);
    assert_eq!(candles.len(), 1);
    assert_eq!(
        (
            candles[0].open,
            candles[0].high,
            candles[0].low,
            candles[0].close
        ),
        (10.0, 12.0, 9.0, 9.0)
    );
    let published = ingest.broker().position(&Topic::Candles("A".into())).offset;
    assert_eq!(published, 6, "a 1 s and a 1 min candle update per tick");
    // Two seconds later the 1 s candle is due; the 1 m one is not yet.
    assert_eq!(ingest.close_due_candles(NOW + 2_000).await.unwrap(), 1);
    assert_eq!(
        ingest.close_due_candles(NOW + 2_000).await.unwrap(),
        0,
        "closed once"
    );
    assert_eq!(
        ingest.broker().position(&Topic::Candles("A".into())).offset,
        published + 1
    );
}

/// A symbol's topics are remembered after its first tick; once they are
/// removed (the symbol forgotten) or replaced (a new epoch), its next tick
/// must go to the topics subscribers see now, not the old ones, and the
/// memory must not keep the old topics (and their subscribers) alive.
#[tokio::test]
async fn ticks_after_a_forgotten_symbol_or_a_new_epoch_reach_the_current_topics() {
    let ingest = ingest();
    let broker = Arc::clone(ingest.broker());
    ingest.ticks(vec![tick("F", 10.0, NOW)], NOW).await.unwrap();
    assert_eq!(ingest.forget_idle_symbols(i64::MAX), ["F".to_owned()]);

    let topics = [Topic::SymbolTicks("F".into()), Topic::Candles("F".into())];
    let mut subs: Vec<_> = topics.iter().map(|t| broker.subscribe(t, None)).collect();
    ingest
        .ticks(vec![tick("F", 11.0, NOW + 1)], NOW + 1)
        .await
        .unwrap();
    for (topic, sub) in topics.iter().zip(&mut subs) {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), sub.receiver.recv())
            .await
            .unwrap_or_else(|_| panic!("{topic}: the tick reaches the topic's new life"))
            .unwrap();
        assert!(
            frame.text.as_str().contains("11"),
            "{topic}: {}",
            frame.text.as_str()
        );
    }

    // Subscribers of the topics a new epoch replaces are let go (their
    // channel closes, so they resubscribe), even if no tick comes.
    let mut before: Vec<_> = topics.iter().map(|t| broker.subscribe(t, None)).collect();
    ingest.adopt_epoch("later");
    for (topic, old) in topics.iter().zip(&mut before) {
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match old.receiver.recv().await {
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => continue,
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{topic}: the replaced topic's channel closes"
        );
    }
    let mut sub = broker.subscribe(&topics[0], None);
    assert!(sub.epoch.starts_with("later"), "{}", sub.epoch);
    ingest
        .ticks(vec![tick("F", 12.0, NOW + 2)], NOW + 2)
        .await
        .unwrap();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), sub.receiver.recv())
        .await
        .expect("the tick reaches the topic of the new epoch")
        .unwrap();
    assert!(
        frame.text.as_str().contains("12"),
        "{}",
        frame.text.as_str()
    );
}
