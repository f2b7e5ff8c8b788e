//! Export rows as CSV or NDJSON, a chunk at a time. Both formats carry the
//! same fields under the names `pulse replay` reads back (a tick's
//! `symbol,price,volume,ts`, an engagement event's `post_id,kind,delta,ts`,
//! ...), so every export is a valid replay file as it is.
//!
//! Numbers are written in their shortest form that reads back to the same
//! `f64`, so a replayed export reproduces prices and volumes bit for bit.

use serde::Serialize;

use pulse_core::model::{Counts, Post};

use crate::storage::ExportRows;

use super::params::{Format, Kind};

/// A chunk could not be written (a bug: rows always serialize).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The header row of a CSV export of `kind`: the field names, in order.
pub fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Ticks => &["symbol", "price", "volume", "ts"],
        Kind::Candles => &[
            "symbol", "interval", "start", "open", "high", "low", "close", "volume",
        ],
        Kind::Posts => &[
            "id", "author", "text", "ts", "label", "compound", "pos", "neu", "neg", "symbols",
            "likes", "shares", "comments",
        ],
        Kind::Engagement => &["post_id", "kind", "delta", "ts"],
    }
}

/// What starts the file: the CSV header row; nothing for NDJSON.
pub fn preamble(kind: Kind, format: Format) -> Vec<u8> {
    match format {
        Format::Csv => {
            let mut line = columns(kind).join(",");
            line.push('\n');
            line.into_bytes()
        }
        Format::Ndjson => Vec::new(),
    }
}

/// `rows` in `format`, one line (CSV record or JSON object) per row.
pub fn write(rows: &ExportRows, format: Format) -> Result<Vec<u8>, FormatError> {
    match format {
        Format::Csv => csv_rows(rows),
        Format::Ndjson => ndjson_rows(rows),
    }
}

/// A post as one flat record: the same fields in CSV and NDJSON.
#[derive(Serialize)]
struct PostRow<'a> {
    id: u64,
    author: &'a str,
    text: &'a str,
    ts: i64,
    label: &'static str,
    compound: f64,
    pos: f64,
    neu: f64,
    neg: f64,
    symbols: &'a [String],
    likes: i64,
    shares: i64,
    comments: i64,
}

impl<'a> PostRow<'a> {
    fn new((post, counts): &'a (Post, Counts)) -> Self {
        Self {
            id: post.id,
            author: &post.author,
            text: &post.text,
            ts: post.ts,
            label: post.sentiment.label.as_str(),
            compound: post.sentiment.compound,
            pos: post.sentiment.pos,
            neu: post.sentiment.neu,
            neg: post.sentiment.neg,
            symbols: &post.symbols,
            likes: counts.likes,
            shares: counts.shares,
            comments: counts.comments,
        }
    }
}

fn ndjson_rows(rows: &ExportRows) -> Result<Vec<u8>, FormatError> {
    fn lines<T: Serialize>(items: impl Iterator<Item = T>) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        for item in items {
            serde_json::to_writer(&mut out, &item)?;
            out.push(b'\n');
        }
        Ok(out)
    }
    match rows {
        ExportRows::Ticks(ticks) => lines(ticks.iter()),
        ExportRows::Candles(candles) => lines(candles.iter()),
        ExportRows::Posts(posts) => lines(posts.iter().map(PostRow::new)),
        ExportRows::Engagement(events) => lines(events.iter()),
    }
}

/// Fields of one CSV record, formatted into one reused buffer.
struct Record {
    text: String,
    /// End offset of each field in `text`.
    ends: Vec<usize>,
    numbers: ryu::Buffer,
    integers: itoa::Buffer,
}

/// Below this, an integral `f64` is exact as an integer (2^53 > 9e15).
const EXACT_INTEGER: f64 = 1e15;

impl Record {
    fn new() -> Self {
        Self {
            text: String::with_capacity(256),
            ends: Vec::with_capacity(16),
            numbers: ryu::Buffer::new(),
            integers: itoa::Buffer::new(),
        }
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    fn text(&mut self, value: &str) -> &mut Self {
        self.text.push_str(value);
        self.ends.push(self.text.len());
        self
    }

    fn int(&mut self, value: impl itoa::Integer) -> &mut Self {
        self.text.push_str(self.integers.format(value));
        self.ends.push(self.text.len());
        self
    }

    /// Whole numbers as integers (`100`, not `100.0`), others in ryu's
    /// shortest round-trip form; both read back to the same `f64`.
    fn float(&mut self, value: f64) -> &mut Self {
        if value.fract() == 0.0 && value.abs() < EXACT_INTEGER {
            self.int(value as i64)
        } else {
            self.text.push_str(self.numbers.format(value));
            self.ends.push(self.text.len());
            self
        }
    }

    fn fields(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.text[start..end])
    }
}

fn csv_rows(rows: &ExportRows) -> Result<Vec<u8>, FormatError> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(rows.len() * 48));
    let mut record = Record::new();
    let mut emit = |record: &Record| writer.write_record(record.fields());
    match rows {
        ExportRows::Ticks(ticks) => {
            for tick in ticks {
                record.clear();
                record
                    .text(&tick.symbol)
                    .float(tick.price)
                    .float(tick.volume)
                    .int(tick.ts);
                emit(&record)?;
            }
        }
        ExportRows::Candles(candles) => {
            for c in candles {
                record.clear();
                record
                    .text(&c.symbol)
                    .text(c.interval.as_str())
                    .int(c.start)
                    .float(c.open)
                    .float(c.high)
                    .float(c.low)
                    .float(c.close)
                    .float(c.volume);
                emit(&record)?;
            }
        }
        ExportRows::Posts(posts) => {
            for row in posts.iter().map(PostRow::new) {
                record.clear();
                record
                    .int(row.id)
                    .text(row.author)
                    .text(row.text)
                    .int(row.ts)
                    .text(row.label)
                    .float(row.compound)
                    .float(row.pos)
                    .float(row.neu)
                    .float(row.neg)
                    // Symbols never contain spaces (`[A-Z0-9.-]`).
                    .text(&row.symbols.join(" "))
                    .int(row.likes)
                    .int(row.shares)
                    .int(row.comments);
                emit(&record)?;
            }
        }
        ExportRows::Engagement(events) => {
            for event in events {
                record.clear();
                record
                    .int(event.post_id)
                    .text(event.kind.as_str())
                    .int(event.delta)
                    .int(event.ts);
                emit(&record)?;
            }
        }
    }
    writer
        .into_inner()
        .map_err(|error| FormatError::Csv(csv::Error::from(error.into_error())))
}

#[cfg(test)]
mod tests;
