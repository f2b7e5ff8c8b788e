//! The query of `GET /api/export`, checked before anything is read: a bad
//! argument is a 400 naming it, never a half-written file.

use serde::Deserialize;

use pulse_core::model::{validate_symbol, CandleInterval, TimestampMs};
use pulse_core::time::whole_buckets;

use crate::storage::ExportQuery;

/// What is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ticks,
    Candles,
    Posts,
    Engagement,
}

impl Kind {
    const ALL: [Kind; 4] = [Self::Ticks, Self::Candles, Self::Posts, Self::Engagement];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ticks => "ticks",
            Self::Candles => "candles",
            Self::Posts => "posts",
            Self::Engagement => "engagement",
        }
    }
}

/// How rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// The file extension; `pulse replay` reads `.csv` as CSV, anything
    /// else as NDJSON.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }
}

/// The query string as sent; every value is checked by [`ExportRequest::parse`].
#[derive(Debug, Default, Deserialize)]
pub struct RawQuery {
    pub kind: Option<String>,
    pub format: Option<String>,
    pub symbol: Option<String>,
    pub interval: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// An argument that is missing, unknown or out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidParameter {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidParameter {
    InvalidParameter {
        field,
        message: message.into(),
    }
}

/// A checked export request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRequest {
    pub kind: Kind,
    pub format: Format,
    /// Ticks: optional filter; candles: required.
    pub symbol: Option<String>,
    /// Candles only (default 1 min).
    pub interval: CandleInterval,
    pub from: Option<TimestampMs>,
    pub to: Option<TimestampMs>,
}

impl ExportRequest {
    pub fn parse(raw: &RawQuery) -> Result<Self, InvalidParameter> {
        let kind = match raw.kind.as_deref() {
            None => {
                return Err(invalid(
                    "kind",
                    "kind is required: ticks, candles, posts or engagement",
                ))
            }
            Some(name) => Kind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == name)
                .ok_or_else(|| {
                    invalid(
                        "kind",
                        format!("kind must be ticks, candles, posts or engagement, got '{name}'"),
                    )
                })?,
        };
        let format = match raw.format.as_deref() {
            None | Some("csv") => Format::Csv,
            Some("ndjson") => Format::Ndjson,
            Some(other) => {
                return Err(invalid(
                    "format",
                    format!("format must be csv or ndjson, got '{other}'"),
                ))
            }
        };
        let takes_symbol = matches!(kind, Kind::Ticks | Kind::Candles);
        let symbol = match raw.symbol.as_deref() {
            Some(symbol) if !takes_symbol => {
                return Err(invalid(
                    "symbol",
                    format!(
                        "symbol filters ticks and candles only, not {} (got '{symbol}')",
                        kind.as_str()
                    ),
                ))
            }
            Some(symbol) => {
                validate_symbol(symbol)
                    .map_err(|error| invalid("symbol", format!("symbol {}", error.message)))?;
                Some(symbol.to_owned())
            }
            None if kind == Kind::Candles => {
                return Err(invalid(
                    "symbol",
                    "candles are exported per symbol: add symbol=",
                ))
            }
            None => None,
        };
        let interval = match raw.interval.as_deref() {
            Some(_) if kind != Kind::Candles => {
                return Err(invalid("interval", "interval applies to candles only"))
            }
            Some(name) => name
                .parse::<CandleInterval>()
                .map_err(|error| invalid("interval", error.to_string()))?,
            None => CandleInterval::OneMinute,
        };
        let bound = |field: &'static str, raw: Option<&str>| {
            raw.map(|text| {
                text.trim().parse::<TimestampMs>().map_err(|_| {
                    invalid(
                        field,
                        format!("{field} must be Unix milliseconds, got '{text}'"),
                    )
                })
            })
            .transpose()
        };
        let from = bound("from", raw.from.as_deref())?;
        let to = bound("to", raw.to.as_deref())?;
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(invalid(
                    "from",
                    format!("from ({from}) must not be after to ({to})"),
                ));
            }
        }
        Ok(Self {
            kind,
            format,
            symbol,
            interval,
            from,
            to,
        })
    }

    /// `pulse-<kind>[-<symbol>[-<interval>]].<ext>`: safe as it is in a
    /// header (symbols are `[A-Z0-9.-]`).
    pub fn filename(&self) -> String {
        let mut name = format!("pulse-{}", self.kind.as_str());
        if let Some(symbol) = &self.symbol {
            name.push('-');
            name.push_str(symbol);
        }
        if self.kind == Kind::Candles {
            name.push('-');
            name.push_str(self.interval.as_str());
        }
        name.push('.');
        name.push_str(self.format.extension());
        name
    }

    /// The storage query. Candles read the stored interval theirs are made
    /// of; for a rolled-up one the range is widened to whole buckets, so
    /// every candle starting in `[from, to]` is made of all its minutes
    /// (as `GET /api/candles` does).
    pub fn storage_query(&self) -> ExportQuery {
        let (from, to) = if self.kind == Kind::Candles && !self.interval.is_stored() {
            whole_buckets(self.from, self.to, self.interval.millis())
        } else {
            (self.from, self.to)
        };
        match self.kind {
            Kind::Ticks => ExportQuery::Ticks {
                symbol: self.symbol.clone(),
                from,
                to,
            },
            Kind::Candles => ExportQuery::Candles {
                symbol: self.symbol.clone().unwrap_or_default(),
                interval: self.interval.source(),
                from,
                to,
            },
            Kind::Posts => ExportQuery::Posts { from, to },
            Kind::Engagement => ExportQuery::Engagement { from, to },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> RawQuery {
        let text: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_urlencoded_like(&text)
    }

    /// The query as axum's `Query` would decode it.
    fn serde_urlencoded_like(text: &str) -> RawQuery {
        let uri: axum::http::Uri = format!("/api/export?{text}").parse().expect("uri");
        axum::extract::Query::<RawQuery>::try_from_uri(&uri)
            .expect("decodes")
            .0
    }

    #[test]
    fn defaults_and_filenames() {
        let request = ExportRequest::parse(&query(&[("kind", "ticks")])).unwrap();
        assert_eq!(
            (
                request.format,
                request.symbol.as_deref(),
                request.from,
                request.to
            ),
            (Format::Csv, None, None, None)
        );
        assert_eq!(request.filename(), "pulse-ticks.csv");
        let request = ExportRequest::parse(&query(&[
            ("kind", "candles"),
            ("symbol", "BRK.B"),
            ("format", "ndjson"),
            ("interval", "1s"),
            ("from", "1700000000000"),
            ("to", "1700000000000"),
        ]))
        .unwrap();
        assert_eq!(request.filename(), "pulse-candles-BRK.B-1s.ndjson");
        assert_eq!(
            request.storage_query(),
            ExportQuery::Candles {
                symbol: "BRK.B".into(),
                interval: CandleInterval::OneSecond,
                from: Some(1_700_000_000_000),
                to: Some(1_700_000_000_000),
            }
        );
        let request =
            ExportRequest::parse(&query(&[("kind", "candles"), ("symbol", "AAPL")])).unwrap();
        assert_eq!(request.filename(), "pulse-candles-AAPL-1m.csv");
        let request =
            ExportRequest::parse(&query(&[("kind", "ticks"), ("symbol", "AAPL")])).unwrap();
        assert_eq!(request.filename(), "pulse-ticks-AAPL.csv");
        let request =
            ExportRequest::parse(&query(&[("kind", "engagement"), ("format", "ndjson")])).unwrap();
        assert_eq!(request.filename(), "pulse-engagement.ndjson");
    }

    #[test]
    fn rolled_up_candles_read_whole_buckets_of_minutes() {
        let hour = 3_600_000;
        let t0 = 1_700_002_800_000; // an hour boundary
        let request = ExportRequest::parse(&query(&[
            ("kind", "candles"),
            ("symbol", "AAA"),
            ("interval", "1h"),
            ("from", &(t0 + 1).to_string()),
            ("to", &(t0 + 2 * hour + 5).to_string()),
        ]))
        .unwrap();
        assert_eq!(request.filename(), "pulse-candles-AAA-1h.csv");
        assert_eq!(
            request.storage_query(),
            ExportQuery::Candles {
                symbol: "AAA".into(),
                interval: CandleInterval::OneMinute,
                from: Some(t0 + hour),
                to: Some(t0 + 3 * hour - 1),
            }
        );
        let request = ExportRequest::parse(&query(&[
            ("kind", "candles"),
            ("symbol", "AAA"),
            ("interval", "1m"),
            ("from", "5"),
        ]))
        .unwrap();
        assert!(matches!(
            request.storage_query(),
            ExportQuery::Candles { from: Some(5), .. }
        ));
    }

    #[test]
    fn every_bad_argument_is_named() {
        for (pairs, field, words) in [
            (&[][..], "kind", "required"),
            (&[("kind", "trades")][..], "kind", "'trades'"),
            (
                &[("kind", "ticks"), ("format", "xml")][..],
                "format",
                "'xml'",
            ),
            (
                &[("kind", "ticks"), ("symbol", "aapl")][..],
                "symbol",
                "A-Z",
            ),
            (
                &[("kind", "ticks"), ("symbol", "")][..],
                "symbol",
                "characters",
            ),
            (&[("kind", "candles")][..], "symbol", "per symbol"),
            (
                &[("kind", "posts"), ("symbol", "AAPL")][..],
                "symbol",
                "ticks and candles only",
            ),
            (
                &[("kind", "ticks"), ("interval", "1m")][..],
                "interval",
                "candles only",
            ),
            (
                &[("kind", "candles"), ("symbol", "A"), ("interval", "7m")][..],
                "interval",
                "'7m'",
            ),
            (
                &[("kind", "ticks"), ("from", "yesterday")][..],
                "from",
                "'yesterday'",
            ),
            (
                &[("kind", "ticks"), ("to", "1.5")][..],
                "to",
                "Unix milliseconds",
            ),
            (
                &[("kind", "ticks"), ("from", "99999999999999999999")][..],
                "from",
                "Unix",
            ),
            (
                &[("kind", "ticks"), ("from", "2"), ("to", "1")][..],
                "from",
                "must not be after",
            ),
        ] {
            let error = ExportRequest::parse(&query(pairs)).unwrap_err();
            assert_eq!(error.field, field, "{pairs:?}: {error}");
            assert!(error.message.contains(words), "{pairs:?}: {error}");
        }
    }
}
