//! The sentiment chart: rolling mean compound over time, overall and for the
//! selected symbol, on the compound's fixed -1..1 scale.

use plotters::prelude::*;

use super::style::{house_mesh, label_font, OVERALL_LINE, SYMBOL_LINE, ZERO};
use super::{plottable_time, render_svg, time_axis, time_labels, Overlay};

pub const SENTIMENT_CHART_SIZE: (u32, u32) = (560, 220);

/// The points that can be drawn: finite, compound clamped to its [-1, 1] scale.
fn sentiment_points(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    points
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|&(ts, v)| (plottable_time(ts), v.clamp(-1.0, 1.0)))
        .collect()
}

/// Rolling mean compound over time, overall and (optionally) for one symbol.
pub fn sentiment_chart_svg(
    title: &str,
    overall: &[(i64, f64)],
    symbol: Option<(&str, &[(i64, f64)])>,
    size: (u32, u32),
) -> String {
    let overall = sentiment_points(overall);
    let symbol = symbol.map(|(name, points)| (name, sentiment_points(points)));
    let mut description = match overall.last() {
        Some((_, mean)) => format!(
            "{title}: overall mean compound {mean:+.2} over {} updates",
            overall.len()
        ),
        None => format!("{title}: no posts yet"),
    };
    if let Some((name, points)) = &symbol {
        if let Some((_, mean)) = points.last() {
            description.push_str(&format!(", {name} {mean:+.2}"));
        }
    }
    let symbol_points = symbol.as_ref().map_or(&[][..], |(_, p)| p.as_slice());
    render_svg(size, title, &description, |root| {
        draw_sentiment(root, &overall, symbol_points)
            .map(|()| Overlay::new())
            .map_err(|e| e.to_string())
    })
}

fn draw_sentiment<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    overall: &[(i64, f64)],
    symbol: &[(i64, f64)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let times = overall.iter().chain(symbol).map(|(ts, _)| *ts);
    let x_range = match (times.clone().min(), times.max()) {
        (Some(start), Some(end)) => time_axis(start, end),
        _ => time_axis(0, 60_000),
    };
    let (start, end) = (x_range.start, x_range.end);
    let (x_labels, x_label) = time_labels(&x_range, false, 4);
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(44)
        .build_cartesian_2d(x_range, -1.0..1.0)?;
    house_mesh(&mut chart.configure_mesh(), label_font())
        .x_labels(x_labels)
        .y_labels(5)
        .x_label_formatter(&|ts| x_label(*ts))
        .y_label_formatter(&|v| format!("{:+.1}", if *v == 0.0 { 0.0 } else { *v }))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(start, 0.0), (end, 0.0)],
        ZERO.stroke_width(1),
    )))?;
    chart.draw_series(LineSeries::new(
        overall.iter().copied(),
        OVERALL_LINE.stroke_width(2),
    ))?;
    chart.draw_series(LineSeries::new(
        symbol.iter().copied(),
        SYMBOL_LINE.stroke_width(2),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn mood(n: usize) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (T0 + i as i64 * 500, (i as f64 * 0.3).sin() * 0.8))
            .collect()
    }

    fn draw_sentiment_guarded(
        what: &str,
        overall: Vec<(i64, f64)>,
        name: &'static str,
        symbol: Vec<(i64, f64)>,
    ) -> String {
        finishes(what, move || {
            sentiment_chart_svg(
                "Rolling sentiment",
                &overall,
                Some((name, &symbol)),
                SENTIMENT_CHART_SIZE,
            )
        })
    }

    #[test]
    fn sentiment_with_hostile_values_finishes_and_stays_finite() {
        for value in HOSTILE {
            let mut overall = mood(5);
            overall.push((T0 + 10_000, value));
            let symbol = vec![(T0, value)];
            let svg = draw_sentiment_guarded("hostile compound", overall, "AAPL", symbol);
            assert_sane_svg(&svg);
        }
    }

    #[test]
    fn sentiment_text_uses_the_last_finite_value() {
        let overall = vec![(T0, 0.25), (T0 + 1_000, f64::NAN)];
        let symbol = vec![(T0, 0.5), (T0 + 1_000, f64::INFINITY)];
        let svg = draw_sentiment_guarded("NaN last", overall, "AAPL", symbol);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains("overall mean compound +0.25 over 1 updates"),
            "{}",
            desc(&svg)
        );
        assert!(desc(&svg).contains("AAPL +0.50"), "{}", desc(&svg));
    }

    #[test]
    fn sentiment_empty_one_point_and_many_draw() {
        let svg = draw_sentiment_guarded("empty", vec![], "AAPL", vec![]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("no posts yet"));
        let svg = draw_sentiment_guarded("one", vec![(T0, 0.5)], "AAPL", vec![(T0, -0.5)]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("over 1 updates"));
        assert_distinct(time_labels_of(&svg), 1);
        let svg = draw_sentiment_guarded("many", mood(300), "AAPL", mood(200));
        assert_sane_svg(&svg);
        assert!(labels(&svg).len() >= 4, "no axis labels");
        let svg = finishes("no symbol", || {
            sentiment_chart_svg("S", &mood(3), None, SENTIMENT_CHART_SIZE)
        });
        assert_sane_svg(&svg);
    }

    #[test]
    fn sentiment_extreme_timestamps_finish() {
        let overall = vec![(i64::MIN, 0.1), (i64::MAX, 0.2), (0, -0.3)];
        let svg = draw_sentiment_guarded("i64 ends", overall, "AAPL", vec![(i64::MAX, 1.0)]);
        assert_sane_svg(&svg);
    }

    #[test]
    fn sentiment_with_a_hundred_thousand_points_finishes() {
        let mut overall = mood(100_000);
        overall.push((T0 + 100_000_000, f64::NAN));
        let svg = draw_sentiment_guarded("100k", overall, "AAPL", mood(100_000));
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("over 100000 updates"));
    }

    #[test]
    fn sentiment_symbol_and_title_are_escaped() {
        let svg = finishes("escaping", || {
            sentiment_chart_svg(
                "Mood of <b>\"you\"</b>",
                &mood(3),
                Some(("<script>&'\u{0}", &mood(3))),
                SENTIMENT_CHART_SIZE,
            )
        });
        assert_sane_svg(&svg);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(
            desc(&svg).contains("&lt;script&gt;&amp;&#39;\u{FFFD}"),
            "{}",
            desc(&svg)
        );
        assert_eq!(title(&svg), "Mood of &lt;b&gt;&quot;you&quot;&lt;/b&gt;");
        let svg = finishes("escaping", || {
            sentiment_chart_svg(HOSTILE_TITLE, &[], None, SENTIMENT_CHART_SIZE)
        });
        assert_sane_svg(&svg);
        assert_eq!(title(&svg), HOSTILE_TITLE_ESCAPED);
    }

    #[test]
    fn a_flat_series_at_one_instant_draws() {
        // Every point at one time (a zero-width time axis) and one value.
        let same: Vec<(i64, f64)> = vec![(T0, 0.4); 50];
        let svg = draw_sentiment_guarded("one instant", same.clone(), "AAPL", same);
        assert_sane_svg(&svg);
        assert!(
            desc(&svg).contains("overall mean compound +0.40 over 50 updates"),
            "{}",
            desc(&svg)
        );
        assert_distinct(time_labels_of(&svg), 1);
    }

    #[test]
    fn compounds_outside_the_scale_are_clamped() {
        let svg =
            draw_sentiment_guarded("out of scale", vec![(T0, 7.0)], "AAPL", vec![(T0, -1e300)]);
        assert_sane_svg(&svg);
        assert!(desc(&svg).contains("+1.00"), "{}", desc(&svg));
        assert!(desc(&svg).contains("AAPL -1.00"), "{}", desc(&svg));
    }

    #[test]
    fn only_non_finite_points_read_as_no_posts() {
        let broken = vec![(T0, f64::NAN), (T0 + 1_000, f64::INFINITY)];
        let svg = draw_sentiment_guarded("only NaN", broken.clone(), "AAPL", broken);
        assert_sane_svg(&svg);
        assert_eq!(desc(&svg), "Rolling sentiment: no posts yet");
    }

    #[test]
    fn sentiment_time_labels_never_repeat_on_short_spans() {
        for n in [1, 2, 3, 7] {
            let svg = draw_sentiment_guarded("short span", mood(n), "AAPL", vec![]);
            assert_distinct(time_labels_of(&svg), 1);
        }
    }
}
