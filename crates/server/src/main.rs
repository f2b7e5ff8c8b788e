//! The `pulse` binary: parses configuration and runs the server.

use clap::Parser;
use pulse_server::config::{Cli, Command};

/// Events are allocated on tokio's workers and freed on the storage writer
/// thread; glibc's allocator serialises that on its arena locks (see
/// BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    pulse_server::init_tracing();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // A flag out of range is a usage error, like one clap refuses.
            if let Err(error) = cli.server.validate() {
                eprintln!("error: {error}");
                std::process::exit(2);
            }
            let server = pulse_server::start(cli.server).await?;
            tracing::info!("Pulse is listening on http://{}", server.addr());
            pulse_server::shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await?;
        }
        Command::Replay(args) => {
            let summary = match pulse_server::replay::run(&args).await {
                Ok(summary) => summary,
                // A bad argument exits with 2, like clap's own errors; the
                // message already names the cause, so no chain or backtrace.
                Err(error) => {
                    eprintln!("error: {error}");
                    std::process::exit(if error.is_usage() { 2 } else { 1 });
                }
            };
            for problem in summary.problems() {
                eprintln!("{problem}");
            }
            println!("{}", summary.totals());
            if !summary.succeeded() {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
