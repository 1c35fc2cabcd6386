//! Unread counts and read receipts, public and private, as Element X shows them over sliding
//! sync.

use anyhow::{Context, Result, ensure};
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk_ui::timeline::RoomExt;

use crate::account::user;
use crate::messages::item;
use crate::support::{accept_invite, create_room, sees, send, soon, unique, until};

/// Bob receives messages and his client counts them as unread; his read receipt, sent through
/// the timeline and echoed back by the receipts extension of sliding sync, brings the count back
/// to zero, and alice sees the receipt. The counts are the SDK's own (what Element X shows):
/// servers may report their own in sliding sync (Synapse always reports zero), and those must
/// be zero once the room is read.
pub async fn run(url: &str) -> Result<()> {
    let (alice, alice_sync) = user(url, &unique("ralice")).await?;
    let (bob, bob_sync) = user(url, &unique("rbob")).await?;
    let bob_id = bob.user_id().context("bob's id")?.to_owned();
    let room = create_room(&alice, "receipts room", &bob).await?;
    let bob_room = accept_invite(&bob, &room).await?;
    let (alice_tl, bob_tl) = (room.timeline().await?, bob_room.timeline().await?);

    send(&alice_tl, "unread one").await?;
    let last = send(&alice_tl, "unread two").await?;
    sees("bob", &bob_tl, "unread two").await?;
    until("bob's unread notification count to reach 2", soon(), async || {
        bob_room.num_unread_notifications() >= 2 && bob_room.num_unread_messages() >= 2
    })
    .await?;

    ensure!(bob_tl.mark_as_read(ReceiptType::Read).await.context("read receipt")?, "the receipt was not sent");
    until("bob's unread counts to return to 0", soon(), async || {
        bob_room.num_unread_notifications() == 0
            && bob_room.num_unread_messages() == 0
            && bob_room.unread_notification_counts().notification_count == 0
    })
    .await?;
    until("alice to see bob's read receipt on the last message", soon(), async || {
        item(&alice_tl, &last).await.is_some_and(|i| i.read_receipts().contains_key(&bob_id))
    })
    .await?;

    // With public receipts turned off, Element X sends private ones: only bob's own devices
    // get those back, and they clear his counts just the same.
    send(&alice_tl, "unread three").await?;
    until("bob's unread count to rise again", soon(), async || bob_room.num_unread_notifications() >= 1).await?;
    ensure!(bob_tl.mark_as_read(ReceiptType::ReadPrivate).await.context("private receipt")?, "no receipt sent");
    until("a private read receipt to bring bob's unread count to 0", soon(), async || {
        bob_room.num_unread_notifications() == 0 && bob_room.num_unread_messages() == 0
    })
    .await?;

    alice_sync.stop().await;
    bob_sync.stop().await;
    Ok(())
}
