//! End-to-end encryption as Element X does it, between a user on one server and a user on
//! another (or the same): cross-signing, an encrypted room and an encrypted direct chat, a
//! second device, key backup restored on a fresh device, and a signed-out device that new
//! messages are no longer encrypted for.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use matrix_sdk::encryption::{BackupDownloadStrategy, EncryptionSettings};
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk_ui::timeline::{RoomExt, Timeline};

use crate::account::{login, user};
use crate::support::{accept_invite, send, shows, unique, until};

async fn decrypts(what: &str, timeline: &Timeline, body: &str, deadline: Instant) -> Result<()> {
    until(&format!("{what} to decrypt {body:?}"), deadline, async || shows(timeline, body).await).await
}

pub async fn run(url_a: &str, url_b: &str) -> Result<()> {
    let (alice_name, bob_name) = (unique("e2ealice"), unique("e2ebob"));
    let (alice, alice_sync) = user(url_a, &alice_name).await?;
    let (bob, bob_sync) = user(url_b, &bob_name).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let bob_id = bob.user_id().context("bob's id")?.to_owned();
    let alice_id = alice.user_id().context("alice's id")?.to_owned();

    // Cross-signing for both (no password needed for a first upload), then a recovery key
    // with server-side key backup for alice.
    alice.encryption().bootstrap_cross_signing(None).await.context("alice's cross-signing")?;
    bob.encryption().bootstrap_cross_signing(None).await.context("bob's cross-signing")?;
    let recovery_key = alice.encryption().recovery().enable().wait_for_backups_to_upload().await.context("recovery")?;

    // An encrypted room and an encrypted direct chat.
    let mut create = CreateRoomRequest::new();
    create.name = Some("secret room".into());
    create.invite = vec![bob_id.clone()];
    create.initial_state = vec![
        InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults()).to_raw_any(),
    ];
    let room = alice.create_room(create).await.context("create room")?;
    let dm = alice.create_dm(&bob_id).await.context("create dm")?;
    let bob_room = accept_invite(&bob, &room).await?;
    let bob_dm = accept_invite(&bob, &dm).await?;
    until("the room to be encrypted at bob", deadline, async || {
        bob_room.latest_encryption_state().await.is_ok_and(|s| s.is_encrypted())
    })
    .await?;

    let (alice_tl, bob_tl) = (room.timeline().await?, bob_room.timeline().await?);
    let (alice_dm_tl, bob_dm_tl) = (dm.timeline().await?, bob_dm.timeline().await?);
    send(&alice_tl, "secret one").await?;
    decrypts("bob", &bob_tl, "secret one", deadline).await?;
    send(&bob_tl, "secret two").await?;
    decrypts("alice", &alice_tl, "secret two", deadline).await?;
    send(&alice_dm_tl, "direct secret").await?;
    decrypts("bob in the direct chat", &bob_dm_tl, "direct secret", deadline).await?;
    send(&bob_dm_tl, "direct reply").await?;
    decrypts("alice in the direct chat", &alice_dm_tl, "direct reply", deadline).await?;

    // Bob's second device gets the keys for what is said from now on.
    let (bob2, bob2_sync) = login(url_b, &bob_name, EncryptionSettings::default()).await?;
    let bob2_device = bob2.device_id().context("bob2's device")?.to_owned();
    until("alice to see bob's second device", deadline, async || {
        alice.encryption().get_device(&bob_id, &bob2_device).await.is_ok_and(|d| d.is_some())
    })
    .await?;
    let bob2_room = bob2.get_room(room.room_id());
    until("the room at bob's second device", deadline, async || bob2.get_room(room.room_id()).is_some()).await?;
    let bob2_room = bob2_room.or_else(|| bob2.get_room(room.room_id())).context("bob2's room")?;
    let bob2_tl = bob2_room.timeline().await?;
    send(&alice_tl, "secret three").await?;
    decrypts("bob's second device", &bob2_tl, "secret three", deadline).await?;

    // Bob signs his second device out: alice stops encrypting for it.
    bob2_sync.stop().await;
    bob2.matrix_auth().logout().await.context("logout")?;
    until("alice to forget bob's signed-out device", deadline, async || {
        alice.encryption().get_device(&bob_id, &bob2_device).await.is_ok_and(|d| d.is_none_or(|d| d.is_deleted()))
    })
    .await?;
    send(&alice_tl, "secret four").await?;
    decrypts("bob", &bob_tl, "secret four", deadline).await?;
    let devices = alice.encryption().get_user_devices(&bob_id).await?;
    anyhow::ensure!(
        devices.devices().all(|d| d.device_id() != bob2_device || d.is_deleted()),
        "alice still holds bob's signed-out device"
    );
    let _ = alice_id;

    // Alice's first device goes quiet, so it cannot forward keys: a fresh device of hers
    // restores the backup with the recovery key and reads the history from it.
    alice_sync.stop().await;
    let settings =
        EncryptionSettings { backup_download_strategy: BackupDownloadStrategy::OneShot, ..Default::default() };
    let (alice2, alice2_sync) = login(url_a, &alice_name, settings).await?;
    alice2.encryption().recovery().recover(&recovery_key).await.context("recover")?;
    until("the room at alice's new device", deadline, async || alice2.get_room(room.room_id()).is_some()).await?;
    let alice2_tl = alice2.get_room(room.room_id()).context("alice2's room")?.timeline().await?;
    until("alice's new device to decrypt the history from the backup", deadline, async || {
        let _ = alice2_tl.paginate_backwards(20).await;
        shows(&alice2_tl, "secret one").await && shows(&alice2_tl, "secret two").await
    })
    .await?;

    for sync in [bob_sync, alice2_sync] {
        sync.stop().await;
    }
    Ok(())
}
