//! Indicator math over a series of closes: SMA, EMA, log returns and
//! volatility. Pure functions, so charts can use them on any series.

/// The newest value of an aligned indicator series, if it has one.
pub(super) fn last_value(series: &[Option<f64>]) -> Option<f64> {
    series.last().copied().flatten()
}

/// Simple moving average, aligned with `values`: element `i` is the mean of
/// `values[i + 1 - period ..= i]`, `None` for the first `period - 1` elements
/// (and everywhere if `period` is 0).
pub fn sma(values: &[f64], period: usize) -> Vec<Option<f64>> {
    (0..values.len())
        .map(|i| {
            if period == 0 || i + 1 < period {
                return None;
            }
            let window = &values[i + 1 - period..=i];
            Some(window.iter().sum::<f64>() / period as f64)
        })
        .collect()
}

/// Exponential moving average with `α = 2 / (period + 1)`, aligned with
/// `values`. It starts at index `period - 1` with the SMA of the first
/// `period` values (the usual seeding, so it does not depend on the first
/// value alone); earlier elements are `None`.
pub fn ema(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 || values.len() < period {
        return out;
    }
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut prev = values[..period].iter().sum::<f64>() / period as f64;
    out[period - 1] = Some(prev);
    for (slot, &v) in out.iter_mut().zip(values).skip(period) {
        prev = alpha * v + (1.0 - alpha) * prev;
        *slot = Some(prev);
    }
    out
}

/// Natural-log returns `ln(v[i] / v[i-1])`; one element shorter than `values`.
pub fn log_returns(values: &[f64]) -> Vec<f64> {
    values.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// Sample standard deviation (n − 1) of the log returns between the last
/// `window` values. `None` if `window < 3` (fewer than two returns), if there
/// are fewer than `window` values, or if a value is not finite and positive.
pub fn volatility(values: &[f64], window: usize) -> Option<f64> {
    if window < 3 || values.len() < window {
        return None;
    }
    let tail = &values[values.len() - window..];
    if !tail.iter().all(|v| v.is_finite() && *v > 0.0) {
        return None;
    }
    let returns = log_returns(tail);
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt())
}

/// [`volatility`] at every index, aligned with `values`.
pub fn rolling_volatility(values: &[f64], window: usize) -> Vec<Option<f64>> {
    (0..values.len())
        .map(|i| volatility(&values[..=i], window))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_approx(actual: Option<f64>, expected: f64) {
        match actual {
            Some(a) => assert!((a - expected).abs() < 1e-9, "{a} != {expected}"),
            None => panic!("None != {expected}"),
        }
    }

    #[test]
    fn sma_matches_hand_computation() {
        // [1,2,3,4,5], period 3: (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+5)/3 = 4.
        let out = sma(&[1.0, 2.0, 3.0, 4.0, 5.0], 3);
        assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(sma(&[1.0, 2.0], 0), vec![None, None]);
        assert_eq!(sma(&[1.0, 2.0], 3), vec![None, None]);
        assert_eq!(sma(&[], 3), Vec::<Option<f64>>::new());
        assert_eq!(sma(&[7.0], 1), vec![Some(7.0)]);
    }

    #[test]
    fn ema_matches_hand_computation() {
        // period 3 → α = 2/4 = 0.5. Seed = SMA(1,2,3) = 2.
        // i=3: 0.5·4 + 0.5·2   = 3
        // i=4: 0.5·5 + 0.5·3   = 4
        // i=5: 0.5·10 + 0.5·4  = 7
        let out = ema(&[1.0, 2.0, 3.0, 4.0, 5.0, 10.0], 3);
        assert_eq!(
            out,
            vec![None, None, Some(2.0), Some(3.0), Some(4.0), Some(7.0)]
        );
        // period 1 → α = 1: the EMA is the series itself.
        assert_eq!(ema(&[3.0, 9.0], 1), vec![Some(3.0), Some(9.0)]);
        assert_eq!(ema(&[1.0, 2.0], 0), vec![None, None]);
        assert_eq!(ema(&[1.0, 2.0], 5), vec![None, None]);
    }

    #[test]
    fn volatility_matches_hand_computation() {
        // closes 100, 110, 99: returns r1 = ln(1.1), r2 = ln(0.9).
        // mean m = (r1 + r2)/2; sample var = ((r1-m)² + (r2-m)²)/(2-1)
        //        = (r1 - r2)²/2, so stddev = |r1 - r2|/√2.
        let r1 = 1.1f64.ln();
        let r2 = 0.9f64.ln();
        let expected = (r1 - r2).abs() / 2f64.sqrt(); // ≈ 0.14190
        assert_approx(volatility(&[100.0, 110.0, 99.0], 3), expected);
        // Only the last `window` closes count: the leading 1.0 is ignored.
        assert_approx(volatility(&[1.0, 100.0, 110.0, 99.0], 3), expected);
        // Constant growth: equal returns, zero deviation.
        assert_approx(volatility(&[1.0, 2.0, 4.0, 8.0], 4), 0.0);
        assert_eq!(volatility(&[1.0, 2.0], 2), None, "one return is not enough");
        assert_eq!(volatility(&[1.0, 2.0], 3), None, "not enough closes");
        assert_eq!(volatility(&[1.0, 0.0, 2.0], 3), None);
        assert_eq!(volatility(&[1.0, f64::NAN, 2.0], 3), None);
        let rolling = rolling_volatility(&[100.0, 110.0, 99.0], 3);
        assert_eq!(rolling[..2], [None, None]);
        assert_approx(rolling[2], expected);
        assert_eq!(log_returns(&[1.0]), Vec::<f64>::new());
    }
}
