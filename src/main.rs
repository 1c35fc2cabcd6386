//! `tandem`, the homeserver binary: command line and wiring only.

mod config;
mod listener;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc's allocator keeps a heap per thread that allocated, and the blocking pool's threads
// each grow one under concurrent writes (about a third of the peak memory with 32 senders);
// mimalloc gives freed memory back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Stop when standard input closes (for a supervising test harness).
        #[arg(long, hide = true)]
        exit_on_stdin_eof: bool,
    },
    /// Print a configuration file documenting every key at its default.
    GenerateConfig,
    /// Check a configuration (the file, then `TANDEM_*` variables) and print it as the server
    /// would run with it, secrets masked.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create a user on a stopped server.
    CreateUser {
        /// The localpart (`alice` for @alice:server_name).
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: String,
        /// Make the user a server admin.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replace the server's signing key (on a stopped server). The old key stays published
    /// under `old_verify_keys`, so what it signed can still be verified.
    RotateKey {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    for name in config::unknown_environment() {
        eprintln!("tandem: warning: the environment variable {name} names no configuration key; ignored");
    }
    match Cli::parse().command {
        Command::CheckConfig { config } => {
            let Some(config) = load(config) else { return ExitCode::from(2) };
            print!("{}", config.to_masked_toml());
            ExitCode::SUCCESS
        }
        Command::GenerateConfig => {
            print!("{}", config::TEMPLATE);
            ExitCode::SUCCESS
        }
        Command::Serve { config, exit_on_stdin_eof } => match config::Config::load(config.as_deref()) {
            Ok(config) => serve::run(config, exit_on_stdin_eof),
            Err(e) => {
                eprintln!("tandem: refusing to start: {e}");
                ExitCode::from(2)
            }
        },
        Command::RotateKey { config } => {
            let Some(config) = load(config) else { return ExitCode::from(2) };
            match serve::rotate_key(&config) {
                Ok(key_id) => {
                    println!("new signing key {key_id}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tandem: cannot rotate the key: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CreateUser { user, password, admin, config } => {
            let Some(config) = load(config) else { return ExitCode::from(2) };
            let created = serve::open(&config)
                .and_then(|hs| hs.create_account(&user, Some(&password), admin).map_err(|e| e.to_string()));
            match created {
                Ok(user_id) => {
                    println!("created {user_id}{}", if admin { " (admin)" } else { "" });
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tandem: cannot create user: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(file: Option<PathBuf>) -> Option<config::Config> {
    match config::Config::load(file.as_deref()) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("tandem: {e}");
            None
        }
    }
}
