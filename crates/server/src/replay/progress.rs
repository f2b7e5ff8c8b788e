//! Progress of a replay on a terminal: records done, their rate and the
//! time left, drawn on stderr only when stderr is a terminal (a redirected
//! or piped run stays as quiet as before). Time left needs a total the
//! file knows up front: its size, against the bytes read so far.

use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Redraws at most this often (answers arrive far faster).
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// A reader that counts the bytes taken from it.
pub struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> (Self, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        (
            Self {
                inner,
                read: Arc::clone(&read),
            },
            read,
        )
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The progress line, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    read: Arc<AtomicU64>,
    started: Instant,
    drawn: Instant,
}

impl Progress {
    /// Progress through a file of `total` bytes whose reader counts into `read`.
    pub fn new(total: u64, read: Arc<AtomicU64>) -> Self {
        Self::with_terminal(total, read, std::io::stderr().is_terminal())
    }

    fn with_terminal(total: u64, read: Arc<AtomicU64>, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30.cyan/blue} {percent:>3}% {msg} · {eta} left")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            read,
            started: now,
            drawn: now,
        }
    }

    #[cfg(test)]
    fn is_drawn(&self) -> bool {
        self.bar.is_some()
    }

    /// `done` records answered so far (accepted or rejected).
    pub fn update(&mut self, done: u64) {
        let Some(bar) = &self.bar else { return };
        let now = Instant::now();
        if now.duration_since(self.drawn) < REDRAW_EVERY {
            return;
        }
        self.drawn = now;
        bar.set_position(self.read.load(Ordering::Relaxed));
        bar.set_message(describe(done, now.duration_since(self.started)));
    }

    /// Clears the line, so the summary prints as without progress.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `12,345 records · 4,321/s`.
fn describe(done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!(
        "{} records · {}/s",
        thousands(done),
        thousands(rate.round() as u64)
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_records_and_rate() {
        assert_eq!(
            describe(12_345, Duration::from_secs(5)),
            "12,345 records · 2,469/s"
        );
        assert_eq!(describe(0, Duration::ZERO), "0 records · 0/s");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn bytes_are_counted_and_nothing_is_drawn_off_a_terminal() {
        let (mut reader, read) = Counted::new(&b"symbol,price\nA,1\n"[..]);
        let mut text = String::new();
        reader.read_to_string(&mut text).expect("reads");
        assert_eq!(read.load(Ordering::Relaxed), 17);
        let mut progress = Progress::with_terminal(17, read, false);
        progress.update(1);
        assert!(!progress.is_drawn());
        progress.finish();
        let drawn = Progress::with_terminal(17, Arc::default(), true);
        assert!(drawn.is_drawn());
        drawn.finish();
    }
}
