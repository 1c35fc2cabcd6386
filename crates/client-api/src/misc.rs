//! The smaller per-user and per-room streams: typing, receipts, read markers, presence,
//! account data, tags, filters; and `/capabilities`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/capabilities", get(capabilities))
        .route("/_matrix/client/v3/account/3pid", get(threepids))
        .route("/_matrix/client/v3/thirdparty/protocols", get(protocols))
        .route("/_matrix/client/v3/thirdparty/protocol/{protocol}", get(protocol))
        .route("/_matrix/client/v3/thirdparty/location", get(no_entities))
        .route("/_matrix/client/v3/thirdparty/location/{protocol}", get(no_entities))
        .route("/_matrix/client/v3/thirdparty/user", get(no_entities))
        .route("/_matrix/client/v3/thirdparty/user/{protocol}", get(no_entities))
        .route("/_matrix/client/v3/rooms/{room}/typing/{user}", put(typing))
        .route("/_matrix/client/v3/rooms/{room}/receipt/{kind}/{event}", post(receipt))
        .route("/_matrix/client/v3/rooms/{room}/read_markers", post(read_markers))
        .route("/_matrix/client/v3/presence/{user}/status", get(get_presence).put(set_presence))
        .route("/_matrix/client/v3/user/{user}/account_data/{kind}", get(get_global).put(put_global))
        .route("/_matrix/client/v3/user/{user}/rooms/{room}/account_data/{kind}", get(get_room_data).put(put_room_data))
        .route("/_matrix/client/v3/user/{user}/rooms/{room}/tags", get(get_tags))
        .route("/_matrix/client/v3/user/{user}/rooms/{room}/tags/{tag}", put(put_tag).delete(delete_tag))
        .route("/_matrix/client/v3/user/{user}/filter", post(create_filter))
        .route("/_matrix/client/v3/user/{user}/filter/{id}", get(get_filter))
}

async fn capabilities() -> Json<Value> {
    let versions: serde_json::Map<String, Value> =
        tandem_core::rooms::SUPPORTED_VERSIONS.iter().map(|v| (v.to_string(), "stable".into())).collect();
    Json(json!({ "capabilities": {
        "m.change_password": { "enabled": true },
        "m.room_versions": { "default": tandem_core::rooms::DEFAULT_VERSION, "available": versions },
        "m.set_displayname": { "enabled": true },
        "m.set_avatar_url": { "enabled": true },
        "m.3pid_changes": { "enabled": false },
        "m.get_login_token": { "enabled": false },
    }}))
}

/// No third-party identifiers: this server does not bind emails or phone numbers.
async fn threepids(_auth: Auth) -> Json<Value> {
    Json(json!({ "threepids": [] }))
}

/// No application-service bridges yet, so no third-party protocols.
/// Third-party networks are bridged by application services; this server has none, so it
/// knows no protocol and finds no user or location on any.
async fn protocols(_auth: Auth) -> Json<Value> {
    Json(json!({}))
}

async fn protocol(_auth: Auth) -> ApiResult<Json<Value>> {
    Err(MatrixError::new(axum::http::StatusCode::NOT_FOUND, "M_NOT_FOUND", "The protocol is unknown"))
}

async fn no_entities(_auth: Auth) -> Json<Value> {
    Json(json!([]))
}

fn own(auth: &Auth, user: &str) -> ApiResult<()> {
    if auth.user_id == user { Ok(()) } else { Err(MatrixError::forbidden("Cannot act for another user")) }
}

#[derive(Deserialize)]
struct TypingBody {
    typing: bool,
    #[serde(default)]
    timeout: Option<u64>,
}

async fn typing(
    State(api): State<Api>,
    auth: Auth,
    Path((room, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<TypingBody>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    let r = room.clone();
    if blocking(move || hs.current_membership(&r, &user)).await.ok().flatten().as_deref() != Some("join") {
        return Err(MatrixError::forbidden("User not in room"));
    }
    let timeout = body.typing.then(|| Duration::from_millis(body.timeout.unwrap_or(30_000)));
    api.hs.set_typing(&room, &auth.user_id, timeout);
    let hs = api.hs.clone();
    blocking(move || hs.share_typing(&room, &auth.user_id, timeout.is_some())).await?;
    Ok(ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReceiptBody {
    thread_id: Option<String>,
}

async fn receipt(
    State(api): State<Api>,
    auth: Auth,
    Path((room, kind, event)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<ReceiptBody>,
) -> ApiResult<Json<Value>> {
    if body.thread_id.is_some() && kind == "m.fully_read" {
        return Err(MatrixError::invalid_param("m.fully_read cannot be threaded"));
    }
    let hs = api.hs.clone();
    blocking(move || hs.set_receipt(&auth.user_id, &room, &kind, &event, body.thread_id.as_deref())).await?;
    Ok(ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MarkersBody {
    #[serde(rename = "m.fully_read")]
    fully_read: Option<String>,
    #[serde(rename = "m.read")]
    read: Option<String>,
    #[serde(rename = "m.read.private")]
    read_private: Option<String>,
}

async fn read_markers(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<MarkersBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || {
        for (kind, event) in
            [("m.fully_read", &body.fully_read), ("m.read", &body.read), ("m.read.private", &body.read_private)]
        {
            if let Some(event) = event {
                hs.set_receipt(&auth.user_id, &room, kind, event, None)?;
            }
        }
        Ok(())
    })
    .await?;
    Ok(ok())
}

async fn get_presence(State(api): State<Api>, _auth: Auth, Path(user): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let found = blocking(move || {
        // Other servers' users are known by what their servers sent us.
        if hs.is_local(&user) && hs.account(&user)?.is_none() {
            return Err(tandem_core::Error::not_found("Unknown user"));
        }
        hs.presence(&user)
    })
    .await?;
    Ok(Json(found.map(|(v, _)| v).unwrap_or_else(|| json!({ "presence": "offline" }))))
}

#[derive(Deserialize)]
struct PresenceBody {
    presence: String,
    #[serde(default)]
    status_msg: Option<String>,
}

async fn set_presence(
    State(api): State<Api>,
    auth: Auth,
    Path(user): Path<String>,
    JsonBody(body): JsonBody<PresenceBody>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    blocking(move || hs.set_presence(&user, &body.presence, body.status_msg.as_deref())).await?;
    Ok(ok())
}

async fn get_global(
    State(api): State<Api>,
    auth: Auth,
    Path((user, kind)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.account_data(&user, None, &kind)).await?))
}

async fn put_global(
    State(api): State<Api>,
    auth: Auth,
    Path((user, kind)): Path<(String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    blocking(move || hs.set_account_data(&user, None, &kind, content)).await?;
    Ok(ok())
}

fn check_room_id(room: &str) -> ApiResult<()> {
    if room.starts_with('!') && room.len() > 1 {
        Ok(())
    } else {
        Err(MatrixError::invalid_param(format!("{room:?} is not a room id")))
    }
}

async fn get_room_data(
    State(api): State<Api>,
    auth: Auth,
    Path((user, room, kind)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    check_room_id(&room)?;
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.account_data(&user, Some(&room), &kind)).await?))
}

async fn put_room_data(
    State(api): State<Api>,
    auth: Auth,
    Path((user, room, kind)): Path<(String, String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    check_room_id(&room)?;
    let hs = api.hs.clone();
    blocking(move || hs.set_account_data(&user, Some(&room), &kind, content)).await?;
    Ok(ok())
}

async fn get_tags(
    State(api): State<Api>,
    auth: Auth,
    Path((user, room)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    let tags = blocking(move || hs.tags(&user, &room)).await?;
    Ok(Json(json!({ "tags": tags })))
}

async fn put_tag(
    State(api): State<Api>,
    auth: Auth,
    Path((user, room, tag)): Path<(String, String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    blocking(move || hs.set_tag(&user, &room, &tag, Some(content))).await?;
    Ok(ok())
}

async fn delete_tag(
    State(api): State<Api>,
    auth: Auth,
    Path((user, room, tag)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    blocking(move || hs.set_tag(&user, &room, &tag, None)).await?;
    Ok(ok())
}

async fn create_filter(
    State(api): State<Api>,
    auth: Auth,
    Path(user): Path<String>,
    JsonBody(filter): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    let id = blocking(move || hs.create_filter(&user, &filter)).await?;
    Ok(Json(json!({ "filter_id": id })))
}

async fn get_filter(
    State(api): State<Api>,
    auth: Auth,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    own(&auth, &user)?;
    let hs = api.hs.clone();
    let filter = blocking(move || hs.filter(&user, &id)).await?;
    Ok(Json(serde_json::to_value(filter).map_err(|_| MatrixError::internal())?))
}
