//! What one user does to messages and the other sees through sliding sync: a thread reply, a
//! reaction added and taken back, an edit, a redaction and a pinned event. Besides the live
//! view, which the SDK partly assembles itself, the server's own account is checked: an event
//! fetched on its own (as the SDK does for pinned events and replies) carries its bundled thread
//! summary or edit, or comes redacted, and a device signed in afterwards reads the edit, the
//! redaction and the thread from the room's history.

use anyhow::{Context, Result, ensure};
use matrix_sdk::encryption::EncryptionSettings;
use matrix_sdk::room::edit::EditedContent;
use matrix_sdk::ruma::events::SyncMessageLikeEvent;
use matrix_sdk::ruma::events::room::message::{
    RoomMessageEventContent, RoomMessageEventContentWithoutRelation, SyncRoomMessageEvent,
};
use matrix_sdk::ruma::{EventId, OwnedEventId, RoomId};
use matrix_sdk::{Room, RoomState};
use matrix_sdk_ui::timeline::{EventTimelineItem, RoomExt, Timeline, TimelineFocus};

use crate::account::{login, user};
use crate::support::{accept_invite, create_room, find, sees, send, soon, unique, until};

/// The item of `event_id` in `timeline`, if it is there.
pub(crate) async fn item(timeline: &Timeline, event_id: &EventId) -> Option<EventTimelineItem> {
    timeline.item_by_event_id(event_id).await
}

/// The message `id` as the server serves it on its own (`GET /rooms/{room}/event/{id}`).
async fn fetched(room: &Room, id: &EventId) -> Option<SyncRoomMessageEvent> {
    let event = room.event(id, None).await.ok()?;
    event.raw().deserialize_as_unchecked::<SyncRoomMessageEvent>().ok()
}

/// The body of the message `id` in `timeline`, and whether it shows as edited.
async fn body(timeline: &Timeline, id: &EventId) -> Option<(String, bool)> {
    let message = item(timeline, id).await?.content().as_message()?.clone();
    Some((message.body().to_owned(), message.is_edited()))
}

/// A timeline focused on the thread under `root`.
async fn thread(room: &Room, root: &EventId) -> Result<Timeline> {
    let focus = TimelineFocus::Thread { root_event_id: root.to_owned() };
    Ok(room.timeline_builder().with_focus(focus).build().await?)
}

/// Bob replies in a thread alice started: alice sees the reply as part of that thread in her
/// main timeline, in the thread's own timeline (paginated from the server) and in the room's
/// list of threads, with a reply counted.
async fn threads(alice_room: &Room, alice_tl: &Timeline, bob_room: &Room, bob_tl: &Timeline) -> Result<OwnedEventId> {
    let root = send(alice_tl, "thread root").await?;
    sees("bob", bob_tl, "thread root").await?;
    let bob_thread = thread(bob_room, &root).await?;
    bob_thread.send(RoomMessageEventContent::text_plain("thread reply").into()).await.context("reply in thread")?;

    until("the reply in alice's timeline as part of the thread", soon(), async || {
        find(alice_tl, "thread reply").await.is_some_and(|i| i.content().thread_root().as_deref() == Some(&*root))
    })
    .await?;
    let alice_thread = thread(alice_room, &root).await?;
    until("the reply in alice's thread timeline", soon(), async || {
        let _ = alice_thread.paginate_backwards(20).await;
        find(&alice_thread, "thread reply").await.is_some()
    })
    .await?;
    let threads = alice_room.thread_list_service();
    until("the thread in the room's thread list", soon(), async || {
        threads.reset().await;
        threads.paginate().await.is_ok()
            && threads.items().iter().any(|t| t.root_event.event_id == root && t.num_replies >= 1)
    })
    .await?;
    until("the root fetched from the server to carry its thread summary", soon(), async || {
        matches!(fetched(alice_room, &root).await, Some(SyncMessageLikeEvent::Original(e))
            if e.unsigned.relations.thread.as_ref().is_some_and(|t| u64::from(t.count) >= 1))
    })
    .await?;
    Ok(root)
}

/// Bob reacts to a message and takes the reaction back; alice sees both.
async fn reactions(alice_tl: &Timeline, bob_tl: &Timeline) -> Result<()> {
    let target = send(alice_tl, "react to me").await?;
    sees("bob", bob_tl, "react to me").await?;
    let bob_id = bob_tl.room().own_user_id().to_owned();
    let handle = item(bob_tl, &target).await.context("bob's item")?.identifier();
    ensure!(bob_tl.toggle_reaction(&handle, "👍").await?, "the reaction was removed, not added");
    let reacted = async |present: bool| {
        item(alice_tl, &target).await.is_some_and(|i| {
            let has = i.content().reactions().and_then(|r| r.get("👍")).is_some_and(|by| by.contains_key(&bob_id));
            has == present
        })
    };
    until("alice to see bob's reaction", soon(), async || reacted(true).await).await?;
    ensure!(!bob_tl.toggle_reaction(&handle, "👍").await?, "the reaction was added again, not removed");
    until("alice to see bob's reaction taken back", soon(), async || reacted(false).await).await
}

/// Alice edits a message; bob sees the new text, marked as edited.
async fn edits(alice_tl: &Timeline, bob_tl: &Timeline) -> Result<OwnedEventId> {
    let target = send(alice_tl, "before the edit").await?;
    sees("bob", bob_tl, "before the edit").await?;
    let handle = item(alice_tl, &target).await.context("alice's item")?.identifier();
    let new = EditedContent::RoomMessage(RoomMessageEventContentWithoutRelation::text_plain("after the edit"));
    alice_tl.edit(&handle, new).await.context("edit")?;
    until("bob to see the edited text", soon(), async || {
        body(bob_tl, &target).await.is_some_and(|(text, edited)| text == "after the edit" && edited)
    })
    .await?;
    until("the original fetched from the server to carry the edit", soon(), async || {
        matches!(fetched(bob_tl.room(), &target).await, Some(SyncMessageLikeEvent::Original(e))
            if e.unsigned.relations.replace.as_ref().is_some_and(|r| r.content.body().contains("after the edit")))
    })
    .await?;
    Ok(target)
}

/// Alice redacts a message; bob sees it redacted.
async fn redactions(alice_tl: &Timeline, bob_tl: &Timeline) -> Result<OwnedEventId> {
    let target = send(alice_tl, "soon redacted").await?;
    sees("bob", bob_tl, "soon redacted").await?;
    let handle = item(alice_tl, &target).await.context("alice's item")?.identifier();
    alice_tl.redact(&handle, Some("testing redactions")).await.context("redact")?;
    until("bob to see the message redacted", soon(), async || {
        item(bob_tl, &target).await.is_some_and(|i| i.content().is_redacted())
    })
    .await?;
    until("the server to serve the message redacted", soon(), async || {
        matches!(fetched(bob_tl.room(), &target).await, Some(SyncMessageLikeEvent::Redacted(_)))
    })
    .await?;
    Ok(target)
}

/// A device alice signs in afterwards has none of this cached: paginating the room's history
/// from the server, it shows the edit applied, the message redacted and the thread's reply
/// counted on its root.
async fn history(
    url: &str,
    alice: &str,
    room_id: &RoomId,
    root: &EventId,
    edited: &EventId,
    redacted: &EventId,
) -> Result<()> {
    let (client, sync) = login(url, alice, EncryptionSettings::default()).await?;
    until("the room at alice's new device", soon(), async || {
        client.get_room(room_id).is_some_and(|r| r.state() == RoomState::Joined)
    })
    .await?;
    let timeline = client.get_room(room_id).context("the room")?.timeline().await?;
    // Each check pages further back until it holds, loading history from the server.
    until("the edit in the new device's history", soon(), async || {
        let _ = timeline.paginate_backwards(20).await;
        body(&timeline, edited).await.is_some_and(|(text, edited)| text == "after the edit" && edited)
    })
    .await?;
    until("the redaction in the new device's history", soon(), async || {
        let _ = timeline.paginate_backwards(20).await;
        item(&timeline, redacted).await.is_some_and(|i| i.content().is_redacted())
    })
    .await?;
    until("the thread summary in the new device's history", soon(), async || {
        let _ = timeline.paginate_backwards(20).await;
        item(&timeline, root).await.and_then(|i| i.content().thread_summary()).is_some_and(|t| t.num_replies >= 1)
    })
    .await?;
    sync.stop().await;
    Ok(())
}

/// Alice pins a message; bob, who has the room open (a sliding sync room subscription, which
/// is what carries the pinned events state), sees it pinned and in the pinned timeline.
async fn pins(alice_room: &Room, alice_tl: &Timeline, bob_room: &Room, bob_tl: &Timeline) -> Result<OwnedEventId> {
    let target = send(alice_tl, "pin me").await?;
    sees("bob", bob_tl, "pin me").await?;
    ensure!(alice_room.pin_event(&target).await.context("pin")?, "the event was already pinned");
    until("bob to see the event pinned", soon(), async || {
        bob_room.pinned_event_ids().is_some_and(|ids| ids.contains(&target))
    })
    .await?;
    let pinned = bob_room.timeline_builder().with_focus(TimelineFocus::PinnedEvents).build().await?;
    sees("bob's pinned events timeline", &pinned, "pin me").await?;
    Ok(target)
}

pub async fn run(url: &str) -> Result<()> {
    let alice_name = unique("xalice");
    let (alice, alice_sync) = user(url, &alice_name).await?;
    let (bob, bob_sync) = user(url, &unique("xbob")).await?;
    let room = create_room(&alice, "messages room", &bob).await?;
    let bob_room = accept_invite(&bob, &room).await?;
    // Both have the room open, as the app does while its timeline is on screen.
    for sync in [&alice_sync, &bob_sync] {
        sync.room_list_service().subscribe_to_rooms(&[room.room_id()]).await;
    }
    let (alice_tl, bob_tl) = (room.timeline().await?, bob_room.timeline().await?);

    let root = threads(&room, &alice_tl, &bob_room, &bob_tl).await.context("threads")?;
    reactions(&alice_tl, &bob_tl).await.context("reactions")?;
    let edited = edits(&alice_tl, &bob_tl).await.context("edits")?;
    let redacted = redactions(&alice_tl, &bob_tl).await.context("redactions")?;
    let pinned = pins(&room, &alice_tl, &bob_room, &bob_tl).await.context("pinned events")?;

    // Unpinning travels the same way.
    ensure!(room.unpin_event(&pinned).await.context("unpin")?, "the event was not pinned");
    until("bob to see the event unpinned", soon(), async || {
        bob_room.pinned_event_ids().is_none_or(|ids| !ids.contains(&pinned))
    })
    .await?;

    history(url, &alice_name, room.room_id(), &root, &edited, &redacted).await.context("history")?;

    alice_sync.stop().await;
    bob_sync.stop().await;
    Ok(())
}
