//! Membership as the room list shows it: an invite declined (which the SDK also forgets), a
//! second invite to the same room accepted, the room left and forgotten. Each change must reach
//! the other side through sliding sync, the inviter included (who needs the invitee's member
//! event among the lazily loaded members to show the invite), and a forgotten room must stay
//! out of the room list, both for the device that forgot it and for one that signs in after.

use anyhow::{Context, Result, ensure};
use matrix_sdk::encryption::EncryptionSettings;
use matrix_sdk::ruma::UserId;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::{Client, Room, RoomState};
use matrix_sdk_ui::timeline::RoomExt;

use crate::account::{login, user};
use crate::support::{accept_invite, create_room, sees, send, soon, unique, until};

/// Waits until `client` holds `room` in `state`.
async fn reaches(client: &Client, room: &Room, state: RoomState, what: &str) -> Result<()> {
    let id = room.room_id().to_owned();
    let reached = until(what, soon(), async || client.get_room(&id).is_some_and(|r| r.state() == state)).await;
    // Say what the client holds instead, which tells a lost update from a wrong one.
    reached.with_context(|| format!("the room is {:?}", client.get_room(&id).map(|r| r.state())))
}

/// Waits until alice's `room` shows bob (`user`) with `membership` and counts `joined` joined
/// and `invited` invited members. The SDK takes members from `required_state` alone (the state
/// after the timeline), so the server must include the member event of the target of a
/// membership change in the timeline, not only of its sender.
async fn shows(room: &Room, user: &UserId, membership: MembershipState, joined: u64, invited: u64) -> Result<()> {
    let what = format!("alice to see bob's membership become {membership} with {joined} joined, {invited} invited");
    let seen = until(&what, soon(), async || {
        let member = room.get_member_no_sync(user).await.ok().flatten();
        member.is_some_and(|m| *m.membership() == membership)
            && room.joined_members_count() == joined
            && room.invited_members_count() == invited
    })
    .await;
    let member = room.get_member_no_sync(user).await.ok().flatten().map(|m| m.membership().clone());
    seen.with_context(|| {
        format!(
            "alice sees bob as {member:?}, {} joined, {} invited",
            room.joined_members_count(),
            room.invited_members_count()
        )
    })
}

pub async fn run(url: &str) -> Result<()> {
    let bob_name = unique("mbob");
    let (alice, alice_sync) = user(url, &unique("malice")).await?;
    let (bob, bob_sync) = user(url, &bob_name).await?;
    let bob_id = bob.user_id().context("bob's id")?.to_owned();

    // A room bob stays in: proof that his sync goes on after he forgets the other one, and
    // something for a fresh device to list.
    let kept = create_room(&alice, "kept room", &bob).await?;
    let bob_kept = accept_invite(&bob, &kept).await?;

    // Invited, bob declines: the invite leaves his room list, and alice sees him leave.
    let room = create_room(&alice, "membership room", &bob).await?;
    let id = room.room_id().to_owned();
    reaches(&bob, &room, RoomState::Invited, "bob's invite").await?;
    shows(&room, &bob_id, MembershipState::Invite, 1, 1).await?;
    let bob_room = bob.get_room(&id).context("bob's invited room")?;
    bob_room.leave().await.context("decline the invite")?;
    // The SDK forgets a declined invite right away, so the room is gone or, if a sync brought
    // the leave back after that, left.
    until("bob's declined invite to go", soon(), async || {
        bob.get_room(&id).is_none_or(|r| r.state() == RoomState::Left)
    })
    .await?;
    shows(&room, &bob_id, MembershipState::Leave, 1, 0).await?;

    // Invited again to the same room, bob accepts this time; alice sees two members.
    room.invite_user_by_id(&bob_id).await.context("re-invite")?;
    reaches(&bob, &room, RoomState::Invited, "the second invite to reach bob through sliding sync").await?;
    shows(&room, &bob_id, MembershipState::Invite, 1, 1).await?;
    bob.get_room(&id).context("bob's re-invited room")?.join().await.context("accept the second invite")?;
    reaches(&bob, &room, RoomState::Joined, "bob's join").await?;
    shows(&room, &bob_id, MembershipState::Join, 2, 0).await?;
    let (alice_tl, bob_tl) = (room.timeline().await?, bob.get_room(&id).context("bob's room")?.timeline().await?);
    send(&alice_tl, "welcome back").await?;
    sees("bob", &bob_tl, "welcome back").await?;
    drop(bob_tl);

    // Bob leaves and forgets: the room drops out of his room list and alice's member count.
    let bob_room = bob.get_room(&id).context("bob's joined room")?;
    bob_room.leave().await.context("leave")?;
    reaches(&bob, &room, RoomState::Left, "bob's leave").await?;
    shows(&room, &bob_id, MembershipState::Leave, 1, 0).await?;
    bob_room.forget().await.context("forget")?;
    until("the forgotten room to leave bob's room list", soon(), async || bob.get_room(&id).is_none()).await?;

    // Later syncs must not bring it back: once a newer message in the kept room has arrived,
    // the forgotten room is still absent.
    let kept_tl = bob_kept.timeline().await?;
    send(&room.timeline().await?, "said after bob forgot").await?;
    send(&kept.timeline().await?, "after the forget").await?;
    sees("bob", &kept_tl, "after the forget").await?;
    ensure!(bob.get_room(&id).is_none(), "the forgotten room came back to bob's room list");
    ensure!(!bob.rooms().iter().any(|r| r.room_id() == id), "the forgotten room is among bob's rooms");

    // A device bob signs in afterwards starts a fresh sliding sync connection: it lists the
    // kept room and not the forgotten one.
    let (bob2, bob2_sync) = login(url, &bob_name, EncryptionSettings::default()).await?;
    let kept_id = kept.room_id().to_owned();
    until("bob's new device to list the kept room", soon(), async || {
        bob2.get_room(&kept_id).is_some_and(|r| r.state() == RoomState::Joined)
    })
    .await?;
    ensure!(bob2.get_room(&id).is_none(), "a fresh sliding sync connection lists the forgotten room");

    for sync in [alice_sync, bob_sync, bob2_sync] {
        sync.stop().await;
    }
    Ok(())
}
