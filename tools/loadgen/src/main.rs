//! `loadgen`: WebSocket fan-out benchmark for Pulse.
//!
//! Opens N subscriber connections to `/ws`, subscribes them all to one topic,
//! then publishes ticks at a fixed total rate over P publisher connections and
//! measures, per delivered event, the time from the publisher's send to the
//! subscriber's receive. The tick's `volume` carries a global sequence number
//! (the `ts` field only has ms resolution), and the send instant of every
//! sequence number is kept in a pre-allocated table shared by all tasks.
//!
//! Subscribers keep only counters and a log-linear latency histogram (µs
//! resolution, ~3 % precision), merged at the end. Server memory is read from
//! `GET /metrics` (`pulse_process_resident_memory_bytes`) before connecting,
//! after connecting (idle) and at the end.
//!
//! The load generator runs on the same machine as the server: every
//! delivered event is parsed here too, so its CPU competes with the server's.
//!
//! Examples (the shell needs `ulimit -n 65536` for 10,000 connections, both
//! for the server and for loadgen):
//!
//! ```text
//! target/release/pulse --addr 127.0.0.1:3900 --no-simulator &
//! target/release/loadgen --subscribers 1000 --rate 100 --duration 15
//! target/release/loadgen --subscribers 10000 --idle
//! ```
//!
//! Modules, in the order a run uses them: `args` and `checks` (flags and
//! setup checks), `metrics` (server memory over HTTP), `fleet` (connect the
//! subscribers, each a `subscriber` counting into `sub_stats` with the
//! `frame` scanner and a `histogram`), `publishing` (the `publisher`s,
//! stamping the `send_table`), `tally` (merge what the subscribers saw) and
//! `report`; `run` strings the phases together.

mod args;
mod checks;
mod fleet;
mod frame;
mod histogram;
mod metrics;
mod publisher;
mod publishing;
mod report;
mod run;
mod send_table;
mod shared;
mod sub_stats;
mod subscriber;
mod tally;
mod ws;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::args::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: error: could not start the tokio runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run::run(args));
    // Do not wait for sockets still being torn down.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: error: {error:#}");
            ExitCode::from(1)
        }
    }
}
