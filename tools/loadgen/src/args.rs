//! Command-line flags. Scripts and BENCHMARKS.md pass these names, so they
//! are part of the tool's interface.

use anyhow::{bail, Result};
use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "WebSocket fan-out load generator and latency benchmark for Pulse (loopback only)"
)]
pub struct Args {
    /// WebSocket endpoint of the server (must be on 127.0.0.1 / localhost).
    #[arg(long, default_value = "ws://127.0.0.1:3900/ws")]
    pub url: String,

    /// Where the subscribers connect instead of `--url`, spread round-robin
    /// (comma separated; e.g. the other nodes of a cluster, so events travel
    /// publisher → leader → Redis → follower → subscriber). Publishers and
    /// the memory readings stay on `--url`.
    #[arg(long, value_delimiter = ',')]
    pub subscriber_urls: Vec<String>,

    /// Subscriber connections to open.
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,

    /// Total published events per second (all publishers together).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,

    /// Seconds to publish for.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Topic the subscribers subscribe to (`ticks` or `ticks:<SYMBOL>`).
    #[arg(long, default_value = "ticks")]
    pub topic: String,

    /// Publisher connections the rate is spread over.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,

    /// Ingest token for publishers (servers started with --ingest-token).
    #[arg(long, env = "PULSE_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Seconds to wait after all subscribers are connected before measuring
    /// idle memory and starting to publish.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Seconds to wait for in-flight events after publishing stops.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,

    /// Connection attempts (TCP + WebSocket handshake + subscribe) in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,

    /// Attempts per connection before it counts as failed.
    #[arg(long, default_value_t = 5)]
    pub connect_attempts: u32,

    /// Only connect and subscribe the subscribers, measure server memory per
    /// idle connection, and exit.
    #[arg(long)]
    pub idle: bool,

    /// Diagnostic: set TCP_QUICKACK on subscriber sockets after every read, so
    /// delayed ACKs cannot hold back a server that writes without TCP_NODELAY.
    #[arg(long)]
    pub quickack: bool,

    /// Tokio worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl Args {
    /// Events to publish in total: none in `--idle` mode.
    pub fn events(&self) -> u64 {
        if self.idle {
            0
        } else {
            (self.rate * self.duration).round() as u64
        }
    }

    /// The symbol every tick carries: fixed for `ticks:<SYMBOL>`, rotating
    /// (`None`) for `ticks`. Published events are ticks, so other topics
    /// would receive nothing.
    pub fn symbol(&self) -> Result<Option<String>> {
        match self.topic.strip_prefix("ticks:") {
            Some(symbol) => Ok(Some(symbol.to_owned())),
            None if self.topic == "ticks" => Ok(None),
            None => {
                bail!("--topic must be 'ticks' or 'ticks:<SYMBOL>' (published events are ticks)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(flags: &[&str]) -> Args {
        let argv = std::iter::once("loadgen").chain(flags.iter().copied());
        match Args::try_parse_from(argv) {
            Ok(args) => args,
            Err(error) => panic!("{flags:?} did not parse: {error}"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let args = parse(&[]);
        assert_eq!(args.url, "ws://127.0.0.1:3900/ws");
        assert_eq!(args.subscribers, 1_000);
        assert_eq!(args.rate, 100.0);
        assert_eq!(args.duration, 10.0);
        assert_eq!(args.topic, "ticks");
        assert_eq!(args.publishers, 1);
        assert_eq!(args.warmup, 2.0);
        assert_eq!(args.drain, 2.0);
        assert_eq!(args.connect_concurrency, 200);
        assert_eq!(args.connect_attempts, 5);
        assert!(!args.idle && !args.quickack);
        assert_eq!(args.threads, 0);
    }

    #[test]
    fn the_flags_benchmarks_md_uses_parse() {
        let args = parse(&[
            "--url",
            "ws://127.0.0.1:3911/ws",
            "--subscribers",
            "20",
            "--publishers",
            "8",
            "--rate",
            "200",
            "--duration",
            "3",
            "--connect-concurrency",
            "7",
            "--connect-attempts",
            "2",
            "--quickack",
        ]);
        assert_eq!(args.url, "ws://127.0.0.1:3911/ws");
        assert_eq!((args.subscribers, args.publishers), (20, 8));
        assert_eq!((args.rate, args.duration), (200.0, 3.0));
        assert_eq!((args.connect_concurrency, args.connect_attempts), (7, 2));
        assert!(args.quickack);
        assert!(parse(&["--idle", "--warmup", "3"]).idle);
    }

    #[test]
    fn events_is_rate_times_duration_rounded_and_zero_when_idle() {
        assert_eq!(parse(&["--rate", "200", "--duration", "3"]).events(), 600);
        assert_eq!(parse(&["--rate", "2.5", "--duration", "1.2"]).events(), 3);
        assert_eq!(parse(&["--rate", "200", "--idle"]).events(), 0);
    }

    #[test]
    fn symbol_follows_the_topic() {
        assert_eq!(parse(&[]).symbol().ok(), Some(None));
        let fixed = parse(&["--topic", "ticks:AAPL"]).symbol().ok();
        assert_eq!(fixed, Some(Some("AAPL".to_owned())));
        assert!(parse(&["--topic", "posts"]).symbol().is_err());
        assert!(parse(&["--topic", "ticksAAPL"]).symbol().is_err());
    }
}
