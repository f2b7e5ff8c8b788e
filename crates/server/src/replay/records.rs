//! Reads a replay file one record at a time (CSV with a header row, or
//! NDJSON), so a file of any size is replayed in constant memory.
//!
//! Each record's kind comes from its fields: `price` → tick, `text` → post,
//! `post_id` → engagement, `open`/`high`/`low`/`close`/`start` → a candle,
//! sent as the ticks that make it ([`super::candle`]). A tick or engagement
//! without `ts` is stamped with the current time. Line numbers are the file's own (a CSV record whose
//! quoted field spans lines is numbered by the line it starts on), so the
//! user can find every line that is reported. For CSV they are derived from
//! the byte offset `csv` reports ([`LineStarts`]): its own `Position::line`
//! is off after blank lines and CRLF line ends.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::candle;
use crate::clock::now_ms;

/// Longest NDJSON line that is read; a longer one is skipped and reported
/// without being held in memory (the server takes frames of 64 KiB anyway).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A record ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The line of the file the record starts on (1-based).
    pub line: u64,
    pub topic: &'static str,
    /// What is published, in order: one payload, or the 1 to
    /// [`super::candle::MAX_TICKS`] ticks of a candle.
    pub payloads: Vec<Map<String, Value>>,
}

/// One record of the file: ready to send, or why it cannot be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Record(Record),
    Invalid { line: u64, message: String },
}

/// The file cannot be read on (as opposed to one bad record, an [`Entry::Invalid`]).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {message}")]
    Format { line: u64, message: String },
}

/// The records of a file, in file order.
pub enum Records<R: Read> {
    Csv(CsvRecords<R>),
    Ndjson(NdjsonRecords<R>),
}

impl<R: Read> Records<R> {
    /// A CSV file; its header row (which must name the fields) is read now.
    pub fn csv(reader: R) -> Result<Self, FileError> {
        CsvRecords::new(reader).map(Self::Csv)
    }

    pub fn ndjson(reader: R) -> Self {
        Self::Ndjson(NdjsonRecords {
            reader: BufReader::new(reader),
            line: 0,
            buf: Vec::new(),
            failed: false,
        })
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Entry, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Csv(records) => records.next_entry(),
            Self::Ndjson(records) => records.next_entry(),
        }
    }
}

/// Which topic a record goes to (candles are sent as ticks).
fn topic_of(record: &Map<String, Value>) -> Option<&'static str> {
    if record.contains_key("price") || candle::is_candle(record) {
        Some("ticks")
    } else if record.contains_key("text") {
        Some("posts")
    } else if record.contains_key("post_id") {
        Some("engagement")
    } else {
        None
    }
}

/// Types the record, stamps a missing `ts` and expands a candle.
fn finish(line: u64, mut data: Map<String, Value>) -> Entry {
    let Some(topic) = topic_of(&data) else {
        return Entry::Invalid {
            line,
            message: "cannot tell the kind: a tick has price, a post text, engagement post_id, \
                      a candle open, high, low, close and start"
                .into(),
        };
    };
    if topic == "ticks" && !data.contains_key("price") {
        return match candle::ticks(&data) {
            Ok(payloads) => Entry::Record(Record {
                line,
                topic,
                payloads,
            }),
            Err(message) => Entry::Invalid { line, message },
        };
    }
    if topic != "posts" && !data.contains_key("ts") {
        data.insert("ts".into(), now_ms().into());
    }
    Entry::Record(Record {
        line,
        topic,
        payloads: vec![data],
    })
}

/// CSV records, parsed by the `csv` crate: quoted fields (with commas,
/// quotes and newlines inside), a UTF-8 BOM, CRLF and blank lines.
pub struct CsvRecords<R: Read> {
    reader: csv::Reader<Tracked<R>>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    failed: bool,
}

impl<R: Read> CsvRecords<R> {
    fn new(reader: R) -> Result<Self, FileError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            // Rows with the wrong number of fields are reported per line below.
            .flexible(true)
            .from_reader(Tracked {
                inner: reader,
                starts: LineStarts::default(),
            });
        let header = reader.byte_headers().map_err(csv_error)?.clone();
        let line = header
            .position()
            .map_or(1, |p| reader.get_ref().starts.line_at(p.byte()));
        if header.is_empty() {
            return Err(FileError::Format {
                line,
                message: "the CSV file is empty (it needs a header row naming the fields)".into(),
            });
        }
        let mut columns: Vec<String> = Vec::with_capacity(header.len());
        for raw in &header {
            let column = std::str::from_utf8(raw)
                .map_err(|_| FileError::Format {
                    line,
                    message: "the header row is not valid UTF-8".into(),
                })?
                .trim()
                .to_owned();
            if columns.contains(&column) {
                return Err(FileError::Format {
                    line,
                    message: format!("the header row names '{column}' twice"),
                });
            }
            columns.push(column);
        }
        if !columns
            .iter()
            .any(|c| matches!(c.as_str(), "price" | "text" | "post_id" | "open"))
        {
            return Err(FileError::Format {
                line,
                message: format!(
                    "the header row ({}) names no price, text, post_id or open column: a CSV file starts with a header such as symbol,price,volume,ts",
                    columns.join(",")
                ),
            });
        }
        Ok(Self {
            reader,
            columns,
            record: csv::ByteRecord::new(),
            failed: false,
        })
    }

    fn next_entry(&mut self) -> Option<Result<Entry, FileError>> {
        if self.failed {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let byte = self.record.position().map_or(0, csv::Position::byte);
                let line = self.reader.get_mut().starts.take_line_at(byte);
                Some(Ok(self.entry(line)))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(csv_error(error)))
            }
        }
    }

    fn entry(&self, line: u64) -> Entry {
        let invalid = |message: String| Entry::Invalid { line, message };
        if self.record.len() != self.columns.len() {
            return invalid(format!(
                "{} fields, but the header has {}",
                self.record.len(),
                self.columns.len()
            ));
        }
        let mut data = Map::new();
        for (column, raw) in self.columns.iter().zip(&self.record) {
            let Ok(raw) = std::str::from_utf8(raw) else {
                return invalid(format!("{column} is not valid UTF-8"));
            };
            match csv_value(column, raw) {
                Ok(Some(value)) => {
                    data.insert(column.clone(), value);
                }
                Ok(None) => {}
                Err(message) => return invalid(message),
            }
        }
        finish(line, data)
    }
}

/// The reader under `csv`, noting where each line starts as `csv` pulls bytes.
pub struct Tracked<R> {
    inner: R,
    starts: LineStarts,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.starts.observe(&buf[..n]);
        Ok(n)
    }
}

/// Byte offsets of the non-blank lines `csv` has read and not yet used, so
/// a record's byte offset (reliable in `csv`) maps to its line number. A
/// record starts at the first non-blank line at or after the offset `csv`
/// gives (which may point at the `\n` of a CRLF or at skipped blank lines).
/// Holds at most the lines of `csv`'s read-ahead buffer and one record.
#[derive(Default)]
struct LineStarts {
    /// (byte offset, line number) of each non-blank line start seen.
    starts: std::collections::VecDeque<(u64, u64)>,
    /// Offset of the next byte to observe.
    offset: u64,
    /// Newlines observed so far.
    newlines: u64,
    /// The next byte begins a line (`\r` keeps it so: CRLF and blank lines).
    at_line_start: bool,
    started: bool,
}

impl LineStarts {
    fn observe(&mut self, bytes: &[u8]) {
        if !self.started {
            self.started = true;
            self.at_line_start = true;
        }
        for &b in bytes {
            match b {
                b'\n' => {
                    self.newlines += 1;
                    self.at_line_start = true;
                }
                b'\r' => {}
                _ if self.at_line_start => {
                    self.starts.push_back((self.offset, self.newlines + 1));
                    self.at_line_start = false;
                }
                _ => {}
            }
            self.offset += 1;
        }
    }

    fn line_at(&self, byte: u64) -> u64 {
        self.starts
            .iter()
            .find(|&&(offset, _)| offset >= byte)
            .map_or(self.newlines + 1, |&(_, line)| line)
    }

    /// The line of the record at `byte`, forgetting the lines before it.
    fn take_line_at(&mut self, byte: u64) -> u64 {
        while self
            .starts
            .front()
            .is_some_and(|&(offset, _)| offset < byte)
        {
            self.starts.pop_front();
        }
        self.line_at(byte)
    }
}

fn csv_error(error: csv::Error) -> FileError {
    let line = error.position().map_or(0, csv::Position::line);
    // (Only for errors that end the file: the line is a hint there.)
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(error) => FileError::Io(error),
        _ => FileError::Format { line, message },
    }
}

/// Numeric CSV columns become JSON numbers (an empty one is left out, so a
/// missing `ts` is stamped); everything else stays text.
fn csv_value(column: &str, raw: &str) -> Result<Option<Value>, String> {
    let trimmed = raw.trim();
    match column {
        "price" | "volume" | "open" | "high" | "low" | "close" if trimmed.is_empty() => Ok(None),
        "price" | "volume" | "open" | "high" | "low" | "close" => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(|| format!("{column} is not a finite number: '{raw}'")),
        "ts" | "post_id" | "delta" | "start" if trimmed.is_empty() => Ok(None),
        "ts" | "post_id" | "delta" | "start" => trimmed
            .parse::<i64>()
            .map(|n| Some(Value::from(n)))
            .map_err(|_| format!("{column} is not an integer: '{raw}'")),
        _ => Ok(Some(Value::String(raw.to_owned()))),
    }
}

/// NDJSON records: one JSON object per line; blank lines are skipped.
pub struct NdjsonRecords<R: Read> {
    reader: BufReader<R>,
    line: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl<R: Read> NdjsonRecords<R> {
    fn next_entry(&mut self) -> Option<Result<Entry, FileError>> {
        if self.failed {
            return None;
        }
        match self.read_entry() {
            Ok(entry) => entry.map(Ok),
            Err(error) => {
                self.failed = true;
                Some(Err(FileError::Io(error)))
            }
        }
    }

    fn read_entry(&mut self) -> std::io::Result<Option<Entry>> {
        loop {
            self.buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            if (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)?
                == 0
            {
                return Ok(None);
            }
            self.line += 1;
            let line = self.line;
            if self.buf.last() != Some(&b'\n') && self.buf.len() > MAX_LINE_BYTES {
                self.skip_rest_of_line()?;
                return Ok(Some(Entry::Invalid {
                    line,
                    message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                }));
            }
            let mut text = self.buf.as_slice();
            if line == 1 {
                text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry = match serde_json::from_slice::<Value>(text) {
                Ok(Value::Object(map)) => finish(line, map),
                Ok(_) => Entry::Invalid {
                    line,
                    message: "each line must be a JSON object".into(),
                },
                Err(error) => Entry::Invalid {
                    line,
                    message: format!("not valid JSON: {error}"),
                },
            };
            return Ok(Some(entry));
        }
    }

    /// Discards the rest of an over-long line, a buffer at a time.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let (consumed, found) = {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    return Ok(());
                }
                match available.iter().position(|&b| b == b'\n') {
                    Some(at) => (at + 1, true),
                    None => (available.len(), false),
                }
            };
            self.reader.consume(consumed);
            if found {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Vec<Entry> {
        Records::csv(text.as_bytes())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn ndjson(text: &str) -> Vec<Entry> {
        Records::ndjson(text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn record(entry: &Entry) -> &Record {
        match entry {
            Entry::Record(record) => record,
            Entry::Invalid { line, message } => panic!("line {line} invalid: {message}"),
        }
    }

    fn invalid(entry: &Entry) -> (u64, &str) {
        match entry {
            Entry::Invalid { line, message } => (*line, message),
            Entry::Record(record) => panic!("line {} parsed: {record:?}", record.line),
        }
    }

    #[test]
    fn records_are_typed_by_their_fields() {
        let entries =
            csv("symbol,price,volume,ts\nAAPL,187.5,10,1780000000000\nMSFT,410,3,1780000000001\n");
        assert_eq!(entries.len(), 2);
        let first = record(&entries[0]);
        assert_eq!((first.line, first.topic), (2, "ticks"));
        assert_eq!(first.payloads[0]["price"], 187.5);
        assert_eq!(first.payloads[0]["ts"], 1_780_000_000_000_i64);
        let entries = ndjson(
            "{\"author\":\"a\",\"text\":\"hi\"}\n{\"post_id\":1,\"kind\":\"like\",\"delta\":1}",
        );
        assert_eq!(
            (record(&entries[0]).topic, record(&entries[1]).topic),
            ("posts", "engagement")
        );
        assert!(
            record(&entries[1]).payloads[0]["ts"].is_i64(),
            "ts filled in"
        );
        assert!(
            !record(&entries[0]).payloads[0].contains_key("ts"),
            "posts keep no ts"
        );
    }

    #[test]
    fn candle_records_become_the_ticks_that_make_them() {
        let csv_text = "symbol,interval,start,open,high,low,close,volume\n\
                        AAA,1m,1700000040000,10,12,9,11,5\n\
                        AAA,1m,1700000100000,11,9,8,10,1\n\
                        AAA,1s,1700000101000,11,11,11,11,\n";
        let ndjson_text = "{\"symbol\":\"AAA\",\"interval\":\"1m\",\"start\":1700000040000,\"open\":10,\"high\":12,\"low\":9,\"close\":11,\"volume\":5}\n";
        for entries in [csv(csv_text), ndjson(ndjson_text)] {
            let first = record(&entries[0]);
            assert_eq!(first.topic, "ticks");
            let ticks: Vec<(f64, f64, i64)> = first
                .payloads
                .iter()
                .map(|t| {
                    assert_eq!(t["symbol"], "AAA");
                    (
                        t["price"].as_f64().unwrap(),
                        t["volume"].as_f64().unwrap(),
                        t["ts"].as_i64().unwrap(),
                    )
                })
                .collect();
            let t0 = 1_700_000_040_000;
            assert_eq!(
                ticks,
                [
                    (10.0, 5.0, t0),
                    (12.0, 0.0, t0 + 1),
                    (9.0, 0.0, t0 + 2),
                    (11.0, 0.0, t0 + 3)
                ]
            );
        }
        let entries = csv(csv_text);
        let (line, message) = invalid(&entries[1]);
        assert_eq!(line, 3);
        assert!(message.contains("enclose"), "{message}");
        let flat = record(&entries[2]);
        assert_eq!(
            (flat.line, flat.payloads.len()),
            (4, 1),
            "one price, one tick"
        );
        assert_eq!(flat.payloads[0]["volume"], 0.0, "an empty volume is 0");
    }

    #[test]
    fn csv_quotes_hold_commas_quotes_and_newlines() {
        let text = "author,text\nann,\"hello, world\"\nbob,\"say \"\"hi\"\"\"\ncy,\"two\nlines\"\ndee,last\n";
        let entries = csv(text);
        let texts: Vec<_> = entries
            .iter()
            .map(|e| record(e).payloads[0]["text"].clone())
            .collect();
        assert_eq!(texts, ["hello, world", "say \"hi\"", "two\nlines", "last"]);
        // The record with a newline inside starts on line 4; the next is on line 6.
        let lines: Vec<_> = entries.iter().map(|e| record(e).line).collect();
        assert_eq!(lines, [2, 3, 4, 6]);
    }

    #[test]
    fn csv_bom_crlf_and_blank_lines_keep_file_line_numbers() {
        let text = "\u{feff}symbol,price,volume\r\n\r\nAAPL,1,2\r\n\r\n\r\nMSFT,3,4\r\n";
        let entries = csv(text);
        assert_eq!(entries.len(), 2);
        let (a, b) = (record(&entries[0]), record(&entries[1]));
        assert!(
            a.payloads[0].contains_key("symbol"),
            "BOM stripped from the first column: {a:?}"
        );
        assert_eq!(a.payloads[0]["symbol"], "AAPL");
        assert_eq!(b.payloads[0]["volume"], 4.0);
        assert_eq!((a.line, b.line), (3, 6));
    }

    #[test]
    fn csv_line_numbers_survive_crlf_inside_quotes_and_a_missing_last_newline() {
        let text = "\r\nauthor,text\r\nann,\"x\r\ny\"\r\n\r\n\r\nbob,\"a\n\nb\"\ncy,last";
        let entries = csv(text);
        let lines: Vec<_> = entries.iter().map(|e| record(e).line).collect();
        assert_eq!(lines, [3, 7, 10]);
        assert_eq!(record(&entries[0]).payloads[0]["text"], "x\r\ny");
        assert_eq!(record(&entries[1]).payloads[0]["text"], "a\n\nb");
    }

    #[test]
    fn bad_csv_rows_are_reported_by_line_and_reading_goes_on() {
        let text =
            "symbol,price,volume\nAAPL,cheap,1\nAAPL,1\nAAPL,inf,1\nAAPL,NaN,1\n,,\nAAPL,2,1\n";
        let entries = csv(text);
        assert_eq!(entries.len(), 6);
        assert_eq!(
            invalid(&entries[0]),
            (2, "price is not a finite number: 'cheap'")
        );
        assert_eq!(invalid(&entries[1]), (3, "2 fields, but the header has 3"));
        assert_eq!(invalid(&entries[2]).0, 4);
        assert_eq!(invalid(&entries[3]).0, 5);
        assert!(invalid(&entries[4]).1.contains("cannot tell the kind"));
        assert_eq!(record(&entries[5]).line, 7);
    }

    #[test]
    fn empty_numeric_csv_fields_are_left_out() {
        let entries = csv("symbol,price,volume,ts\nAAPL,1,2,\n");
        let data = &record(&entries[0]).payloads[0];
        assert!(
            data["ts"].as_i64().is_some_and(|ts| ts > 1_700_000_000_000),
            "ts stamped: {data:?}"
        );
    }

    #[test]
    fn csv_headers_must_name_the_fields() {
        for (text, expected) in [
            ("", "empty"),
            ("AAPL,1,2\n", "names no price"),
            ("price,price\n1,2\n", "twice"),
        ] {
            let Err(error) = Records::csv(text.as_bytes()) else {
                panic!("{text:?} accepted");
            };
            assert!(error.to_string().contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn ndjson_lines_bom_crlf_blank_and_bad() {
        let text = "\u{feff}{\"symbol\":\"A\",\"price\":1,\"volume\":1}\r\n\r\n[1,2]\n{oops\n{\"foo\":1}\n";
        let entries = ndjson(text);
        assert_eq!(record(&entries[0]).line, 1);
        assert_eq!(invalid(&entries[1]), (3, "each line must be a JSON object"));
        assert!(invalid(&entries[2]).1.starts_with("not valid JSON"));
        assert_eq!(invalid(&entries[2]).0, 4);
        assert!(invalid(&entries[3]).1.contains("cannot tell the kind"));
    }

    #[test]
    fn over_long_ndjson_lines_are_skipped_not_held() {
        let mut text = "x".repeat(MAX_LINE_BYTES + 10);
        text.push_str("\n{\"author\":\"a\",\"text\":\"after\"}\n");
        let entries = ndjson(&text);
        assert_eq!(entries.len(), 2);
        assert_eq!(invalid(&entries[0]).0, 1);
        assert!(invalid(&entries[0]).1.contains("longer than"));
        assert_eq!(record(&entries[1]).line, 2);
    }
}
