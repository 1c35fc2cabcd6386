//! `tandem`, the homeserver binary: command line and wiring only.

mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tandem, a Matrix homeserver.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults: server name `localhost`, http://127.0.0.1:8008, data in
    /// ./tandem-data).
    Serve {
        /// A TOML configuration file (see `tandem generate-config`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a configuration file documenting every key at its default.
    GenerateConfig,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::GenerateConfig => {
            print!("{}", config::TEMPLATE);
            ExitCode::SUCCESS
        }
        Command::Serve { config } => match config::Config::load(config.as_deref()) {
            Ok(config) => serve::run(config),
            Err(e) => {
                eprintln!("tandem: refusing to start: {e}");
                ExitCode::from(2)
            }
        },
    }
}
