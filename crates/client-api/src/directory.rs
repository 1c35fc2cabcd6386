//! Room aliases, the public room directory and the user directory.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/directory/room/{alias}", get(resolve).put(create).delete(delete))
        .route("/_matrix/client/v3/rooms/{room}/aliases", get(room_aliases))
        .route("/_matrix/client/v3/directory/list/room/{room}", get(visibility).put(set_visibility))
        .route("/_matrix/client/v3/publicRooms", get(public_rooms).post(search_public_rooms))
        .route("/_matrix/client/v3/user_directory/search", post(search_users))
}

async fn resolve(State(api): State<Api>, Path(alias): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let a = alias.clone();
    let room_id = blocking(move || {
        tandem_core::directory::check_alias(&a)?;
        hs.alias_target(&a)
    })
    .await?
    .ok_or_else(|| MatrixError::not_found(format!("Room alias {alias} not found")))?;
    Ok(Json(json!({ "room_id": room_id, "servers": [api.config.server_name] })))
}

#[derive(Deserialize)]
struct CreateAlias {
    room_id: String,
}

async fn create(
    State(api): State<Api>,
    auth: Auth,
    Path(alias): Path<String>,
    JsonBody(body): JsonBody<CreateAlias>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.create_alias(&auth.user_id, &alias, &body.room_id)).await?;
    Ok(ok())
}

async fn delete(State(api): State<Api>, auth: Auth, Path(alias): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.delete_alias(&auth.user_id, &alias)).await?;
    Ok(ok())
}

async fn room_aliases(State(api): State<Api>, auth: Auth, Path(room): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let aliases = blocking(move || {
        hs.room_access(&auth.user_id, &room)?;
        hs.room_aliases(&room)
    })
    .await?;
    Ok(Json(json!({ "aliases": aliases })))
}

async fn visibility(State(api): State<Api>, Path(room): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let v = blocking(move || hs.room_visibility(&room)).await?;
    Ok(Json(json!({ "visibility": v })))
}

#[derive(Deserialize)]
struct VisibilityBody {
    visibility: String,
}

async fn set_visibility(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<VisibilityBody>,
) -> ApiResult<Json<Value>> {
    let public = match body.visibility.as_str() {
        "public" => true,
        "private" => false,
        other => return Err(MatrixError::invalid_param(format!("Unknown visibility {other:?}"))),
    };
    let hs = api.hs.clone();
    blocking(move || hs.set_room_visibility(&auth.user_id, &room, public)).await?;
    Ok(ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PublicRoomsQuery {
    limit: Option<usize>,
    since: Option<String>,
    server: Option<String>,
}

async fn public_rooms(State(api): State<Api>, Q(q): Q<PublicRoomsQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(api.hs.public_rooms_of(q.server, q.limit, q.since, None).await?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PublicRoomsBody {
    limit: Option<usize>,
    since: Option<String>,
    filter: Option<Value>,
}

async fn search_public_rooms(
    State(api): State<Api>,
    _auth: Auth,
    Q(q): Q<PublicRoomsQuery>,
    JsonBody(body): JsonBody<PublicRoomsBody>,
) -> ApiResult<Json<Value>> {
    let term =
        body.filter.as_ref().and_then(|f| f.get("generic_search_term")).and_then(Value::as_str).map(str::to_owned);
    Ok(Json(api.hs.public_rooms_of(q.server, body.limit, body.since, term).await?))
}

#[derive(Deserialize)]
struct UserSearch {
    search_term: String,
    #[serde(default)]
    limit: Option<usize>,
}

async fn search_users(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<UserSearch>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.search_users(&auth.user_id, &body.search_term, body.limit.unwrap_or(10))).await?))
}
