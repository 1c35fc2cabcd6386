//! Rooms and membership: `createRoom`, join, invite, leave, forget, kick, ban, unban, knock,
//! `joined_rooms`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::rooms::create::CreateRoom;

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, blocking, query_pairs};
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
        .route("/_matrix/client/v1/mutual_rooms", get(mutual_rooms))
        .route("/_matrix/client/v3/rooms/{room}/upgrade", post(upgrade))
}

async fn create_room(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<CreateRoom>,
) -> ApiResult<Json<Value>> {
    let room_id = api.hs.create_room_inviting(&auth.user_id, body).await?;
    Ok(Json(json!({ "room_id": room_id })))
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
    Ok(api.hs.change_membership(&sender, &room, &target, membership, reason, Vec::new()).await?)
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
    let (room_id, mut via) = api.hs.resolve_room(&room).await?;
    via.splice(0..0, via_servers(&query));
    api.hs.change_membership(&auth.user_id, &room_id, &auth.user_id, "join", body.reason, via).await?;
    Ok(Json(json!({ "room_id": room_id })))
}

async fn knock(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody<ReasonBody>,
) -> ApiResult<Json<Value>> {
    let (room_id, mut via) = api.hs.resolve_room(&room).await?;
    via.splice(0..0, via_servers(&query));
    api.hs.change_membership(&auth.user_id, &room_id, &auth.user_id, "knock", body.reason, via).await?;
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

/// How many rooms one page of `/mutual_rooms` lists.
const MUTUAL_ROOMS_PAGE: usize = 100;

async fn mutual_rooms(State(api): State<Api>, auth: Auth, RawQuery(query): RawQuery) -> ApiResult<Json<Value>> {
    let values = |name: &str| -> Vec<String> {
        query_pairs(query.as_deref().unwrap_or_default()).filter(|(k, _)| k == name).map(|(_, v)| v).collect()
    };
    let users = values("user_id");
    let [other] = users.as_slice() else {
        return Err(match users.len() {
            0 => MatrixError::missing_param("user_id is required"),
            _ => MatrixError::invalid_param("Duplicate user_id query parameter"),
        });
    };
    if !tandem_core::accounts::is_valid_user_id(other) {
        return Err(MatrixError::invalid_param("Invalid user_id query parameter"));
    }
    if *other == auth.user_id {
        return Err(MatrixError::invalid_param("You cannot request a list of shared rooms with yourself"));
    }
    let from = match values("from").as_slice() {
        [] => None,
        [token] => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| MatrixError::invalid_param("Malformed from token"))?,
        ),
        _ => return Err(MatrixError::invalid_param("Duplicate from query parameter")),
    };
    let hs = api.hs.clone();
    let (me, other) = (auth.user_id.clone(), other.clone());
    let rooms = blocking(move || hs.mutual_rooms(&me, &other)).await?;
    let count = rooms.len();
    let after: Vec<String> = rooms.into_iter().filter(|r| from.as_ref().is_none_or(|f| r > f)).collect();
    let mut out = json!({ "count": count });
    if after.len() > MUTUAL_ROOMS_PAGE {
        let page = &after[..MUTUAL_ROOMS_PAGE];
        out["next_batch"] =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(page[page.len() - 1].as_bytes()).into();
        out["joined"] = json!(page);
    } else {
        out["joined"] = json!(after);
    }
    Ok(Json(out))
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
