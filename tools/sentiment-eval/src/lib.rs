//! Agreement with the human ratings in `data/sentiment/*.tsv` (metric
//! definitions in `data/sentiment/README.md`). Shared by the
//! `sentiment-eval` binary and the regression test.

use std::fmt;
use std::path::Path;

use pulse_core::analytics::sentiment::SentimentAnalyzer;

/// Ratings beyond this magnitude count as clearly signed (±0.05 once divided by 4).
pub const SIGNED_THRESHOLD: f64 = 0.2;

/// Metrics of one rated file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalReport {
    /// Rated texts.
    pub n: usize,
    /// Pearson correlation of `compound` with `mean_rating`.
    pub pearson_r: f64,
    /// Texts with |mean_rating| > [`SIGNED_THRESHOLD`].
    pub n_signed: usize,
    /// Share of those whose compound has the same sign (0 counts positive).
    pub sign_accuracy: f64,
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} r={:.4} sign_acc={:.4} (n_signed={})",
            self.n, self.pearson_r, self.sign_accuracy, self.n_signed
        )
    }
}

/// `path` `:` line of a malformed row, or an I/O error.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
}

/// Parses `id<TAB>mean_rating<TAB>text` rows (after a header line).
pub fn parse_rated(contents: &str) -> Result<Vec<(f64, &str)>, EvalError> {
    let mut rows = Vec::new();
    for (idx, line) in contents.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (Some(_id), Some(rating), Some(text)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(EvalError::Format {
                line: idx + 1,
                message: "expected three tab-separated fields".into(),
            });
        };
        let rating = rating
            .trim()
            .parse::<f64>()
            .map_err(|e| EvalError::Format {
                line: idx + 1,
                message: format!("mean_rating: {e}"),
            })?;
        rows.push((rating, text));
    }
    Ok(rows)
}

/// Scores every row and compares with the human means.
pub fn evaluate_rows(analyzer: &SentimentAnalyzer, rows: &[(f64, &str)]) -> EvalReport {
    let scored: Vec<(f64, f64)> = rows
        .iter()
        .map(|&(rating, text)| (analyzer.analyze(text).compound, rating))
        .collect();
    let signed: Vec<&(f64, f64)> = scored
        .iter()
        .filter(|(_, r)| r.abs() > SIGNED_THRESHOLD)
        .collect();
    let agree = signed
        .iter()
        .filter(|(c, r)| (*c >= 0.0) == (*r > 0.0))
        .count();
    EvalReport {
        n: scored.len(),
        pearson_r: pearson(&scored),
        n_signed: signed.len(),
        sign_accuracy: if signed.is_empty() {
            0.0
        } else {
            agree as f64 / signed.len() as f64
        },
    }
}

/// Reads and evaluates one rated file.
pub fn evaluate_file(analyzer: &SentimentAnalyzer, path: &Path) -> Result<EvalReport, EvalError> {
    let contents = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let rows = parse_rated(&contents)?;
    Ok(evaluate_rows(analyzer, &rows))
}

/// Path of a rated file shipped in `data/sentiment`.
pub fn data_file(name: &str) -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("data/sentiment")
        .join(name)
}

/// Pearson correlation of the pairs (0 when either side is constant).
pub fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return 0.0;
    }
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    sxy / (sxx.sqrt() * syy.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_basics() {
        assert!((pearson(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[(1.0, 2.0), (2.0, 1.0)]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[(1.0, 1.0), (1.0, 2.0)]), 0.0);
    }

    #[test]
    fn parse_rejects_bad_rows() {
        assert!(parse_rated("id\tmean_rating\ttext\n1\tx\thi\n").is_err());
        assert!(parse_rated("id\tmean_rating\ttext\n1\t0.5\n").is_err());
        let rows = parse_rated("id\tmean_rating\ttext\n1\t0.5\thi\tthere\n").unwrap();
        assert_eq!(rows, vec![(0.5, "hi\tthere")]);
    }
}
