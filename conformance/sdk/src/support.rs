//! What every scenario needs: waiting on a condition with a deadline, unique names, joining a
//! room one was invited to, and finding messages in a timeline.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoomRequest;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::{Client, Room, RoomState};
use matrix_sdk_ui::timeline::{EventTimelineItem, Timeline};

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

/// The deadline for one step: generous, because the servers share a small machine with builds,
/// yet short enough that a step that never happens fails the run in reasonable time.
pub(crate) fn soon() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// `prefix` made unique per run, so that runs against one long-lived server do not collide.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}{}", nanos % 1_000_000_000)
}

/// Creates a named room with `invite` invited.
pub(crate) async fn create_room(creator: &Client, name: &str, invite: &Client) -> Result<Room> {
    let mut create = CreateRoomRequest::new();
    create.name = Some(name.into());
    create.invite = vec![invite.user_id().context("invitee's id")?.to_owned()];
    creator.create_room(create).await.with_context(|| format!("create {name:?}"))
}

/// Waits for the invite to `room_id` through sync, accepts it, and waits for the join.
pub(crate) async fn accept_invite(client: &Client, room: &Room) -> Result<Room> {
    let id = room.room_id().to_owned();
    until("the invite", soon(), async || client.get_room(&id).is_some_and(|r| r.state() == RoomState::Invited)).await?;
    let theirs = client.get_room(&id).context("the invited room")?;
    theirs.join().await.context("join")?;
    until("the join", soon(), async || theirs.state() == RoomState::Joined).await?;
    Ok(theirs)
}

/// The last event item whose message body is `body`.
pub(crate) async fn find(timeline: &Timeline, body: &str) -> Option<EventTimelineItem> {
    timeline.items().await.iter().rev().find_map(|item| {
        let event = item.as_event()?;
        (event.content().as_message()?.body() == body).then(|| event.clone())
    })
}

/// Whether a timeline shows a message with `body`.
pub(crate) async fn shows(timeline: &Timeline, body: &str) -> bool {
    find(timeline, body).await.is_some()
}

/// Sends a text message and waits for the server to acknowledge it, returning its event id.
pub(crate) async fn send(timeline: &Timeline, body: &str) -> Result<OwnedEventId> {
    timeline.send(RoomMessageEventContent::text_plain(body).into()).await.context("send")?;
    let mut id = None;
    until(&format!("the remote echo of {body:?}"), soon(), async || {
        id = find(timeline, body).await.and_then(|item| item.event_id().map(ToOwned::to_owned));
        id.is_some()
    })
    .await?;
    id.context("the sent event's id")
}

/// Waits until `timeline` shows the message `body`.
pub(crate) async fn sees(who: &str, timeline: &Timeline, body: &str) -> Result<()> {
    until(&format!("{who} to see {body:?}"), soon(), async || shows(timeline, body).await).await
}
