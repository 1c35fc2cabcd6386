//! Reporting content to the server's administrators: an event, a room (spec v1.13), a user
//! (v1.14).

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/rooms/{room}/report/{event}", post(report_event))
        .route("/_matrix/client/v3/rooms/{room}/report", post(report_room))
        .route("/_matrix/client/v3/users/{user}/report", post(report_user))
}

async fn report_event(
    State(api): State<Api>,
    auth: Auth,
    Path((room, event)): Path<(String, String)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let (reason, score) = tandem_core::reports::event_report_fields(&body)?;
    let hs = api.hs.clone();
    blocking(move || hs.report_event(&auth.user_id, &room, &event, reason, score)).await?;
    Ok(ok())
}

/// The `reason` a room or user report must give.
fn reason(body: &Map<String, Value>) -> ApiResult<String> {
    match body.get("reason") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(MatrixError::bad_json("'reason' must be a string")),
        None => Err(MatrixError::missing_param("'reason' is required")),
    }
}

async fn report_room(
    State(api): State<Api>,
    auth: Auth,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let reason = reason(&body)?;
    let hs = api.hs.clone();
    blocking(move || hs.report_room(&auth.user_id, &room, &reason)).await?;
    Ok(ok())
}

async fn report_user(
    State(api): State<Api>,
    auth: Auth,
    Path(user): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    if !tandem_core::accounts::is_valid_user_id(&user) {
        return Err(MatrixError::invalid_param(format!("{user:?} is not a user id")));
    }
    let reason = reason(&body)?;
    let hs = api.hs.clone();
    blocking(move || hs.report_user(&auth.user_id, &user, &reason)).await?;
    Ok(ok())
}
