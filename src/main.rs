//! `tandem`, the homeserver binary: command line and wiring only.

use clap::Parser;

/// Tandem, a Matrix homeserver.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!(
        "tandem {}: only the state resolution library (crates/state-res) exists so far; \
         the server itself (`tandem serve`) is not built yet.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
