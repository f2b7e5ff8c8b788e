//! The `pulse` binary: parses configuration and runs the server.

use clap::Parser;
use pulse::server::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    pulse::server::init_tracing();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = pulse::server::start(cli.server).await?;
            tracing::info!("Pulse is listening on http://{}", server.addr());
            pulse::server::shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await?;
        }
    }
    Ok(())
}
