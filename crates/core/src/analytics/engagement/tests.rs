//! Engine tests: totals, rates, windows, top posts, eviction, odd input.

use super::*;
use crate::model::EngagementKind;

const T0: TimestampMs = 1_780_000_020_000; // minute-aligned

fn ev(post_id: u64, kind: EngagementKind, delta: i64, ts: TimestampMs) -> Engagement {
    Engagement {
        post_id,
        kind,
        delta,
        ts,
    }
}

fn syms(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

use EngagementKind::{Comment, Like, Share};

#[test]
fn totals_clamp_at_zero() {
    let mut e = EngagementEngine::default();
    e.register_post(1);
    assert_eq!(e.apply(&ev(1, Like, 3, T0)).unwrap().applied_delta, 3);
    // 3 - 5 would be -2: clamped to 0, so only -3 is applied.
    let u = e.apply(&ev(1, Like, -5, T0)).unwrap();
    assert_eq!((u.applied_delta, u.totals.likes), (-3, 0));
    let u = e.apply(&ev(1, Like, -1, T0)).unwrap();
    assert_eq!((u.applied_delta, u.totals.likes, u.windowed), (0, 0, false));
    e.apply(&ev(1, Share, 2, T0)).unwrap();
    e.apply(&ev(1, Comment, 1, T0)).unwrap();
    let t = e.totals(1).unwrap();
    assert_eq!((t.likes, t.shares, t.comments), (0, 2, 1));
    // Score = 0·1 + 1·2 + 2·3 = 8.
    assert_eq!(t.score(), 8);
    // Extreme deltas saturate instead of overflowing.
    e.apply(&ev(1, Like, i64::MAX, T0)).unwrap();
    e.apply(&ev(1, Like, i64::MAX, T0)).unwrap();
    assert_eq!(e.totals(1).unwrap().likes, i64::MAX);
    e.apply(&ev(1, Like, i64::MIN, T0)).unwrap();
    assert_eq!(e.totals(1).unwrap().likes, 0);
}

#[test]
fn unknown_posts_are_rejected() {
    let mut e = EngagementEngine::default();
    assert_eq!(
        e.apply(&ev(7, Like, 1, T0)),
        Err(EngagementError::UnknownPost(7))
    );
    assert_eq!(
        EngagementError::UnknownPost(7).to_string(),
        "unknown post 7"
    );
}

#[test]
fn rates_are_dense_and_net() {
    let mut e = EngagementEngine::new(EngagementConfig {
        max_posts: 10,
        ten_second_buckets: 3,
        minute_buckets: 2,
    });
    e.register_post(1);
    e.apply(&ev(1, Like, 2, T0 + 1_000)).unwrap(); // bucket T0
    e.apply(&ev(1, Share, 1, T0 + 9_999)).unwrap(); // bucket T0
    e.apply(&ev(1, Like, -1, T0 + 20_000)).unwrap(); // bucket T0+20s, boundary

    // now = T0+25s: 10 s buckets T0, T0+10s, T0+20s.
    let r = e.rates(T0 + 25_000);
    let fine: Vec<_> = r
        .per_10s
        .iter()
        .map(|b| (b.start, b.likes, b.shares, b.comments))
        .collect();
    assert_eq!(
        fine,
        [
            (T0, 2, 1, 0),
            (T0 + 10_000, 0, 0, 0),
            (T0 + 20_000, -1, 0, 0)
        ]
    );
    // Minutes T0-60s (empty) and T0: likes 2-1 = 1, shares 1.
    let minutes: Vec<_> = r
        .per_minute
        .iter()
        .map(|b| (b.start, b.likes, b.shares, b.comments))
        .collect();
    assert_eq!(minutes, [(T0 - 60_000, 0, 0, 0), (T0, 1, 1, 0)]);

    e.apply(&ev(1, Comment, 4, T0 + 61_000)).unwrap(); // next minute
                                                       // now = T0+61s: the fine ring kept only buckets within 3 of T0+60s.
    let r = e.rates(T0 + 61_000);
    assert_eq!(
        r.per_10s.iter().map(|b| b.start).collect::<Vec<_>>(),
        [T0 + 40_000, T0 + 50_000, T0 + 60_000]
    );
    assert_eq!(r.per_10s[2].comments, 4);
    assert_eq!((r.per_minute[0].likes, r.per_minute[1].comments), (1, 4));
    assert_eq!(e.fine.buckets.len(), 1, "old fine buckets evicted");
}

#[test]
fn top_posts_rank_by_weighted_window_score() {
    let mut e = EngagementEngine::default();
    for id in 1..=4 {
        e.register_post(id);
    }
    let now = T0 + 600_000; // 10 minutes later
                            // Post 1: 5 likes now → 5. Post 2: 1 share + 1 comment → 3 + 2 = 5.
                            // Post 3: 3 shares, but 6 minutes ago → 9 in the 15 min window only.
                            // Post 4: 1 like then unliked → 0, never listed.
    e.apply(&ev(1, Like, 5, now - 1_000)).unwrap();
    e.apply(&ev(2, Share, 1, now - 2_000)).unwrap();
    e.apply(&ev(2, Comment, 1, now - 3_000)).unwrap();
    e.apply(&ev(3, Share, 3, now - 360_000)).unwrap();
    e.apply(&ev(4, Like, 1, now)).unwrap();
    e.apply(&ev(4, Like, -1, now)).unwrap();

    let top5 = e.top_posts(now, 5 * 60_000, 10);
    let ranked: Vec<_> = top5.iter().map(|t| (t.post_id, t.score)).collect();
    assert_eq!(ranked, [(1, 5), (2, 5)], "tie → lower id first");
    assert_eq!(top5[1].window.shares, 1);

    let top15 = e.top_posts(now, 15 * 60_000, 2);
    let ranked: Vec<_> = top15.iter().map(|t| (t.post_id, t.score)).collect();
    assert_eq!(ranked, [(3, 9), (1, 5)]);
    assert_eq!(top15[0].totals.shares, 3);

    assert!(e.top_posts(now, 0, 10).is_empty());
    assert!(e.top_posts(now, 60_000, 0).is_empty());
    // Events after `now` are not counted.
    assert!(e.top_posts(now - 20_000, 10_000, 10).is_empty());
}

#[test]
fn window_boundaries_are_bucket_aligned() {
    let mut e = EngagementEngine::default();
    e.register_post(1);
    e.apply(&ev(1, Like, 1, T0)).unwrap(); // bucket T0
                                           // now = T0+19_999 lies in bucket T0+10s. A 10 s window is just that
                                           // bucket; an 11 s window rounds up to 2 buckets and includes T0.
    assert!(e.top_posts(T0 + 19_999, 10_000, 1).is_empty());
    assert_eq!(e.top_posts(T0 + 19_999, 11_000, 1).len(), 1);
    assert_eq!(window_buckets(1), 1);
    assert_eq!(window_buckets(10_000), 1);
    assert_eq!(window_buckets(10_001), 2);
    assert_eq!(window_buckets(-5), 0);
}

#[test]
fn oldest_registrations_are_evicted() {
    let mut e = EngagementEngine::new(EngagementConfig {
        max_posts: 2,
        ..EngagementConfig::default()
    });
    e.register_post(1);
    e.register_post(2);
    e.apply(&ev(1, Like, 5, T0)).unwrap();
    e.register_post(1); // re-register: keeps place and totals
    assert_eq!(e.totals(1).unwrap().likes, 5);
    e.register_post(3);
    assert!(!e.is_known(1));
    assert_eq!(
        e.apply(&ev(1, Like, 1, T0)),
        Err(EngagementError::UnknownPost(1))
    );
    // Evicted posts vanish from the top list even though buckets remember them.
    assert!(e.top_posts(T0, 60_000, 10).is_empty());
    assert!(e.is_known(2) && e.is_known(3));

    let mut none = EngagementEngine::new(EngagementConfig {
        max_posts: 0,
        ..EngagementConfig::default()
    });
    none.register_post(1);
    assert!(!none.is_known(1));
    assert_eq!(
        none.apply(&ev(1, Like, 1, T0)),
        Err(EngagementError::UnknownPost(1))
    );
}

#[test]
fn seeded_totals_are_the_starting_point() {
    let mut e = EngagementEngine::default();
    let totals = Counts {
        likes: 10,
        shares: -3,
        comments: 2,
    };
    e.register_post_with_totals(9, totals);
    assert_eq!(e.totals(9).unwrap().shares, 0, "negative seed clamped");
    let u = e.apply(&ev(9, Like, -4, T0)).unwrap();
    assert_eq!((u.applied_delta, u.totals.likes), (-4, 6));
    // The seed is not engagement within any window: only the -4 is.
    assert!(e.top_posts(T0, 60_000, 1).is_empty());
    assert_eq!(e.rates(T0).per_10s.last().map(|b| b.likes), Some(-4));
}

#[test]
fn register_from_post_makes_it_known() {
    use crate::model::{Sentiment, SentimentLabel};
    let mut e = EngagementEngine::default();
    let post = Post {
        id: 5,
        author: "ann".into(),
        text: "$AAPL".into(),
        ts: T0,
        sentiment: Sentiment {
            compound: -0.5,
            pos: 0.0,
            neu: 0.5,
            neg: 0.5,
            label: SentimentLabel::Negative,
        },
        symbols: syms(&["AAPL"]),
    };
    assert!(!e.is_known(5));
    e.register(&post);
    assert!(e.is_known(5));
    assert_eq!(e.apply(&ev(5, Like, 2, T0)).unwrap().totals.likes, 2);
}

#[test]
fn old_events_update_totals_only_and_odd_timestamps_are_safe() {
    let mut e = EngagementEngine::new(EngagementConfig {
        max_posts: 10,
        ten_second_buckets: 2,
        minute_buckets: 1,
    });
    e.register_post(1);
    e.apply(&ev(1, Like, 1, T0 + 120_000)).unwrap();
    let u = e.apply(&ev(1, Like, 1, T0)).unwrap();
    assert_eq!((u.totals.likes, u.windowed), (2, false));
    assert!(e.top_posts(T0, 10_000, 1).is_empty(), "no window saw it");

    assert_eq!(
        e.apply(&ev(1, Like, 1, i64::MIN)),
        Err(EngagementError::TimestampOutOfRange(i64::MIN))
    );
    assert!(e.apply(&ev(1, Like, 1, i64::MAX)).is_ok());
    assert!(e.apply(&ev(1, Like, 1, -1)).is_ok());
    let _ = e.rates(i64::MIN);
    let _ = e.rates(i64::MAX);
    let _ = e.top_posts(i64::MAX, i64::MAX, usize::MAX);
    let _ = e.top_posts(i64::MIN, i64::MAX, 1);
    assert!(e.fine.buckets.len() <= 2 && e.minutes.buckets.len() <= 1);
    // -1 ms lies in the 10 s bucket [-10000, 0).
    assert_eq!(bucket_start(-1, TEN_SECONDS_MS), Some(-10_000));
}

#[test]
fn rings_stay_bounded_under_load() {
    let mut e = EngagementEngine::default();
    for id in 0..20_000u64 {
        e.register_post(id);
        e.apply(&ev(id, Comment, 1, T0 + id as i64 * 1_000))
            .unwrap();
    }
    // The newest 10,000 registrations are kept.
    assert!(!e.is_known(9_999) && e.is_known(10_000) && e.is_known(19_999));
    assert!(e.fine.buckets.len() <= 90);
    assert!(e.minutes.buckets.len() <= 60);
    let now = T0 + 19_999_000;
    let rates = e.rates(now);
    assert_eq!((rates.per_10s.len(), rates.per_minute.len()), (90, 60));
    // Each full 10 s bucket holds 10 events, each worth one comment.
    assert_eq!(rates.per_10s[88].comments, 10);
    // 90 buckets = 15 minutes: events from now-899s..now → 900 comments.
    let comments: i64 = rates.per_10s.iter().map(|b| b.comments).sum();
    assert_eq!(comments, 900);
}

#[test]
fn rates_serialize_as_flat_buckets() {
    let mut e = EngagementEngine::default();
    e.register_post(1);
    e.apply(&ev(1, Like, 1, T0)).unwrap();
    let rates = serde_json::to_value(e.rates(T0)).unwrap();
    assert_eq!(rates["per_10s"][89]["likes"], 1);
    assert_eq!(rates["per_10s"][89]["start"], T0);
}
