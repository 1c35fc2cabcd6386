//! A public room's address and how outsiders see the room: an alias published and made the
//! canonical one, resolved by another user, the room found in the directory and previewed by
//! someone who never joined it (Element X's room preview: the room summary endpoint first,
//! then the room's state, which a world-readable room shows to anyone), and finally the alias
//! deleted, which the canonical alias must follow.

use anyhow::{Context, Result, ensure};
use matrix_sdk::room_preview::RoomPreview;
use matrix_sdk::ruma::api::client::directory::get_public_rooms_filtered::v3::Request as PublicRoomsRequest;
use matrix_sdk::ruma::api::client::room::Visibility;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoomRequest, RoomPreset};
use matrix_sdk::ruma::directory::Filter;
use matrix_sdk::ruma::events::InitialStateEvent;
use matrix_sdk::ruma::events::room::history_visibility::{HistoryVisibility, RoomHistoryVisibilityEventContent};
use matrix_sdk::ruma::room::JoinRuleSummary;
use matrix_sdk::ruma::{OwnedRoomAliasId, RoomAliasId, RoomId, RoomOrAliasId};

use crate::account::user;
use crate::support::{soon, unique, until};

/// What every way of previewing the room must agree on.
fn check_preview(how: &str, preview: &RoomPreview, room_id: &RoomId, name: &str, alias: &RoomAliasId) -> Result<()> {
    ensure!(preview.room_id == room_id, "{how}: previewed {} instead of {room_id}", preview.room_id);
    ensure!(preview.name.as_deref() == Some(name), "{how}: name {:?}", preview.name);
    ensure!(preview.topic.as_deref() == Some("a room to look at"), "{how}: topic {:?}", preview.topic);
    ensure!(preview.canonical_alias.as_deref() == Some(alias), "{how}: canonical alias {:?}", preview.canonical_alias);
    ensure!(preview.is_world_readable == Some(true), "{how}: world readable {:?}", preview.is_world_readable);
    ensure!(matches!(preview.join_rule, Some(JoinRuleSummary::Public)), "{how}: join rule {:?}", preview.join_rule);
    ensure!(preview.num_joined_members == 1, "{how}: {} joined members", preview.num_joined_members);
    Ok(())
}

pub async fn run(url: &str) -> Result<()> {
    let (alice, alice_sync) = user(url, &unique("dalice")).await?;
    let (bob, bob_sync) = user(url, &unique("dbob")).await?;
    let server = alice.user_id().context("alice's id")?.server_name().to_owned();

    // A public, world-readable room, listed in the directory.
    let name = unique("directory room ");
    let mut create = CreateRoomRequest::new();
    create.name = Some(name.clone());
    create.topic = Some("a room to look at".into());
    create.preset = Some(RoomPreset::PublicChat);
    create.visibility = Visibility::Public;
    create.initial_state = vec![
        InitialStateEvent::with_empty_state_key(RoomHistoryVisibilityEventContent::new(
            HistoryVisibility::WorldReadable,
        ))
        .to_raw_any(),
    ];
    let room = alice.create_room(create).await.context("create the public room")?;
    let room_id = room.room_id().to_owned();

    // Publish an address, the way the room settings screen does: check it is free, create it,
    // make it the canonical alias.
    let alias: OwnedRoomAliasId = format!("#{}:{server}", unique("sdkalias")).try_into()?;
    let settings = room.privacy_settings();
    ensure!(alice.is_room_alias_available(&alias).await?, "a fresh alias is reported taken");
    ensure!(settings.publish_room_alias_in_room_directory(&alias).await?, "the alias was not published");
    ensure!(!alice.is_room_alias_available(&alias).await?, "a published alias is reported free");
    settings.update_canonical_alias(Some(alias.clone()), vec![]).await.context("set the canonical alias")?;
    until("alice's room to show the canonical alias", soon(), async || {
        room.canonical_alias().as_deref() == Some(alias.as_ref())
    })
    .await?;
    ensure!(settings.get_room_visibility().await? == Visibility::Public, "the room is not in the directory");

    // Bob, who is in no room, resolves the alias...
    let resolved = bob.resolve_room_alias(&alias).await.context("resolve the alias")?;
    ensure!(resolved.room_id == room_id, "the alias resolves to {}", resolved.room_id);
    ensure!(resolved.servers.contains(&server), "the alias names servers {:?}", resolved.servers);

    // ...finds the room in the directory...
    let mut search = PublicRoomsRequest::new();
    let mut filter = Filter::new();
    filter.generic_search_term = Some(name.clone());
    search.filter = filter;
    let found = bob.public_rooms_filtered(search).await.context("search the directory")?;
    let entry = found.chunk.iter().find(|r| r.room_id == room_id).context("the room is not in the directory")?;
    ensure!(entry.canonical_alias.as_deref() == Some(alias.as_ref()), "directory alias {:?}", entry.canonical_alias);
    ensure!(entry.world_readable, "the directory does not show the room as world readable");

    // ...and previews it: through the SDK's entry point by alias, then through each way it
    // has, so that a server lacking one is not hidden by the fallback to the other.
    let preview = bob.get_room_preview(<&RoomOrAliasId>::from(&*alias), vec![]).await.context("preview by alias")?;
    check_preview("the room preview", &preview, &room_id, &name, &alias)?;
    ensure!(preview.state.is_none(), "the preview claims bob has a membership: {:?}", preview.state);
    let summary = RoomPreview::from_room_summary(&bob, room_id.clone(), <&RoomOrAliasId>::from(&*room_id), vec![])
        .await
        .context("preview through the room summary endpoint")?;
    check_preview("the room summary", &summary, &room_id, &name, &alias)?;
    let from_state = RoomPreview::from_state_events(&bob, &room_id)
        .await
        .context("preview through the state of a world-readable room")?;
    check_preview("the room's state", &from_state, &room_id, &name, &alias)?;

    // Deleting the alias frees it, and the canonical alias no longer names it, both in the
    // summary a newcomer sees and in alice's synced room.
    ensure!(settings.remove_room_alias_from_room_directory(&alias).await?, "the alias was not there to remove");
    ensure!(alice.is_room_alias_available(&alias).await?, "a deleted alias is still taken");
    until("alice's room to drop the deleted canonical alias", soon(), async || {
        room.canonical_alias().as_deref() != Some(alias.as_ref())
    })
    .await?;
    let after =
        RoomPreview::from_room_summary(&bob, room_id.clone(), <&RoomOrAliasId>::from(&*room_id), vec![]).await?;
    ensure!(
        after.canonical_alias.as_deref() != Some(alias.as_ref()),
        "the summary still names the deleted alias as canonical"
    );

    alice_sync.stop().await;
    bob_sync.stop().await;
    Ok(())
}
