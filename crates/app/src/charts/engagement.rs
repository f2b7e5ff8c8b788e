//! The engagement chart: likes, comments and shares per time bucket, stacked.

use plotters::prelude::*;

use pulse_core::protocol::RateBucket;

use super::marks::{hex, path, rect_path};
use super::style::{house_mesh, label_font, COMMENTS, LIKES, SHARES};
use super::{bar_axis, plottable_time, render_svg, time_axis, time_labels, Overlay};
use crate::format::{clock_time, compact};

pub const ENGAGEMENT_CHART_SIZE: (u32, u32) = (560, 220);

/// Longest bucket a chart draws (one year): keeps bucket arithmetic far from overflow.
const MAX_BUCKET_MS: i64 = 366 * 86_400_000;

/// A bucket as drawn: start clamped, counts non-negative.
struct Stack {
    start: i64,
    likes: i64,
    comments: i64,
    shares: i64,
}

impl Stack {
    fn total(&self) -> i64 {
        self.likes
            .saturating_add(self.comments)
            .saturating_add(self.shares)
    }
}

fn stacks(buckets: &[RateBucket]) -> Vec<Stack> {
    let mut stacks: Vec<Stack> = buckets
        .iter()
        .map(|b| Stack {
            start: plottable_time(b.start),
            likes: b.likes.max(0),
            comments: b.comments.max(0),
            shares: b.shares.max(0),
        })
        .collect();
    stacks.sort_by_key(|s| s.start);
    stacks
}

/// Likes, shares and comments per bucket, stacked.
pub fn engagement_chart_svg(
    title: &str,
    buckets: &[RateBucket],
    bucket_ms: i64,
    size: (u32, u32),
) -> String {
    let bucket_ms = bucket_ms.clamp(1, MAX_BUCKET_MS);
    let stacks = stacks(buckets);
    let (likes, shares, comments) = stacks.iter().fold((0i64, 0i64, 0i64), |(l, s, c), b| {
        (
            l.saturating_add(b.likes),
            s.saturating_add(b.shares),
            c.saturating_add(b.comments),
        )
    });
    let description = match (stacks.first(), stacks.last()) {
        (Some(first), Some(last)) => format!(
            "{title}: from {} to {}, {likes} likes, {shares} shares, {comments} comments",
            clock_time(first.start),
            clock_time(last.start + bucket_ms),
        ),
        _ => format!("{title}: no engagement yet"),
    };
    render_svg(size, title, &description, |root| {
        draw_engagement(root, &stacks, bucket_ms).map_err(|e| e.to_string())
    })
}

/// Axes from plotters; the bars as one path per kind (3 elements, not 3 per bucket).
fn draw_engagement<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    stacks: &[Stack],
    bucket_ms: i64,
) -> Result<Overlay, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_range = match (stacks.first(), stacks.last()) {
        (Some(first), Some(last)) => time_axis(first.start, last.start + bucket_ms),
        _ => time_axis(0, 60 * bucket_ms),
    };
    let (x_labels, x_label) = time_labels(&x_range, true, 4);
    let max = stacks.iter().map(Stack::total).max().unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(x_range, bar_axis(max as f64, 1.15, 4.0))?;
    house_mesh(chart.configure_mesh().disable_x_mesh(), label_font())
        .x_labels(x_labels)
        .y_labels(4)
        .x_label_formatter(&|ts| x_label(*ts))
        .y_label_formatter(&|v| compact(*v))
        .draw()?;
    let gap = (bucket_ms / 8).max(1);
    // Likes at the bottom, then comments, then shares.
    let mut kinds = [
        (LIKES, String::new()),
        (COMMENTS, String::new()),
        (SHARES, String::new()),
    ];
    for b in stacks {
        let (x0, x1) = (b.start + gap, b.start + bucket_ms - gap);
        let mut base = 0.0;
        for (count, (_, d)) in [b.likes, b.comments, b.shares].into_iter().zip(&mut kinds) {
            if count > 0 {
                let top = base + count as f64;
                rect_path(
                    d,
                    chart.backend_coord(&(x0, top)),
                    chart.backend_coord(&(x1, base)),
                );
                base = top;
            }
        }
    }
    let mut svg = Overlay::new();
    for (color, d) in &kinds {
        path(&mut svg, &format!(r#"fill="{}""#, hex(*color)), d);
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn bucket(start: i64, likes: i64, shares: i64, comments: i64) -> RateBucket {
        RateBucket {
            start,
            likes,
            shares,
            comments,
        }
    }

    fn activity(n: usize) -> Vec<RateBucket> {
        (0..n)
            .map(|i| {
                bucket(
                    T0 + i as i64 * 10_000,
                    i as i64 % 7,
                    i as i64 % 3,
                    i as i64 % 5,
                )
            })
            .collect()
    }

    fn draw_engagement_guarded(what: &str, buckets: Vec<RateBucket>, bucket_ms: i64) -> String {
        finishes(what, move || {
            engagement_chart_svg("Engagement", &buckets, bucket_ms, ENGAGEMENT_CHART_SIZE)
        })
    }

    #[test]
    fn engagement_with_extreme_counts_finishes() {
        let buckets = vec![
            bucket(T0, i64::MAX, i64::MAX, i64::MAX),
            bucket(T0 + 10_000, i64::MIN, -1, 0),
            bucket(T0 + 20_000, i64::MAX, 0, 1),
        ];
        let svg = draw_engagement_guarded("i64::MAX counts", buckets, 10_000);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains(&format!("{} likes", i64::MAX)),
            "{}",
            desc(&svg)
        );
        let long: Vec<String> = labels(&svg).into_iter().filter(|l| l.len() > 8).collect();
        assert!(long.is_empty(), "labels too long for the axis: {long:?}");
    }

    #[test]
    fn engagement_with_extreme_buckets_and_timestamps_finishes() {
        for bucket_ms in [i64::MIN, -1, 0, 1, i64::MAX] {
            for start in [i64::MIN, 0, T0, i64::MAX] {
                let buckets = vec![
                    bucket(start, 1, 2, 3),
                    bucket(start.saturating_add(1), 0, 0, 1),
                ];
                let svg = draw_engagement_guarded("extreme bucket", buckets, bucket_ms);
                assert_sane_svg(&svg);
            }
            assert_sane_svg(&draw_engagement_guarded(
                "empty, odd bucket",
                vec![],
                bucket_ms,
            ));
        }
    }

    #[test]
    fn engagement_empty_one_and_many_draw() {
        let svg = draw_engagement_guarded("empty", vec![], 10_000);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("no engagement yet"));
        let svg = draw_engagement_guarded("one", vec![bucket(T0, 1, 0, 0)], 10_000);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("1 likes, 0 shares, 0 comments"));
        assert_distinct(time_labels_of(&svg), 1);
        let svg = draw_engagement_guarded("many", activity(60), 10_000);
        assert_sane_svg(&svg);
        for color in ["#DB2777", "#D97706", "#6D28D9"] {
            assert!(
                svg.contains(&format!(r#"<path fill="{color}" d="M"#)),
                "no {color} bars"
            );
        }
        assert!(labels(&svg).len() >= 4, "no axis labels");
    }

    #[test]
    fn bars_are_three_paths_stacked_likes_first() {
        let svg = draw_engagement_guarded("one bucket", vec![bucket(T0, 4, 2, 2)], 10_000);
        assert_eq!(svg.matches("<path").count(), 3, "{svg}");
        let likes = path_numbers(&svg, r##"fill="#DB2777""##);
        let comments = path_numbers(&svg, r##"fill="#D97706""##);
        let shares = path_numbers(&svg, r##"fill="#6D28D9""##);
        // Pixel y grows downwards: comments sit on the likes, shares on the comments.
        assert!(
            (comments[1] + comments[3] - likes[1]).abs() <= 1,
            "{likes:?} {comments:?}"
        );
        assert!(
            (shares[1] + shares[3] - comments[1]).abs() <= 1,
            "{comments:?} {shares:?}"
        );
        assert!(
            (likes[3] - 2 * comments[3]).abs() <= 2,
            "4 likes twice as tall as 2 comments"
        );
        let many = draw_engagement_guarded("many", activity(600), 10_000);
        assert_eq!(
            many.matches("<path").count(),
            3,
            "one path per kind at any count"
        );
    }

    #[test]
    fn engagement_with_a_hundred_thousand_buckets_finishes() {
        let mut buckets = activity(100_000);
        buckets[50_000].likes = i64::MAX;
        let svg = draw_engagement_guarded("100k", buckets, 10_000);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains(&format!("{} likes", i64::MAX)),
            "{}",
            desc(&svg)
        );
    }

    #[test]
    fn engagement_titles_are_escaped() {
        let svg = finishes("escaping", || {
            engagement_chart_svg(
                "<script>&\"'</script>\u{1b}",
                &activity(3),
                10_000,
                ENGAGEMENT_CHART_SIZE,
            )
        });
        assert_sane_svg(&svg);
        assert!(!svg.contains("<script>"));
        assert_eq!(
            title(&svg),
            "&lt;script&gt;&amp;&quot;&#39;&lt;/script&gt;\u{FFFD}"
        );
        let svg = draw_engagement_titled(HOSTILE_TITLE, vec![]);
        assert_sane_svg(&svg);
        assert_eq!(title(&svg), HOSTILE_TITLE_ESCAPED);
        assert!(
            desc(&svg).starts_with(HOSTILE_TITLE_ESCAPED),
            "{}",
            desc(&svg)
        );
    }

    fn draw_engagement_titled(title: &'static str, buckets: Vec<RateBucket>) -> String {
        finishes(title, move || {
            engagement_chart_svg(title, &buckets, 10_000, ENGAGEMENT_CHART_SIZE)
        })
    }

    #[test]
    fn buckets_without_any_reaction_draw_an_empty_axis() {
        let quiet: Vec<RateBucket> = (0..6).map(|i| bucket(T0 + i * 10_000, 0, 0, 0)).collect();
        let svg = draw_engagement_guarded("all zero", quiet, 10_000);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains("0 likes, 0 shares, 0 comments"),
            "{}",
            desc(&svg)
        );
        // The axis keeps its minimum height (0..4), so it still has labels.
        assert!(labels(&svg).iter().any(|l| l == "4"), "{:?}", labels(&svg));
    }

    #[test]
    fn equal_buckets_and_buckets_at_one_instant_draw() {
        let equal: Vec<RateBucket> = (0..6).map(|i| bucket(T0 + i * 10_000, 3, 3, 3)).collect();
        let svg = draw_engagement_guarded("equal", equal, 10_000);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains("18 likes, 18 shares, 18 comments"),
            "{}",
            desc(&svg)
        );
        let same: Vec<RateBucket> = (0..4).map(|_| bucket(T0, 1, 1, 1)).collect();
        let svg = draw_engagement_guarded("one instant", same, 10_000);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("4 likes"), "{}", desc(&svg));
        assert_distinct(time_labels_of(&svg), 1);
    }

    #[test]
    fn engagement_time_labels_never_repeat_on_short_spans() {
        for n in [1, 2, 13] {
            let svg = draw_engagement_guarded("short span", activity(n), 10_000);
            assert_distinct(time_labels_of(&svg), 1);
        }
    }
}
