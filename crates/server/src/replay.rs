//! `pulse replay FILE --url URL [--rate R] [--token T]`: streams a CSV or
//! NDJSON file of ticks, posts or engagement events to a running server over
//! its WebSocket `publish` op and reports what became of every record.
//!
//! The file is read as it is sent ([`records`]) with a bounded window of
//! unanswered publishes, so a file of any size replays in constant memory.
//! The token travels in the `Authorization` header of the upgrade request,
//! never in the URL (URLs end up in logs). If the connection drops, the
//! summary says which records were acknowledged, which were rejected and
//! which got no answer.

mod candle;
mod outstanding;
mod progress;
mod records;

use super::deadline::sleep_until_some;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};

use outstanding::{publish_id, Outstanding};
use progress::{Counted, Progress};
use pulse_core::protocol::MAX_CLIENT_FRAME_BYTES;
pub use records::{Entry, FileError, Record, Records};

/// Slowest `--rate`: one record every 1,000 s.
pub const MIN_RATE: f64 = 0.001;
/// Fastest `--rate`; beyond it pacing means nothing (the window is the limit).
pub const MAX_RATE: f64 = 1_000_000.0;
/// Publishes sent and not yet answered, at most. Below the server's default
/// per-connection outbox budget (1,024 frames), so even if every answer were
/// queued at once the server would not take us for a slow consumer.
pub const WINDOW: usize = 1_000;
/// Bytes of unanswered publish frames kept (for retries), at most.
pub const WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// How long the server may stay silent while publishes are unanswered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Times one record is re-sent after a `rate_limited` answer before it counts as rejected.
const MAX_RATE_LIMIT_RETRIES: u32 = 20;
/// The longest pause after a `rate_limited` answer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How far pacing may fall behind and catch up in a burst (timers are coarser than 1 µs).
const PACING_SLACK: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Args)]
#[command(
    after_help = "Every rejected line is listed as `line N: reason` with the file's line number. \
                  Exit status: 0 when every record was accepted, 1 when any was rejected or got \
                  no answer (or the replay failed), 2 for a bad argument."
)]
pub struct ReplayArgs {
    /// CSV (header row naming the fields: quotes, BOM and CRLF are fine) or NDJSON file; `.csv` selects CSV, anything else NDJSON.
    pub file: PathBuf,
    /// Server to send to: `ws://HOST:PORT/ws` or its `http://HOST:PORT` base (plain connections only; no TLS).
    #[arg(long, default_value = "ws://127.0.0.1:3000/ws")]
    pub url: String,
    /// Records per second, from 0.001 to 1000000 (default: as fast as the server answers, at most 1000 unanswered).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Ingest token, if the server requires one; sent as `Authorization: Bearer`, never in the URL.
    #[arg(long, env = "PULSE_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "--rate must be a number of records per second from {MIN_RATE} to {MAX_RATE}, got {0}"
    )]
    Rate(String),
    #[error("--url '{url}': {message}")]
    Url { url: String, message: String },
    #[error("--token: {0}")]
    Token(&'static str),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: FileError },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the server at {url} refused the records: {message} (pass its ingest token with --token or PULSE_INGEST_TOKEN)")]
    Unauthorized { url: String, message: String },
}

impl ReplayError {
    /// A bad argument (exit status 2) rather than a failed replay.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Rate(_) | Self::Url { .. } | Self::Token(_))
    }
}

/// What became of the records.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Records sent (each counted once, however often it was re-sent).
    pub sent: u64,
    /// Records the server acknowledged (`published`).
    pub accepted: u64,
    /// Refused lines by line number: the server's message, or why the line
    /// could not be sent at all (those are counted in `invalid` too).
    pub rejected: BTreeMap<u64, String>,
    /// Lines that could not be sent (not a record, or too large).
    pub invalid: u64,
    /// Lines sent that got no answer before the connection ended: the server
    /// may or may not have kept them.
    pub unanswered: Vec<u64>,
    /// Why the replay ended before every line was answered.
    pub interrupted: Option<String>,
    /// The first line that was never sent, when the replay ended early.
    pub unsent_from: Option<u64>,
    /// The first and last line sent.
    pub sent_lines: Option<(u64, u64)>,
    /// Errors the server sent that name no record (at most a few are kept).
    pub notes: Vec<String>,
}

impl ReplaySummary {
    /// A publish was acknowledged: its record is accepted once all of its
    /// publishes are and none was refused.
    fn acknowledged(&mut self, settled: outstanding::Settled) {
        if settled.last && !self.rejected.contains_key(&settled.line) {
            self.accepted += 1;
        }
    }

    /// A publish was refused: its record is rejected (with the first reason).
    fn refused(&mut self, line: u64, message: String) {
        self.rejected.entry(line).or_insert(message);
    }

    /// Every record was acknowledged.
    pub fn succeeded(&self) -> bool {
        self.rejected.is_empty() && self.unanswered.is_empty() && self.interrupted.is_none()
    }

    /// What went wrong, one message each: every rejected line (`line N:
    /// reason`), then the unanswered and unsent lines.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rejected
            .iter()
            .map(|(line, message)| format!("line {line}: {message}"))
            .collect();
        out.extend(self.notes.iter().map(|note| format!("server: {note}")));
        if let Some(reason) = &self.interrupted {
            out.push(format!("replay stopped early: {reason}"));
        }
        if !self.unanswered.is_empty() {
            out.push(format!(
                "no answer for {} records (lines {}): the server may or may not have kept them",
                self.unanswered.len(),
                line_ranges(&self.unanswered)
            ));
        }
        if self.interrupted.is_some() {
            if let Some((first, last)) = self.sent_lines {
                out.push(format!(
                    "acknowledged: {} records, the lines sent from {first} to {last} not listed above",
                    self.accepted
                ));
            }
        }
        if let Some(line) = self.unsent_from {
            out.push(format!("not sent: line {line} and everything after it"));
        }
        out
    }

    /// The one-line count.
    pub fn totals(&self) -> String {
        format!(
            "{} records sent: {} accepted, {} rejected, {} unanswered; {} lines could not be sent",
            self.sent,
            self.accepted,
            (self.rejected.len() as u64).saturating_sub(self.invalid),
            self.unanswered.len(),
            self.invalid
        )
    }
}

/// `3-7, 9, 12` for [3,4,5,6,7,9,12] (sorted input); long lists are cut.
fn line_ranges(lines: &[u64]) -> String {
    const SHOWN: usize = 50;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &line in lines {
        match ranges.last_mut() {
            Some((_, end)) if line == *end + 1 => *end = line,
            _ => ranges.push((line, line)),
        }
    }
    let mut text = ranges
        .iter()
        .take(SHOWN)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if ranges.len() > SHOWN {
        text.push_str(&format!(" and {} more ranges", ranges.len() - SHOWN));
    }
    text
}

/// Checks a `--rate` value: finite, within [`MIN_RATE`, `MAX_RATE`].
pub fn validate_rate(rate: f64) -> Result<f64, ReplayError> {
    if rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(rate)
    } else {
        Err(ReplayError::Rate(rate.to_string()))
    }
}

/// clap's parser for `--rate` (its errors exit with status 2).
fn parse_rate(raw: &str) -> Result<f64, String> {
    let invalid = || ReplayError::Rate(format!("'{raw}'")).to_string();
    let rate = raw.trim().parse::<f64>().map_err(|_| invalid())?;
    validate_rate(rate).map_err(|_| invalid())
}

/// The WebSocket URL for `--url`: `http(s)://` becomes `ws(s)://`, a bare
/// `HOST:PORT` gets `ws://`, and `/ws` is appended unless the path ends with it.
pub fn socket_url(url: &str) -> Result<String, ReplayError> {
    let error = |message: &str| ReplayError::Url {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let trimmed = url.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("ws".to_owned(), trimmed),
    };
    let scheme = match scheme.as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => {
            return Err(error(
                "TLS (wss://, https://) is not built into pulse replay; use the server's plain ws:// or http:// address",
            ))
        }
        _ => return Err(error("the URL must start with ws:// or http://")),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("token="))) {
        return Err(error(
            "do not put the token in the URL (URLs end up in logs); pass it with --token",
        ));
    }
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Err(error("the URL names no host"));
    }
    let mut socket = format!("{scheme}://{path}");
    if !path.ends_with("/ws") {
        socket.push_str("/ws");
    }
    if let Some(query) = query {
        socket.push('?');
        socket.push_str(query);
    }
    Ok(socket)
}

/// The upgrade request: the normalised URL, and the token (if any) as
/// `Authorization: Bearer`, marked sensitive so it is never logged.
pub fn upgrade_request(url: &str, token: Option<&str>) -> Result<Request, ReplayError> {
    let socket = socket_url(url)?;
    let mut request = socket
        .as_str()
        .into_client_request()
        .map_err(|error| ReplayError::Url {
            url: url.to_owned(),
            message: error.to_string(),
        })?;
    if let Some(token) = token {
        if token.trim().is_empty() {
            return Err(ReplayError::Token("the token must not be empty"));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ReplayError::Token("the token must be printable ASCII"))?;
        value.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    Ok(request)
}

/// An answer from the server, as the replay needs it.
#[derive(Debug)]
enum Answer {
    Published(u64),
    Refused {
        id: u64,
        code: String,
        message: String,
    },
    /// An error naming no record.
    Unattributed(String),
    Closed(String),
}

fn answer_of(message: Message) -> Option<Answer> {
    match message {
        Message::Text(text) => {
            let reply: Value = serde_json::from_str(&text).ok()?;
            let id = reply.get("id").and_then(Value::as_u64);
            match (reply.get("op").and_then(Value::as_str), id) {
                (Some("published"), Some(id)) => Some(Answer::Published(id)),
                (Some("error"), id) => {
                    let code = reply["code"].as_str().unwrap_or("error").to_owned();
                    let message = reply["message"].as_str().unwrap_or("rejected").to_owned();
                    Some(match id {
                        Some(id) => Answer::Refused { id, code, message },
                        None => Answer::Unattributed(format!("{code}: {message}")),
                    })
                }
                _ => None,
            }
        }
        Message::Close(frame) => Some(Answer::Closed(match frame {
            Some(frame) if frame.reason.is_empty() => format!(
                "the server closed the connection (code {})",
                u16::from(frame.code)
            ),
            Some(frame) => format!(
                "the server closed the connection (code {}: {})",
                u16::from(frame.code),
                frame.reason
            ),
            None => "the server closed the connection".into(),
        })),
        _ => None,
    }
}

/// The file's records, its size and the bytes read from it so far.
type Opened = (Records<Counted<std::fs::File>>, u64, Arc<AtomicU64>);

/// Opens the file and, for CSV, reads its header (on a blocking thread).
async fn open(path: PathBuf) -> Result<Opened, ReplayError> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|source| ReplayError::Read {
            path: path.clone(),
            source,
        })?;
        let size = file.metadata().map_or(0, |m| m.len());
        let (file, read) = Counted::new(file);
        let csv = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        let records = if csv {
            Records::csv(file).map_err(|source| match source {
                FileError::Io(source) => ReplayError::Read { path, source },
                source => ReplayError::File { path, source },
            })?
        } else {
            Records::ndjson(file)
        };
        Ok((records, size, read))
    })
    .await
    .map_err(|error| ReplayError::Read {
        path: PathBuf::new(),
        source: std::io::Error::other(error),
    })?
}

/// Spaces sends `1/rate` apart, catching up briefly after a stall.
struct Pacing {
    every: Duration,
    next: Instant,
}

impl Pacing {
    fn new(rate: f64) -> Result<Self, ReplayError> {
        let every = Duration::try_from_secs_f64(1.0 / validate_rate(rate)?)
            .map_err(|_| ReplayError::Rate(rate.to_string()))?;
        Ok(Self {
            every,
            next: Instant::now(),
        })
    }

    fn sent(&mut self, now: Instant) {
        let floor = now.checked_sub(PACING_SLACK).unwrap_or(now);
        let base = self.next.max(floor);
        self.next = base.checked_add(self.every).unwrap_or(base);
    }
}

/// Sends every record and waits for the server's answer to each.
pub async fn run(args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let mut pacing = args.rate.map(Pacing::new).transpose()?;
    let request = upgrade_request(&args.url, args.token.as_deref())?;
    let (records, size, read) = open(args.file.clone()).await?;

    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|error| connect_error(&args.url, error))?;
    let (mut sink, mut stream) = socket.split();

    // Answers are read on their own task, so they are taken off the socket
    // promptly even while a send waits.
    let (answer_tx, mut answers) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let answer = match stream.next().await {
                Some(Ok(message)) => answer_of(message),
                Some(Err(error)) => Some(Answer::Closed(format!("the connection failed: {error}"))),
                None => Some(Answer::Closed("the connection ended".into())),
            };
            if let Some(answer) = answer {
                let closed = matches!(answer, Answer::Closed(_));
                if answer_tx.send(answer).is_err() || closed {
                    return;
                }
            }
        }
    });

    // The file is read on a blocking thread, a bounded number of records ahead.
    let (entry_tx, mut entries) = mpsc::channel::<Result<Entry, FileError>>(256);
    tokio::task::spawn_blocking(move || {
        for entry in records {
            if entry_tx.blocking_send(entry).is_err() {
                return;
            }
        }
    });

    let mut summary = ReplaySummary::default();
    let mut in_flight = Outstanding::default();
    let mut progress = Progress::new(size, read);
    let mut retry: VecDeque<u64> = VecDeque::new();
    let mut paused_until: Option<Instant> = None;
    let mut backoff = Duration::from_millis(250);
    let mut file_done = false;
    let mut open = true;
    let mut last_heard = Instant::now();

    while !(file_done && in_flight.is_empty()) {
        let now = Instant::now();
        let wait_until = [pacing.as_ref().map(|p| p.next), paused_until]
            .into_iter()
            .flatten()
            .max()
            .filter(|&at| at > now);
        let window_open = in_flight.len() < WINDOW && in_flight.bytes() < WINDOW_BYTES;
        let has_work = !retry.is_empty() || (window_open && !file_done);
        let ready = open && wait_until.is_none() && has_work;
        tokio::select! {
            biased;
            answer = answers.recv() => {
                last_heard = Instant::now();
                let Some(answer) = answer else {
                    summary.interrupted = Some("the connection ended".into());
                    break;
                };
                match answer {
                    Answer::Published(id) => {
                        if let Some(settled) = in_flight.settle(id) {
                            summary.acknowledged(settled);
                            backoff = Duration::from_millis(250);
                        }
                    }
                    Answer::Refused { code, message, .. } if code == "unauthorized" => {
                        return Err(ReplayError::Unauthorized { url: args.url.clone(), message });
                    }
                    Answer::Refused { id, code, message } => {
                        if code == "rate_limited" && in_flight.retry(id, MAX_RATE_LIMIT_RETRIES) {
                            // Not applied: send it again after a pause.
                            retry.push_back(id);
                            paused_until = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        } else if let Some(settled) = in_flight.settle(id) {
                            summary.refused(settled.line, message);
                        }
                    }
                    Answer::Unattributed(note) => {
                        if summary.notes.len() < 20 {
                            summary.notes.push(note);
                        }
                    }
                    Answer::Closed(reason) => {
                        open = false;
                        if !(file_done && in_flight.is_empty()) {
                            summary.interrupted = Some(reason);
                        }
                        break;
                    }
                }
            }
            () = sleep_until_some(wait_until), if open && wait_until.is_some() && has_work => {}
            () = std::future::ready(()), if ready && !retry.is_empty() => {
                let Some(id) = retry.pop_front() else { continue };
                let Some(frame) = in_flight.frame(id) else { continue };
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    open = false;
                }
                pace(&mut pacing);
            }
            entry = entries.recv(), if ready && retry.is_empty() => match entry {
                None => file_done = true,
                Some(Err(error)) => {
                    file_done = true;
                    summary.interrupted = Some(format!("cannot read {} on: {error}", args.file.display()));
                }
                Some(Ok(Entry::Invalid { line, message })) => {
                    summary.invalid += 1;
                    summary.rejected.insert(line, message);
                }
                Some(Ok(Entry::Record(record))) => {
                    let line = record.line;
                    let frames: Vec<String> = record
                        .payloads
                        .iter()
                        .enumerate()
                        .map(|(part, data)| {
                            serde_json::json!({
                                "op": "publish", "topic": record.topic, "data": data,
                                "id": publish_id(line, part),
                            })
                            .to_string()
                        })
                        .collect();
                    if let Some(large) = frames.iter().map(String::len).find(|&n| n > MAX_CLIENT_FRAME_BYTES) {
                        summary.invalid += 1;
                        summary.rejected.insert(line, format!(
                            "the record takes {large} bytes as a publish frame; the server takes at most {MAX_CLIENT_FRAME_BYTES}"
                        ));
                        continue;
                    }
                    if in_flight.is_empty() {
                        last_heard = Instant::now();
                    }
                    let mut sent_parts = 0;
                    for (part, frame) in frames.into_iter().enumerate() {
                        if sink.send(Message::Text(frame.clone().into())).await.is_err() {
                            open = false;
                            break;
                        }
                        in_flight.insert(publish_id(line, part), frame);
                        sent_parts += 1;
                    }
                    if sent_parts == 0 {
                        summary.unsent_from = Some(line);
                        continue;
                    }
                    summary.sent += 1;
                    summary.sent_lines = Some(summary.sent_lines.map_or((line, line), |(first, _)| (first, line)));
                    pace(&mut pacing);
                }
            },
            () = tokio::time::sleep_until(last_heard + ANSWER_TIMEOUT), if !in_flight.is_empty() => {
                summary.interrupted = Some(format!(
                    "the server sent no answer for {} s", ANSWER_TIMEOUT.as_secs()
                ));
                break;
            }
        }
        progress.update(summary.accepted + summary.rejected.len() as u64);
        if paused_until.is_some_and(|at| at <= Instant::now()) {
            paused_until = None;
        }
        if !open && summary.interrupted.is_none() {
            // A send failed: the reader task reports why the connection ended.
            let reason = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match answers.recv().await {
                        Some(Answer::Published(id)) => {
                            if let Some(settled) = in_flight.settle(id) {
                                summary.acknowledged(settled);
                            }
                        }
                        Some(Answer::Refused { id, message, .. }) => {
                            if let Some(settled) = in_flight.settle(id) {
                                summary.refused(settled.line, message);
                            }
                        }
                        Some(Answer::Unattributed(_)) => {}
                        Some(Answer::Closed(reason)) => return reason,
                        None => return "the connection ended".to_owned(),
                    }
                }
            })
            .await
            .unwrap_or_else(|_| "the connection failed".to_owned());
            summary.interrupted = Some(reason);
            break;
        }
    }

    if summary.interrupted.is_some() && summary.unsent_from.is_none() && !file_done {
        // The next record the file holds is the first one not sent.
        summary.unsent_from = match entries.recv().await {
            Some(Ok(Entry::Record(Record { line, .. }) | Entry::Invalid { line, .. })) => {
                Some(line)
            }
            _ => None,
        };
    }
    drop(entries);
    progress.finish();
    summary.unanswered = in_flight
        .lines()
        .into_iter()
        .filter(|line| !summary.rejected.contains_key(line))
        .collect();
    if open {
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    }
    reader.abort();
    Ok(summary)
}

fn pace(pacing: &mut Option<Pacing>) {
    if let Some(pacing) = pacing.as_mut() {
        pacing.sent(Instant::now());
    }
}

/// Names what went wrong with the upgrade; 401/403 mean the token.
fn connect_error(url: &str, error: tungstenite::Error) -> ReplayError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>();
            let message = format!("the server answered {status} {body}")
                .trim_end()
                .to_owned();
            if status.as_u16() == 401 {
                ReplayError::Unauthorized {
                    url: url.to_owned(),
                    message,
                }
            } else {
                ReplayError::Connect {
                    url: url.to_owned(),
                    message,
                }
            }
        }
        error => ReplayError::Connect {
            url: url.to_owned(),
            message: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        replay: ReplayArgs,
    }

    #[test]
    fn rates_are_validated_not_panicked_on() {
        for rate in [
            1e-20,
            0.0,
            -1.0,
            1e10,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
        ] {
            let error = validate_rate(rate).unwrap_err();
            assert!(error.is_usage());
            assert!(error.to_string().contains("--rate must be"), "{error}");
            assert!(Pacing::new(rate).is_err());
        }
        for rate in [MIN_RATE, 1.0, 250.5, MAX_RATE] {
            assert_eq!(validate_rate(rate).unwrap(), rate);
            assert!(Pacing::new(rate).is_ok());
        }
        for raw in ["1e-20", "1e10", "NaN", "inf", "fast", "0"] {
            let error = Cli::try_parse_from(["replay", "f.csv", "--rate", raw])
                .err()
                .unwrap_or_else(|| panic!("--rate {raw} accepted"));
            assert_eq!(error.exit_code(), 2, "{raw}");
            assert!(error.to_string().contains("--rate must be"), "{error}");
        }
        let cli = Cli::try_parse_from(["replay", "f.csv", "--rate", "50"]).unwrap();
        assert_eq!(cli.replay.rate, Some(50.0));
    }

    #[test]
    fn urls_are_normalised() {
        for (given, expected) in [
            ("http://127.0.0.1:3000", "ws://127.0.0.1:3000/ws"),
            ("http://127.0.0.1:3000/", "ws://127.0.0.1:3000/ws"),
            ("ws://h:1/ws", "ws://h:1/ws"),
            ("ws://h:1/ws/", "ws://h:1/ws"),
            ("h:1", "ws://h:1/ws"),
            ("HTTP://h:1/pulse", "ws://h:1/pulse/ws"),
            ("http://h:1?session=r", "ws://h:1/ws?session=r"),
        ] {
            assert_eq!(socket_url(given).unwrap(), expected, "{given}");
        }
        for (given, expected) in [
            ("https://h", "TLS"),
            ("ftp://h", "must start with"),
            ("http://", "no host"),
            ("ws://h/ws?token=secret", "--token"),
        ] {
            let error = socket_url(given).unwrap_err();
            assert!(error.is_usage());
            assert!(error.to_string().contains(expected), "{given}: {error}");
        }
        assert!(upgrade_request("ws://bad host/ws", None).is_err());
    }

    #[test]
    fn the_token_goes_in_a_header_not_the_url() {
        let request = upgrade_request("http://127.0.0.1:3000", Some("s3cret")).unwrap();
        assert_eq!(request.uri().to_string(), "ws://127.0.0.1:3000/ws");
        let auth = &request.headers()[header::AUTHORIZATION];
        assert_eq!(auth, "Bearer s3cret");
        assert!(auth.is_sensitive());
        assert!(!request.uri().to_string().contains("s3cret"));
        let request = upgrade_request("http://127.0.0.1:3000", None).unwrap();
        assert!(request.headers().get(header::AUTHORIZATION).is_none());
        for bad in ["", "  ", "bad\ntoken"] {
            let error = upgrade_request("ws://h/ws", Some(bad)).unwrap_err();
            assert!(matches!(error, ReplayError::Token(_)), "{bad:?}: {error}");
        }
    }

    #[test]
    fn answers_are_read_from_server_frames() {
        let text = |s: &str| Message::Text(s.into());
        assert!(matches!(
            answer_of(text(
                r#"{"op":"published","id":7,"topic":"ticks","offset":1}"#
            )),
            Some(Answer::Published(7))
        ));
        match answer_of(text(
            r#"{"op":"error","code":"invalid_data","message":"invalid price: must be > 0","id":9}"#,
        )) {
            Some(Answer::Refused { id, code, message }) => {
                assert_eq!((id, code.as_str()), (9, "invalid_data"));
                assert_eq!(message, "invalid price: must be > 0");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer_of(text(
                r#"{"op":"error","code":"invalid_json","message":"x"}"#
            )),
            Some(Answer::Unattributed(_))
        ));
        assert!(answer_of(text(r#"{"op":"pong"}"#)).is_none());
        assert!(answer_of(text("not json")).is_none());
        let close = Message::Close(Some(tungstenite::protocol::CloseFrame {
            code: 1008.into(),
            reason: "too many invalid frames".into(),
        }));
        match answer_of(close) {
            Some(Answer::Closed(reason)) => {
                assert!(
                    reason.contains("1008") && reason.contains("too many"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_summary_lists_every_problem() {
        let mut summary = ReplaySummary {
            sent: 10,
            accepted: 5,
            unanswered: vec![7, 8, 9, 12],
            interrupted: Some("the server closed the connection (code 1001)".into()),
            unsent_from: Some(14),
            sent_lines: Some((2, 12)),
            invalid: 1,
            ..Default::default()
        };
        summary
            .rejected
            .insert(3, "invalid price: must be > 0".into());
        summary.rejected.insert(5, "not valid JSON".into());
        assert!(!summary.succeeded());
        let problems = summary.problems();
        assert_eq!(problems[0], "line 3: invalid price: must be > 0");
        assert_eq!(problems[1], "line 5: not valid JSON");
        assert!(
            problems.iter().any(|p| p.contains("lines 7-9, 12")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("line 14")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("acknowledged: 5")),
            "{problems:?}"
        );
        assert_eq!(
            summary.totals(),
            "10 records sent: 5 accepted, 1 rejected, 4 unanswered; 1 lines could not be sent"
        );
        assert!(ReplaySummary::default().succeeded());
    }

    #[test]
    fn line_ranges_are_compact_and_bounded() {
        assert_eq!(line_ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
        let many: Vec<u64> = (0..200).map(|i| i * 2).collect();
        assert!(line_ranges(&many).ends_with("and 150 more ranges"));
    }
}
