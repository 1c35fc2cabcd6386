//! Push: the user's push rules, pushers (where notifications go) and the list of past
//! notifications.

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
        .route("/_matrix/client/v3/pushrules/", get(push_rules))
        .route("/_matrix/client/v3/pushrules/global/", get(push_rules_global))
        .route(
            "/_matrix/client/v3/pushrules/{scope}/{kind}/{id}",
            get(get_push_rule).put(put_push_rule).delete(delete_push_rule),
        )
        .route(
            "/_matrix/client/v3/pushrules/{scope}/{kind}/{id}/{attr}",
            get(get_push_rule_attr).put(put_push_rule_attr),
        )
        .route("/_matrix/client/v3/pushers", get(pushers))
        .route("/_matrix/client/v3/pushers/set", post(set_pusher))
        .route("/_matrix/client/v3/notifications", get(notifications))
}

async fn push_rules(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let rules = blocking(move || hs.push_rules(&auth.user_id)).await?;
    Ok(Json(json!({ "global": rules })))
}

async fn push_rules_global(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.push_rules(&auth.user_id)).await?))
}

fn global_scope(scope: &str) -> ApiResult<()> {
    if scope == "global" { Ok(()) } else { Err(MatrixError::invalid_param("Unknown push rule scope")) }
}

async fn get_push_rule(
    State(api): State<Api>,
    auth: Auth,
    Path((scope, kind, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    global_scope(&scope)?;
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.push_rule(&auth.user_id, &kind, &id)).await?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PlaceQuery {
    before: Option<String>,
    after: Option<String>,
}

async fn put_push_rule(
    State(api): State<Api>,
    auth: Auth,
    Path((scope, kind, id)): Path<(String, String, String)>,
    Q(q): Q<PlaceQuery>,
    JsonBody(body): JsonBody<serde_json::Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    global_scope(&scope)?;
    let hs = api.hs.clone();
    blocking(move || hs.set_push_rule(&auth.user_id, &kind, &id, &body, q.before.as_deref(), q.after.as_deref()))
        .await?;
    Ok(ok())
}

async fn delete_push_rule(
    State(api): State<Api>,
    auth: Auth,
    Path((scope, kind, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    global_scope(&scope)?;
    let hs = api.hs.clone();
    blocking(move || hs.delete_push_rule(&auth.user_id, &kind, &id)).await?;
    Ok(ok())
}

async fn get_push_rule_attr(
    State(api): State<Api>,
    auth: Auth,
    Path((scope, kind, id, attr)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    global_scope(&scope)?;
    if !matches!(attr.as_str(), "enabled" | "actions") {
        return Err(MatrixError::new(axum::http::StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request"));
    }
    let hs = api.hs.clone();
    let rule = blocking(move || hs.push_rule(&auth.user_id, &kind, &id)).await?;
    let mut out = serde_json::Map::new();
    out.insert(attr.clone(), rule[attr.as_str()].clone());
    Ok(Json(Value::Object(out)))
}

async fn put_push_rule_attr(
    State(api): State<Api>,
    auth: Auth,
    Path((scope, kind, id, attr)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    global_scope(&scope)?;
    if !matches!(attr.as_str(), "enabled" | "actions") {
        return Err(MatrixError::new(axum::http::StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request"));
    }
    let value = body.get(&attr).cloned().ok_or_else(|| MatrixError::missing_param(format!("{attr} missing")))?;
    let hs = api.hs.clone();
    blocking(move || hs.set_push_rule_attr(&auth.user_id, &kind, &id, &attr, value)).await?;
    Ok(ok())
}

async fn pushers(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let pushers = blocking(move || hs.pushers(&auth.user_id)).await?;
    Ok(Json(json!({ "pushers": pushers.iter().map(|p| p.to_client()).collect::<Vec<_>>() })))
}

async fn set_pusher(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.set_pusher(&auth.user_id, Some(&auth.device_id), &body)).await?;
    Ok(ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NotificationsQuery {
    from: Option<u64>,
    limit: Option<u64>,
    only: Option<String>,
}

async fn notifications(State(api): State<Api>, auth: Auth, Q(q): Q<NotificationsQuery>) -> ApiResult<Json<Value>> {
    let (before, limit) = (q.from, q.limit.unwrap_or(50).clamp(1, 1000) as usize);
    let highlights_only = q.only.as_deref() == Some("highlight");
    let hs = api.hs.clone();
    let list = blocking(move || hs.notifications(&auth.user_id, before, limit, highlights_only)).await?;
    let mut out = json!({
        "notifications": list.iter().map(|n| json!({
            "room_id": n.room_id,
            "event": n.event,
            "actions": n.actions,
            "read": n.read,
            "ts": n.ts,
        })).collect::<Vec<_>>(),
    });
    if list.len() == limit
        && let Some(last) = list.last()
    {
        out["next_token"] = last.pos.to_string().into();
    }
    Ok(Json(out))
}
