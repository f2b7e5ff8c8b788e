//! `pulse replay FILE --url URL [--rate R]`: sends a CSV or NDJSON file of
//! ticks, posts or engagement events to a running server over its WebSocket
//! `publish` op, waiting for every acknowledgement.
//!
//! Each record's kind comes from its fields: `price` → tick, `text` → post,
//! `post_id` → engagement. CSV files start with a header naming the fields.
//! A tick or engagement without `ts` is stamped with the current time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::Message;

use super::ingest::now_ms;

#[derive(Clone, Debug, Args)]
pub struct ReplayArgs {
    /// CSV (with a header row) or NDJSON file; `.csv` selects CSV, anything else NDJSON.
    pub file: PathBuf,
    /// Server to send to: `ws://HOST:PORT/ws` (an `http://HOST:PORT` base works too).
    #[arg(long, default_value = "ws://127.0.0.1:3000/ws")]
    pub url: String,
    /// Records per second (default: as fast as the server acknowledges).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Ingest token, if the server requires one.
    #[arg(long, env = "PULSE_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line}: {message}")]
    Record { line: usize, message: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("connection lost after {acknowledged} of {sent} records were acknowledged")]
    ConnectionLost { sent: usize, acknowledged: usize },
    #[error("the rate must be a positive number, got {0}")]
    Rate(f64),
}

/// What happened to the records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub sent: usize,
    pub accepted: usize,
    /// Rejected records by line number, with the server's message.
    pub rejected: BTreeMap<usize, String>,
}

/// Which topic a record goes to.
fn topic_of(record: &Map<String, Value>) -> Option<&'static str> {
    if record.contains_key("price") {
        Some("ticks")
    } else if record.contains_key("text") {
        Some("posts")
    } else if record.contains_key("post_id") {
        Some("engagement")
    } else {
        None
    }
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is a quote).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Numeric CSV columns become JSON numbers; everything else stays text.
fn csv_value(column: &str, raw: &str) -> Result<Value, String> {
    match column {
        "price" | "volume" => raw
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| format!("{column} is not a number: '{raw}'")),
        "ts" | "post_id" | "delta" => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{column} is not an integer: '{raw}'")),
        _ => Ok(Value::String(raw.to_owned())),
    }
}

/// Parses the file into (line number, topic, record) triples.
pub fn parse_records(
    text: &str,
    csv: bool,
) -> Result<Vec<(usize, &'static str, Value)>, ReplayError> {
    let mut records = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let header = if csv {
        let (line, header) = lines.next().ok_or(ReplayError::Record {
            line: 1,
            message: "the CSV file is empty (it needs a header row)".into(),
        })?;
        let columns =
            split_csv_line(header).map_err(|message| ReplayError::Record { line, message })?;
        Some(
            columns
                .into_iter()
                .map(|c| c.trim().to_owned())
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    for (line, raw) in lines {
        let record_error = |message: String| ReplayError::Record { line, message };
        let mut record = match &header {
            Some(columns) => {
                let fields = split_csv_line(raw).map_err(record_error)?;
                if fields.len() != columns.len() {
                    return Err(record_error(format!(
                        "{} fields, but the header has {}",
                        fields.len(),
                        columns.len()
                    )));
                }
                let mut map = Map::new();
                for (column, field) in columns.iter().zip(fields) {
                    map.insert(
                        column.clone(),
                        csv_value(column, &field).map_err(record_error)?,
                    );
                }
                map
            }
            None => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(record_error("each line must be a JSON object".into())),
                Err(error) => return Err(record_error(format!("not valid JSON: {error}"))),
            },
        };
        let topic = topic_of(&record).ok_or_else(|| {
            record_error(
                "cannot tell the kind: a tick has price, a post text, engagement post_id".into(),
            )
        })?;
        if topic != "posts" && !record.contains_key("ts") {
            record.insert("ts".into(), now_ms().into());
        }
        records.push((line, topic, Value::Object(record)));
    }
    Ok(records)
}

fn socket_url(url: &str, token: Option<&str>) -> String {
    let base = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{}", rest.trim_end_matches('/'))
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{}", rest.trim_end_matches('/'))
    } else {
        url.trim_end_matches('/').to_owned()
    };
    let mut url = if base.ends_with("/ws") {
        base
    } else {
        format!("{base}/ws")
    };
    if let Some(token) = token {
        url.push_str(if url.contains('?') {
            "&token="
        } else {
            "?token="
        });
        url.push_str(token);
    }
    url
}

/// Sends every record and waits for the server's answer to each.
pub async fn run(args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ReplayError::Rate(rate));
        }
    }
    let text = tokio::fs::read_to_string(&args.file)
        .await
        .map_err(|source| ReplayError::Read {
            path: args.file.clone(),
            source,
        })?;
    let csv = args
        .file
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    let records = parse_records(&text, csv)?;

    let url = socket_url(&args.url, args.token.as_deref());
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|error| ReplayError::Connect {
            url: args.url.clone(),
            message: error.to_string(),
        })?;
    let (mut sink, mut stream) = socket.split();
    let total = records.len();
    let rate = args.rate;
    let sender = tokio::spawn(async move {
        let mut pacing =
            rate.map(|rate| tokio::time::interval(Duration::from_secs_f64(1.0 / rate)));
        let mut sent = 0;
        for (line, topic, data) in records {
            if let Some(timer) = pacing.as_mut() {
                timer.tick().await;
            }
            let frame =
                serde_json::json!({"op": "publish", "topic": topic, "data": data, "id": line});
            if sink
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        (sent, sink)
    });

    let mut summary = ReplaySummary::default();
    // Read answers until every record has one; a silent server ends the wait.
    while summary.accepted + summary.rejected.len() < total {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let Ok(reply) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let Some(line) = reply["id"].as_u64().map(|id| id as usize) else {
                    continue;
                };
                match reply["op"].as_str() {
                    Some("published") => summary.accepted += 1,
                    Some("error") => {
                        let message = reply["message"].as_str().unwrap_or("rejected").to_owned();
                        summary.rejected.insert(line, message);
                    }
                    _ => {}
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    if let Ok((sent, mut sink)) = sender.await {
        summary.sent = sent;
        let _ = sink.close().await;
    }
    let answered = summary.accepted + summary.rejected.len();
    if answered < total {
        return Err(ReplayError::ConnectionLost {
            sent: summary.sent,
            acknowledged: answered,
        });
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(
            split_csv_line(r#"a,"b, c","say ""hi""""#).unwrap(),
            ["a", "b, c", r#"say "hi""#]
        );
        assert!(split_csv_line(r#"a,"open"#).is_err());
    }

    #[test]
    fn records_are_typed_by_their_fields() {
        let csv =
            "symbol,price,volume,ts\nAAPL,187.5,10,1780000000000\n\nMSFT,410,3,1780000000001\n";
        let records = parse_records(csv, true).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].0, 2);
        assert_eq!(records[0].1, "ticks");
        assert_eq!(records[0].2["price"], 187.5);
        let ndjson = r#"{"author":"a","text":"hi"}
{"post_id":1,"kind":"like","delta":1}"#;
        let records = parse_records(ndjson, false).unwrap();
        assert_eq!((records[0].1, records[1].1), ("posts", "engagement"));
        assert!(records[1].2["ts"].is_i64(), "ts filled in");
    }

    #[test]
    fn bad_records_name_their_line() {
        let err = parse_records("symbol,price\nAAPL,cheap\n", true).unwrap_err();
        assert!(matches!(err, ReplayError::Record { line: 2, .. }), "{err}");
        let err = parse_records("{\"foo\":1}", false).unwrap_err();
        assert!(matches!(err, ReplayError::Record { line: 1, .. }));
        let err = parse_records("[1,2]", false).unwrap_err();
        assert!(err.to_string().contains("JSON object"));
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            socket_url("http://127.0.0.1:3000", None),
            "ws://127.0.0.1:3000/ws"
        );
        assert_eq!(socket_url("ws://h:1/ws", Some("t")), "ws://h:1/ws?token=t");
    }
}
