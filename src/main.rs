//! The `pulse` binary: parses configuration and runs the server.

use clap::Parser;
use pulse::server::config::{Cli, Command};

/// Events are allocated on tokio's workers and freed on the storage writer
/// thread; glibc's allocator serialises that on its arena locks (see
/// BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    pulse::server::init_tracing();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // A flag out of range is a usage error, like one clap refuses.
            if let Err(error) = cli.server.validate() {
                eprintln!("error: {error}");
                std::process::exit(2);
            }
            let server = pulse::server::start(cli.server).await?;
            tracing::info!("Pulse is listening on http://{}", server.addr());
            pulse::server::shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await?;
        }
        Command::Replay(args) => {
            let summary = pulse::server::replay::run(&args).await?;
            for (line, message) in &summary.rejected {
                eprintln!("line {line}: {message}");
            }
            println!(
                "{} records sent: {} accepted, {} rejected",
                summary.sent,
                summary.accepted,
                summary.rejected.len()
            );
            if !summary.rejected.is_empty() {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
