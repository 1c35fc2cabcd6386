//! Rooms and membership: `createRoom`, join, invite, leave, forget, kick, ban, unban, knock,
//! `joined_rooms`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::rooms::create::CreateRoom;

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/createRoom", post(create_room))
        .route("/_matrix/client/v3/join/{room}", post(join))
        .route("/_matrix/client/v3/rooms/{room}/join", post(join))
        .route("/_matrix/client/v3/knock/{room}", post(knock))
        .route("/_matrix/client/v3/rooms/{room}/invite", on_target("invite"))
        .route("/_matrix/client/v3/rooms/{room}/leave", post(leave))
        .route("/_matrix/client/v3/rooms/{room}/forget", post(forget))
        .route("/_matrix/client/v3/rooms/{room}/kick", on_target("leave"))
        .route("/_matrix/client/v3/rooms/{room}/ban", on_target("ban"))
        .route("/_matrix/client/v3/rooms/{room}/unban", post(unban))
        .route("/_matrix/client/v3/joined_rooms", get(joined_rooms))
        .route("/_matrix/client/v3/rooms/{room}/upgrade", post(upgrade))
}

async fn create_room(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<CreateRoom>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    // Users of other servers are invited once the room exists, through their servers.
    let remote: Vec<String> =
        body.invite.iter().filter(|u| !u.ends_with(&format!(":{}", api.config.server_name))).cloned().collect();
    let is_direct = body.is_direct;
    let creator = auth.user_id.clone();
    let room_id = blocking(move || hs.create_room(&auth.user_id, body)).await?;
    for target in remote {
        let network = api.hs.network()?;
        if let Err(e) = network.invite(creator.clone(), room_id.clone(), target.clone(), None, is_direct).await {
            // As Synapse does: the room stays created; the invite can be sent again.
            tracing::info!(%room_id, %target, "inviting a user of another server failed: {e}");
        }
    }
    Ok(Json(json!({ "room_id": room_id })))
}

/// A room id, or the room an alias on this server points to.
/// A room id or alias as a room id, with the servers an alias's server suggests joining
/// through. Aliases of other servers are asked of them.
pub(crate) async fn resolve_room_via(api: &Api, room: &str) -> ApiResult<(String, Vec<String>)> {
    if room.starts_with('!') {
        return Ok((room.to_owned(), Vec::new()));
    }
    if !room.starts_with('#') {
        return Err(MatrixError::invalid_param(format!("{room:?} is not a room id or alias")));
    }
    let hs = api.hs.clone();
    let alias = room.to_owned();
    tandem_core::directory::check_alias(&alias)?;
    if !alias.ends_with(&format!(":{}", api.config.server_name)) {
        return Ok(hs.network()?.query_alias(alias).await?);
    }
    let room_id = blocking(move || hs.alias_target(&alias))
        .await?
        .ok_or_else(|| MatrixError::not_found(format!("Room alias {room} not found")))?;
    Ok((room_id, Vec::new()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReasonBody {
    reason: Option<String>,
}

async fn membership(
    api: &Api,
    sender: String,
    room: String,
    target: String,
    membership: &'static str,
    reason: Option<String>,
) -> ApiResult<String> {
    membership_via(api, sender, room, target, membership, reason, Vec::new()).await
}

/// Sets a membership; when this server is not in the room (joins, knocks, leaving a remote
/// invite) or the target is on another server (invites), the federation layer does the
/// handshake.
async fn membership_via(
    api: &Api,
    sender: String,
    room: String,
    target: String,
    membership: &'static str,
    reason: Option<String>,
    via: Vec<String>,
) -> ApiResult<String> {
    let hs = api.hs.clone();
    let r = room.clone();
    let resident = blocking(move || hs.is_resident(&r)).await?;
    let hs = api.hs.clone();
    let local_target = target.ends_with(&format!(":{}", api.config.server_name));
    match membership {
        "join" | "knock" if !resident => {
            hs.network()?.join(sender, room.clone(), via, membership).await?;
            Ok(room)
        }
        "leave" if !resident && sender == target => {
            // Through a server in the room if one answers; otherwise declined here.
            let remote = match hs.network() {
                Ok(network) => network.leave(sender.clone(), room.clone()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = remote {
                tracing::info!(%room, "leaving through another server failed ({e}); declining locally");
                let r = room.clone();
                blocking(move || hs.decline_locally(&sender, &r, reason.as_deref())).await?;
            }
            Ok(room)
        }
        "invite" if resident && !local_target => Ok(hs.network()?.invite(sender, room, target, reason, false).await?),
        _ => blocking(move || hs.set_membership(&sender, &room, &target, membership, reason.as_deref(), None)).await,
    }
}

/// `server_name` (and the older `via`) query parameters: servers to join through.
pub(crate) fn via_servers(query: &Option<String>) -> Vec<String> {
    query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "server_name" || *k == "via")
        .map(|(_, v)| v.replace("%3A", ":").replace("%3a", ":"))
        .collect()
}

async fn join(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<ReasonBody>,
) -> ApiResult<Json<Value>> {
    let (room_id, mut via) = resolve_room_via(&api, &room).await?;
    via.splice(0..0, via_servers(&query));
    let user = auth.user_id.clone();
    membership_via(&api, auth.user_id, room_id.clone(), user, "join", body.reason, via).await?;
    Ok(Json(json!({ "room_id": room_id })))
}

async fn knock(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<ReasonBody>,
) -> ApiResult<Json<Value>> {
    let (room_id, mut via) = resolve_room_via(&api, &room).await?;
    via.splice(0..0, via_servers(&query));
    let user = auth.user_id.clone();
    membership_via(&api, auth.user_id, room_id.clone(), user, "knock", body.reason, via).await?;
    Ok(Json(json!({ "room_id": room_id })))
}

async fn leave(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> ApiResult<Json<Value>> {
    let user = auth.user_id.clone();
    membership(&api, auth.user_id, room, user, "leave", body.reason).await?;
    Ok(ok())
}

/// `invite`, `kick` and `ban`: the caller sets another user's membership.
fn on_target(to: &'static str) -> axum::routing::MethodRouter<Api> {
    post(
        move |State(api): State<Api>, auth: Auth, Path(room): Path<String>, JsonBody(body): JsonBody<TargetBody>| async move {
            membership(&api, auth.user_id, room, body.user_id, to, body.reason).await?;
            Ok::<_, MatrixError>(ok())
        },
    )
}

#[derive(Deserialize)]
struct TargetBody {
    user_id: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn unban(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<TargetBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let (r, t) = (room.clone(), body.user_id.clone());
    if blocking(move || hs.current_membership(&r, &t)).await?.as_deref() != Some("ban") {
        return Err(MatrixError::forbidden("The target user is not banned"));
    }
    membership(&api, auth.user_id, room, body.user_id, "leave", body.reason).await?;
    Ok(ok())
}

async fn forget(State(api): State<Api>, auth: Auth, Path(room): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.forget_room(&auth.user_id, &room)).await?;
    Ok(ok())
}

async fn joined_rooms(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let rooms = blocking(move || hs.joined_rooms(&auth.user_id)).await?;
    Ok(Json(json!({ "joined_rooms": rooms })))
}

#[derive(Deserialize)]
struct UpgradeBody {
    new_version: String,
}

async fn upgrade(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<UpgradeBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let new_room = blocking(move || hs.upgrade_room(&auth.user_id, &room, &body.new_version)).await?;
    Ok(Json(json!({ "replacement_room": new_room })))
}
