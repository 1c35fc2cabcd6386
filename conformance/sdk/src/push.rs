//! Notifications on a phone, as Element X sets them up: bob's app registers an HTTP pusher
//! through the SDK; alice writes to him in an encrypted direct chat and mentions him in a
//! group room; the push gateway (the suite's, at `TANDEM_PUSH_GATEWAY`) receives both with the
//! badge count; bob reads both rooms and the gateway is told the badge is 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use matrix_sdk::ruma::api::client::push::{PusherIds, PusherInit, PusherKind};
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::events::Mentions;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::push::HttpPusherData;
use matrix_sdk_ui::timeline::RoomExt;
use serde_json::Value;

use crate::account::user;
use crate::support::{accept_invite, create_room, send, shows, unique, until};

/// What the gateway accepted so far: each request's `notification`.
fn accepted(gateway: &str) -> Result<Vec<Value>> {
    let mut stream = TcpStream::connect(gateway).context("the push gateway")?;
    write!(stream, "GET /received HTTP/1.1\r\nHost: {gateway}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let all: Value = serde_json::from_str(body).context("the gateway's answer")?;
    Ok(all["received"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == 200)
        .map(|r| r["body"]["notification"].clone())
        .collect())
}

pub async fn run(url: &str) -> Result<()> {
    let gateway = std::env::var("TANDEM_PUSH_GATEWAY").context("TANDEM_PUSH_GATEWAY (host:port)")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (alice, alice_sync) = user(url, &unique("palice")).await?;
    let (bob, bob_sync) = user(url, &unique("pbob")).await?;
    let bob_id = bob.user_id().context("bob's id")?.to_owned();

    let pushkey = unique("fcm-token");
    let data = HttpPusherData::new(format!("http://{gateway}/_matrix/push/v1/notify"));
    let pusher = PusherInit {
        ids: PusherIds::new(pushkey.clone(), "io.element.elementx".into()),
        kind: PusherKind::Http(data),
        app_display_name: "Element X".into(),
        device_display_name: "Bob's phone".into(),
        profile_tag: None,
        lang: "en".into(),
    };
    bob.pusher().set(pusher.into(), false).await.context("setting the pusher")?;

    // An encrypted direct chat.
    let dm = alice.create_dm(&bob_id).await.context("create dm")?;
    let bob_dm = accept_invite(&bob, &dm).await?;
    until("the direct chat to be encrypted at alice", deadline, async || {
        dm.latest_encryption_state().await.is_ok_and(|s| s.is_encrypted())
    })
    .await?;
    let (alice_dm_tl, bob_dm_tl) = (dm.timeline().await?, bob_dm.timeline().await?);
    let secret = send(&alice_dm_tl, "lunch at noon?").await?;
    until("bob to decrypt the direct message", deadline, async || shows(&bob_dm_tl, "lunch at noon?").await).await?;

    let mut found = None;
    until("the push of the encrypted message", deadline, async || {
        found = accepted(&gateway).ok().and_then(|a| a.into_iter().find(|n| n["event_id"] == secret.as_str()));
        found.is_some()
    })
    .await?;
    let n = found.take().context("push")?;
    ensure!(n["type"] == "m.room.encrypted", "the push is not of the encrypted event: {n}");
    ensure!(n["prio"] == "high", "an encrypted message is pushed with high priority: {n}");
    ensure!(n["counts"]["unread"] == 1, "badge of 1 expected: {n}");
    ensure!(n["devices"][0]["pushkey"] == pushkey.as_str(), "{n}");

    // A mention in a group room.
    let group = create_room(&alice, "team room", &bob).await?;
    let bob_group = accept_invite(&bob, &group).await?;
    let mention = RoomMessageEventContent::text_plain("Bob: the report, please")
        .add_mentions(Mentions::with_user_ids([bob_id.clone()]));
    let mention_id = group.send(mention).await.context("the mention")?.response.event_id;
    until("the push of the mention", deadline, async || {
        found = accepted(&gateway).ok().and_then(|a| a.into_iter().find(|n| n["event_id"] == mention_id.as_str()));
        found.is_some()
    })
    .await?;
    let n = found.take().context("push")?;
    ensure!(n["devices"][0]["tweaks"]["highlight"] == true, "a mention highlights: {n}");
    ensure!(n["counts"]["unread"] == 2, "two rooms to read: {n}");
    ensure!(n["room_name"] == "team room", "{n}");

    // Bob reads both rooms on his phone: the badge goes to 0.
    let bob_group_tl = bob_group.timeline().await?;
    until("bob to see the mention", deadline, async || shows(&bob_group_tl, "Bob: the report, please").await).await?;
    bob_dm_tl.mark_as_read(ReceiptType::Read).await.context("reading the direct chat")?;
    bob_group_tl.mark_as_read(ReceiptType::Read).await.context("reading the group room")?;
    until("a badge of 0 at the gateway", deadline, async || {
        accepted(&gateway).ok().and_then(|a| a.last().cloned()).is_some_and(|n| n["counts"]["unread"] == 0)
    })
    .await?;

    alice_sync.stop().await;
    bob_sync.stop().await;
    Ok(())
}
