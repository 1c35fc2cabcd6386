//! The Rust SDK that Element X is built on, against homeservers: its sync service (simplified
//! sliding sync plus the encryption sync), room list, timeline and end-to-end encryption.
//!
//! usage: tandem-sdk-check BASE_URL              two users chat
//!        tandem-sdk-check e2ee URL_A URL_B      encrypted rooms between a user of each server
//! (prints "ok" and exits 0 on success)

mod e2ee;

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use matrix_sdk::ruma::api::client::account::register::v3::Request as RegisterRequest;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::api::client::uiaa;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::{Client, RoomState};
use matrix_sdk_ui::sync_service::SyncService;
use matrix_sdk_ui::timeline::RoomExt;

pub(crate) async fn user(url: &str, name: &str) -> Result<(Client, SyncService)> {
    let client = Client::builder().homeserver_url(url).build().await?;
    let mut req = RegisterRequest::new();
    req.username = Some(name.into());
    req.password = Some(format!("pw-{name}"));
    req.auth = Some(uiaa::AuthData::Dummy(uiaa::Dummy::new()));
    client.matrix_auth().register(req).await.context("register")?;
    let sync = SyncService::builder(client.clone()).build().await.context("sync service")?;
    sync.start().await;
    Ok((client, sync))
}

/// Polls `check` every 50 ms until it holds, failing with `what` after the deadline.
pub(crate) async fn until(what: &str, deadline: Instant, mut check: impl AsyncFnMut() -> bool) -> Result<()> {
    while !check().await {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("e2ee") {
        let (a, b) = (args.get(1).context("URL_A")?, args.get(2).context("URL_B")?);
        e2ee::run(a, b).await?;
        println!("ok");
        return Ok(());
    }
    let url = args.first().cloned().context("usage: tandem-sdk-check BASE_URL")?;
    let suffix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_nanos() % 1_000_000_000;
    let (alice, alice_sync) = user(&url, &format!("sdkalice{suffix}")).await?;
    let (bob, bob_sync) = user(&url, &format!("sdkbob{suffix}")).await?;
    let deadline = Instant::now() + Duration::from_secs(60);

    let mut create = CreateRoomRequest::new();
    create.name = Some("sdk room".into());
    create.invite = vec![bob.user_id().context("bob's id")?.to_owned()];
    let room = alice.create_room(create).await.context("create room")?;
    let room_id = room.room_id().to_owned();

    until("bob's invite through sliding sync", deadline, async || {
        bob.get_room(&room_id).is_some_and(|r| r.state() == RoomState::Invited)
    })
    .await?;
    let bob_room = bob.get_room(&room_id).context("bob's room")?;
    bob_room.join().await.context("join")?;
    until("bob joined", deadline, async || bob_room.state() == RoomState::Joined).await?;

    let alice_timeline = room.timeline().await.context("alice's timeline")?;
    alice_timeline.send(RoomMessageEventContent::text_plain("hello from the sdk").into()).await.context("send")?;
    let bob_timeline = bob_room.timeline().await.context("bob's timeline")?;
    until("the message in bob's timeline", deadline, async || {
        bob_timeline.items().await.iter().any(|item| {
            item.as_event()
                .and_then(|e| e.content().as_message().map(|m| m.body().to_owned()))
                .is_some_and(|body| body == "hello from the sdk")
        })
    })
    .await?;
    until("the room's name at bob", deadline, async || bob_room.name().as_deref() == Some("sdk room")).await?;

    alice_sync.stop().await;
    bob_sync.stop().await;
    println!("ok");
    Ok(())
}
