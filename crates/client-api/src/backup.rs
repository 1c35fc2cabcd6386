//! Server-side key backup: `/room_keys/version[/{version}]` and `/room_keys/keys[/{roomId}
//! [/{sessionId}]]?version=…`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tandem_core::Homeserver;
use tandem_core::backup::Scope;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/room_keys/version", post(create).get(current))
        .route("/_matrix/client/v3/room_keys/version/{version}", get(version).put(update).delete(delete_version))
        .route("/_matrix/client/v3/room_keys/keys", get(get_all).put(put_all).delete(delete_all))
        .route("/_matrix/client/v3/room_keys/keys/{room}", get(get_room).put(put_room).delete(delete_room))
        .route(
            "/_matrix/client/v3/room_keys/keys/{room}/{session}",
            get(get_session).put(put_session).delete(delete_session),
        )
}

async fn create(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let version = blocking(move || hs.create_backup(&auth.user_id, &body)).await?;
    Ok(Json(json!({ "version": version })))
}

async fn current(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.get_backup(&auth.user_id, None)).await?))
}

async fn version(State(api): State<Api>, auth: Auth, Path(version): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.get_backup(&auth.user_id, Some(&version))).await?))
}

async fn update(
    State(api): State<Api>,
    auth: Auth,
    Path(version): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.update_backup(&auth.user_id, &version, &body)).await?;
    Ok(Json(json!({})))
}

async fn delete_version(State(api): State<Api>, auth: Auth, Path(version): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.delete_backup(&auth.user_id, &version)).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VersionQuery {
    version: Option<String>,
}

impl VersionQuery {
    fn required(self) -> ApiResult<String> {
        self.version.ok_or_else(|| MatrixError::missing_param("The version query parameter is required"))
    }
}

fn object<'a>(v: &'a Value, field: &str) -> ApiResult<&'a Map<String, Value>> {
    v.get(field).and_then(Value::as_object).ok_or_else(|| MatrixError::bad_json(format!("{field} must be an object")))
}

/// Stores `rooms` (room id → `{sessions}`) in the version; `count` and `etag`.
async fn put(api: &Api, user_id: String, version: String, rooms: Map<String, Value>) -> ApiResult<Json<Value>> {
    let mut by_room = Map::new();
    for (room, body) in rooms {
        by_room.insert(room, Value::Object(object(&body, "sessions")?.clone()));
    }
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.put_backup_keys(&user_id, &version, &by_room)).await?))
}

async fn put_all(
    State(api): State<Api>,
    auth: Auth,
    Q(q): Q<VersionQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let rooms = object(&body, "rooms")?.clone();
    put(&api, auth.user_id, q.required()?, rooms).await
}

async fn put_room(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<VersionQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    object(&body, "sessions")?;
    put(&api, auth.user_id, q.required()?, Map::from_iter([(room, body)])).await
}

async fn put_session(
    State(api): State<Api>,
    auth: Auth,
    Path((room, session)): Path<(String, String)>,
    Q(q): Q<VersionQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let rooms = Map::from_iter([(room, json!({ "sessions": { session: body } }))]);
    put(&api, auth.user_id, q.required()?, rooms).await
}

fn scope<'a>(room: &'a Option<String>, session: &'a Option<String>) -> Scope<'a> {
    match (room, session) {
        (Some(r), Some(s)) => Scope::Session(r, s),
        (Some(r), None) => Scope::Room(r),
        _ => Scope::All,
    }
}

type KeysOp = fn(&Homeserver, &str, &str, Scope<'_>) -> tandem_core::Result<Value>;

/// Runs a read or delete of the keys in scope.
async fn on_keys(
    api: &Api,
    user_id: String,
    version: String,
    room: Option<String>,
    session: Option<String>,
    op: KeysOp,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || op(&hs, &user_id, &version, scope(&room, &session))).await?))
}

async fn get_all(State(api): State<Api>, auth: Auth, Q(q): Q<VersionQuery>) -> ApiResult<Json<Value>> {
    on_keys(&api, auth.user_id, q.required()?, None, None, Homeserver::get_backup_keys).await
}

async fn get_room(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<VersionQuery>,
) -> ApiResult<Json<Value>> {
    on_keys(&api, auth.user_id, q.required()?, Some(room), None, Homeserver::get_backup_keys).await
}

async fn get_session(
    State(api): State<Api>,
    auth: Auth,
    Path((room, session)): Path<(String, String)>,
    Q(q): Q<VersionQuery>,
) -> ApiResult<Json<Value>> {
    on_keys(&api, auth.user_id, q.required()?, Some(room), Some(session), Homeserver::get_backup_keys).await
}

async fn delete_all(State(api): State<Api>, auth: Auth, Q(q): Q<VersionQuery>) -> ApiResult<Json<Value>> {
    on_keys(&api, auth.user_id, q.required()?, None, None, Homeserver::delete_backup_keys).await
}

async fn delete_room(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<VersionQuery>,
) -> ApiResult<Json<Value>> {
    on_keys(&api, auth.user_id, q.required()?, Some(room), None, Homeserver::delete_backup_keys).await
}

async fn delete_session(
    State(api): State<Api>,
    auth: Auth,
    Path((room, session)): Path<(String, String)>,
    Q(q): Q<VersionQuery>,
) -> ApiResult<Json<Value>> {
    on_keys(&api, auth.user_id, q.required()?, Some(room), Some(session), Homeserver::delete_backup_keys).await
}
