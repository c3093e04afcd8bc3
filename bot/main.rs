//! The `opsbot` command line: `opsbot serve` runs the bot.

use clap::{Parser, Subcommand};
use opsbot::config::{Config, ServeArgs};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "opsbot",
    version,
    about = "The team's CI/CD runbook, live in Slack: incidents, escalation, checklists."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot: Slack endpoints, Redis-backed state and the outbox worker.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::from_env(&args) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("opsbot: {e}");
                    return ExitCode::from(2);
                }
            };
            opsbot::telemetry::init();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("opsbot: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(opsbot::app::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("opsbot: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
