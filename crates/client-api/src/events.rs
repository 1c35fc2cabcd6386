//! Events in a room: send, state, redact, one event, `/messages`, `/context`, `/relations`,
//! threads, members.

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::filter::RoomEventFilter;
use tandem_core::rooms::history::MessagesRequest;
use tandem_core::rooms::read::Viewer;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/rooms/{room}/send/{kind}/{txn}", put(send))
        .route("/_matrix/client/v3/rooms/{room}/redact/{event}/{txn}", put(redact))
        .route("/_matrix/client/v3/rooms/{room}/state", get(all_state))
        .route("/_matrix/client/v3/rooms/{room}/state/{kind}", get(state_empty_key).put(put_state_empty_key))
        .route("/_matrix/client/v3/rooms/{room}/state/{kind}/", get(state_empty_key).put(put_state_empty_key))
        .route("/_matrix/client/v3/rooms/{room}/state/{kind}/{*state_key}", get(state_one).put(put_state))
        .route("/_matrix/client/v3/rooms/{room}/event/{event}", get(event))
        .route("/_matrix/client/v3/rooms/{room}/messages", get(messages))
        .route("/_matrix/client/v3/rooms/{room}/context/{event}", get(context))
        .route("/_matrix/client/v1/rooms/{room}/timestamp_to_event", get(timestamp_to_event))
        .route("/_matrix/client/v1/rooms/{room}/relations/{event}", get(relations))
        .route("/_matrix/client/v1/rooms/{room}/relations/{event}/{rel}", get(relations_rel))
        .route("/_matrix/client/v1/rooms/{room}/relations/{event}/{rel}/{kind}", get(relations_rel_kind))
        .route("/_matrix/client/v1/rooms/{room}/threads", get(threads))
        .route("/_matrix/client/v3/rooms/{room}/members", get(members))
        .route("/_matrix/client/v3/rooms/{room}/joined_members", get(joined_members))
}

async fn send(
    State(api): State<Api>,
    auth: Auth,
    Path((room, kind, txn)): Path<(String, String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    api.limits.check(api.config.rate_limit_message, &format!("send:{}", auth.user_id))?;
    let hs = api.hs.clone();
    let event_id =
        blocking(move || hs.send_message(&auth.user_id, &auth.device_id, &room, &kind, &txn, content)).await?;
    Ok(Json(json!({ "event_id": event_id })))
}

async fn redact(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event, txn)): Path<(String, String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let event_id = blocking(move || hs.redact(&auth.user_id, &auth.device_id, &room, &event, &txn, content)).await?;
    Ok(Json(json!({ "event_id": event_id })))
}

async fn all_state(State(api): State<Api>, auth: Auth, Path(room): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(Value::Array(blocking(move || hs.room_state(&auth.user_id, &room)).await?)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FormatQuery {
    format: Option<String>,
}

async fn get_state(
    api: Api,
    auth: Auth,
    room: String,
    kind: String,
    state_key: String,
    format: Option<String>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let event = blocking(move || hs.room_state_event(&auth.user_id, &room, &kind, &state_key)).await?;
    Ok(Json(if format.as_deref() == Some("event") { event } else { event["content"].clone() }))
}

async fn state_empty_key(
    State(api): State<Api>,
    auth: Auth,
    Path((room, kind)): Path<(String, String)>,
    Q(q): Q<FormatQuery>,
) -> ApiResult<Json<Value>> {
    get_state(api, auth, room, kind, String::new(), q.format).await
}

async fn state_one(
    State(api): State<Api>,
    auth: Auth,
    Path((room, kind, state_key)): Path<(String, String, String)>,
    Q(q): Q<FormatQuery>,
) -> ApiResult<Json<Value>> {
    get_state(api, auth, room, kind, state_key, q.format).await
}

async fn set_state(
    api: Api,
    auth: Auth,
    room: String,
    kind: String,
    state_key: String,
    content: Value,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let event_id = blocking(move || hs.send_state(&auth.user_id, &room, &kind, &state_key, content)).await?;
    Ok(Json(json!({ "event_id": event_id })))
}

async fn put_state_empty_key(
    State(api): State<Api>,
    auth: Auth,
    Path((room, kind)): Path<(String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    set_state(api, auth, room, kind, String::new(), content).await
}

async fn put_state(
    State(api): State<Api>,
    auth: Auth,
    Path((room, kind, state_key)): Path<(String, String, String)>,
    JsonBody(content): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    set_state(api, auth, room, kind, state_key, content).await
}

async fn event(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.get_event(&auth.user_id, Some(&auth.device_id), &room, &event)).await?))
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct MessagesQuery {
    from: Option<String>,
    to: Option<String>,
    dir: Option<String>,
    limit: Option<usize>,
    filter: Option<String>,
}

fn room_filter(param: Option<&str>) -> ApiResult<RoomEventFilter> {
    match param {
        None => Ok(RoomEventFilter::default()),
        Some(json) => {
            let value: Value = serde_json::from_str(json).map_err(|_| MatrixError::bad_json("filter is not JSON"))?;
            serde_json::from_value(value).map_err(|e| MatrixError::bad_json(format!("Invalid filter: {e}")))
        }
    }
}

fn direction(dir: Option<&str>, default_backward: bool) -> ApiResult<bool> {
    match dir {
        None => Ok(default_backward),
        Some("b") => Ok(true),
        Some("f") => Ok(false),
        Some(other) => Err(MatrixError::invalid_param(format!("Unknown direction {other:?}"))),
    }
}

async fn messages(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<MessagesQuery>,
) -> ApiResult<Json<Value>> {
    let backward = match q.dir.as_deref() {
        None => return Err(MatrixError::missing_param("Missing dir parameter")),
        d => direction(d, true)?,
    };
    let request = MessagesRequest {
        from: q.from,
        to: q.to,
        backward,
        limit: q.limit.unwrap_or(10),
        filter: room_filter(q.filter.as_deref())?,
    };
    let page = api.hs.messages_paging(&auth.user_id, &auth.device_id, &room, request).await?;
    let mut out = json!({ "chunk": page.chunk, "start": page.start });
    if let Some(end) = page.end {
        out["end"] = end.into();
    }
    if !page.state.is_empty() {
        out["state"] = page.state.into();
    }
    Ok(Json(out))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TimestampQuery {
    ts: Option<String>,
    dir: Option<String>,
}

/// The event nearest a point in time; if this server holds none there, the other servers in
/// the room are asked.
async fn timestamp_to_event(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<TimestampQuery>,
) -> ApiResult<Json<Value>> {
    let ts: u64 =
        q.ts.as_deref()
            .ok_or_else(|| MatrixError::missing_param("Missing ts parameter"))?
            .parse()
            .map_err(|_| MatrixError::invalid_param("ts must be a timestamp in milliseconds"))?;
    let forward =
        !direction(Some(q.dir.as_deref().ok_or_else(|| MatrixError::missing_param("Missing dir parameter"))?), true)?;
    let found = api.hs.timestamp_to_event_anywhere(&auth.user_id, &room, ts, forward).await?;
    let dir = if forward { "f" } else { "b" };
    let (event_id, origin_server_ts) =
        found.ok_or_else(|| MatrixError::not_found(format!("Unable to find event from {ts} in direction {dir}")))?;
    Ok(Json(json!({ "event_id": event_id, "origin_server_ts": origin_server_ts })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContextQuery {
    limit: Option<usize>,
    filter: Option<String>,
}

async fn context(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event)): Path<(String, String)>,
    Q(q): Q<ContextQuery>,
) -> ApiResult<Json<Value>> {
    let filter = room_filter(q.filter.as_deref())?;
    let hs = api.hs.clone();
    Ok(Json(
        blocking(move || {
            let viewer = Viewer { user_id: &auth.user_id, device_id: Some(&auth.device_id) };
            hs.context(viewer, &room, &event, q.limit.unwrap_or(10), &filter)
        })
        .await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RelationsQuery {
    from: Option<String>,
    dir: Option<String>,
    limit: Option<usize>,
}

async fn relations_common(
    api: Api,
    auth: Auth,
    room: String,
    event: String,
    rel: Option<String>,
    kind: Option<String>,
    q: RelationsQuery,
) -> ApiResult<Json<Value>> {
    let backward = direction(q.dir.as_deref(), true)?;
    let hs = api.hs.clone();
    Ok(Json(
        blocking(move || {
            let viewer = Viewer { user_id: &auth.user_id, device_id: Some(&auth.device_id) };
            hs.relations(
                viewer,
                &room,
                &event,
                rel.as_deref(),
                kind.as_deref(),
                q.from.as_deref(),
                backward,
                q.limit.unwrap_or(50),
            )
        })
        .await?,
    ))
}

async fn relations(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event)): Path<(String, String)>,
    Q(q): Q<RelationsQuery>,
) -> ApiResult<Json<Value>> {
    relations_common(api, auth, room, event, None, None, q).await
}

async fn relations_rel(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event, rel)): Path<(String, String, String)>,
    Q(q): Q<RelationsQuery>,
) -> ApiResult<Json<Value>> {
    relations_common(api, auth, room, event, Some(rel), None, q).await
}

async fn relations_rel_kind(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event, rel, kind)): Path<(String, String, String, String)>,
    Q(q): Q<RelationsQuery>,
) -> ApiResult<Json<Value>> {
    relations_common(api, auth, room, event, Some(rel), Some(kind), q).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ThreadsQuery {
    include: Option<String>,
    from: Option<String>,
    limit: Option<usize>,
}

async fn threads(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<ThreadsQuery>,
) -> ApiResult<Json<Value>> {
    let participated = match q.include.as_deref() {
        None | Some("all") => false,
        Some("participated") => true,
        Some(other) => return Err(MatrixError::invalid_param(format!("Unknown include {other:?}"))),
    };
    let hs = api.hs.clone();
    Ok(Json(
        blocking(move || {
            let viewer = Viewer { user_id: &auth.user_id, device_id: Some(&auth.device_id) };
            hs.threads(viewer, &room, participated, q.from.as_deref(), q.limit.unwrap_or(50))
        })
        .await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MembersQuery {
    membership: Option<String>,
    not_membership: Option<String>,
}

async fn members(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    Q(q): Q<MembersQuery>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let chunk =
        blocking(move || hs.room_members(&auth.user_id, &room, q.membership.as_deref(), q.not_membership.as_deref()))
            .await?;
    Ok(Json(json!({ "chunk": chunk })))
}

async fn joined_members(State(api): State<Api>, auth: Auth, Path(room): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.joined_members(&auth.user_id, &room)).await?))
}
