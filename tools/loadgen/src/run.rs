//! One benchmark run, phase by phase: check the setup, read the server's
//! memory, connect the subscribers, warm up, then either report idle memory
//! or publish, drain, stop the subscribers, merge their stats and report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::args::Args;
use crate::checks::{check, Setup};
use crate::fleet::{Connected, Fleet};
use crate::metrics::{server_metrics, ServerMetrics};
use crate::publishing::publish;
use crate::report::{self, mib, Memory, Results};
use crate::shared::Shared;
use crate::tally::Tally;

pub async fn run(args: Args) -> Result<()> {
    let Setup { addr, symbol } = check(&args)?;
    let before = server_metrics(addr).await.with_context(|| {
        format!("server unreachable at {addr}: is `pulse --addr {addr}` running?")
    })?;
    println!(
        "loadgen: server at {addr}, RSS before connecting {} ({} ws connections)",
        mib(before.rss),
        before.connections
    );
    let total = args.events();
    let shared = Arc::new(Shared::new(total));

    let (fleet, connected) = Fleet::connect(&args, &shared).await;
    report_connected(&args, &connected);
    if connected.ok == 0 {
        fleet.stop();
        bail!(
            "no subscriber could connect to {} ({})",
            args.url,
            connected.first_error.unwrap_or_default()
        );
    }

    tokio::time::sleep(Duration::from_secs_f64(args.warmup.max(0.0))).await;
    let idle = server_metrics(addr)
        .await
        .context("GET /metrics after connecting")?;
    let mut memory = Memory {
        before,
        idle,
        end: ServerMetrics::unknown(),
    };
    report_idle_memory(&memory, connected.ok, &shared);

    if args.idle {
        fleet.finish().await;
        print!("{}", report::idle(&connected, &memory));
        return Ok(());
    }

    let published = publish(&args, symbol.as_deref(), total, &shared).await;
    let expected = published.events * connected.ok as u64;
    drain(&shared, expected, args.drain).await;
    let last_delivery_secs = published.start.elapsed().as_secs_f64();
    memory.end = server_metrics(addr).await.unwrap_or_else(|error| {
        eprintln!("loadgen: GET /metrics at the end failed: {error:#}");
        ServerMetrics::unknown()
    });
    let tally = Tally::of(fleet.finish().await);
    let results = Results {
        rate: args.rate,
        duration: args.duration,
        connected: &connected,
        published: &published,
        expected,
        last_delivery_secs,
        tally: &tally,
        foreign: shared.foreign.load(Ordering::Relaxed),
        memory,
    };
    print!("{}", report::results(&results));
    Ok(())
}

fn report_connected(args: &Args, connected: &Connected) {
    println!(
        "loadgen: {} subscribers subscribed to '{}' in {:.1} s, {} failed",
        connected.ok, args.topic, connected.secs, connected.failed
    );
    if let Some(error) = &connected.first_error {
        eprintln!("loadgen: first connect failure: {error}");
    }
}

/// Prints the idle memory per connection and warns if events arrived
/// before publishing (the simulator would skew every figure).
fn report_idle_memory(memory: &Memory, subscribers: usize, shared: &Shared) {
    let per_connection = memory.per_connection(subscribers);
    println!(
        "loadgen: RSS after connecting {} ({} ws connections) => {:.0} bytes ({:.2} KiB) per connection",
        mib(memory.idle.rss),
        memory.idle.connections,
        per_connection,
        per_connection / 1024.0
    );
    let foreign_idle = shared.foreign.load(Ordering::Relaxed);
    if foreign_idle > 0 {
        eprintln!(
            "loadgen: warning: {foreign_idle} events arrived before publishing started; \
             run the server with --no-simulator for clean numbers"
        );
    }
}

/// Waits up to `drain_secs` for the `expected` deliveries still in flight.
async fn drain(shared: &Shared, expected: u64, drain_secs: f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(drain_secs.max(0.0));
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
