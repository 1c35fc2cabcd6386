//! The Rust SDK that Element X is built on, against homeservers: its sync service (simplified
//! sliding sync plus the encryption sync), room list, timeline and end-to-end encryption.
//!
//! usage: tandem-sdk-check BASE_URL              two users chat
//!        tandem-sdk-check e2ee URL_A URL_B      encrypted rooms between a user of each server
//!        tandem-sdk-check flows URL [FLOW...]   the app flows below, all of them by default:
//!            membership  invite, decline, re-invite, accept, leave, forget
//!            directory   aliases, the canonical alias, previews of a room one is not in
//!            receipts    a read receipt clearing the unread count in sliding sync
//!            messages    threads, reactions, edits, redactions, pinned events
//!            sas         emoji verification between two devices of one user
//!            qr          QR-code verification between two devices of one user
//!            push        a pusher, pushes of an encrypted message and a mention, the badge
//!                        cleared by reading (needs TANDEM_PUSH_GATEWAY, the gateway's host:port)
//! (prints "ok" and exits 0 on success; RUST_LOG=matrix_sdk=debug logs the SDK on stderr)

mod account;
mod directory;
mod e2ee;
mod media;
mod membership;
mod messages;
mod push;
mod receipts;
mod support;
mod verification;

use anyhow::{Context, Result, bail};
use matrix_sdk_ui::timeline::RoomExt;

use account::user;
use support::{accept_invite, create_room, sees, send, unique, until};

/// Two users chat through sliding sync: an invite, a join, a message, the room's name.
async fn chat(url: &str) -> Result<()> {
    let (alice, alice_sync) = user(url, &unique("sdkalice")).await?;
    let (bob, bob_sync) = user(url, &unique("sdkbob")).await?;
    let room = create_room(&alice, "sdk room", &bob).await?;
    let bob_room = accept_invite(&bob, &room).await?;

    let alice_timeline = room.timeline().await.context("alice's timeline")?;
    send(&alice_timeline, "hello from the sdk").await?;
    let bob_timeline = bob_room.timeline().await.context("bob's timeline")?;
    sees("bob", &bob_timeline, "hello from the sdk").await?;
    until("the room's name at bob", support::soon(), async || bob_room.name().as_deref() == Some("sdk room")).await?;

    alice_sync.stop().await;
    bob_sync.stop().await;
    Ok(())
}

/// Runs one named flow against `url`.
async fn flow(name: &str, url: &str) -> Result<()> {
    match name {
        "membership" => membership::run(url).await,
        "directory" => directory::run(url).await,
        "receipts" => receipts::run(url).await,
        "messages" => messages::run(url).await,
        "sas" => verification::sas(url).await,
        "qr" => verification::qr(url).await,
        "push" => push::run(url).await,
        _ => bail!("unknown flow {name:?}"),
    }
}

const FLOWS: [&str; 6] = ["membership", "directory", "receipts", "messages", "sas", "qr"];

#[tokio::main]
async fn main() -> Result<()> {
    // RUST_LOG=matrix_sdk=debug shows the SDK's requests and responses, to see what a failing
    // server answered.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("e2ee") => {
            let (a, b) = (args.get(1).context("URL_A")?, args.get(2).context("URL_B")?);
            e2ee::run(a, b).await?;
        }
        Some("media") => {
            let (a, b) = (args.get(1).context("URL_A")?, args.get(2).context("URL_B")?);
            media::run(a, b).await?;
        }
        Some("flows") => {
            let url = args.get(1).context("usage: tandem-sdk-check flows URL [FLOW...]")?;
            let chosen: Vec<&str> =
                if args.len() > 2 { args[2..].iter().map(String::as_str).collect() } else { FLOWS.to_vec() };
            for name in chosen {
                flow(name, url).await.with_context(|| format!("flow {name}"))?;
                println!("{name}: ok");
            }
        }
        Some(url) => chat(url).await?,
        None => bail!("usage: tandem-sdk-check BASE_URL | e2ee URL_A URL_B | media URL_A URL_B | flows URL [FLOW...]"),
    }
    println!("ok");
    Ok(())
}
