//! `/profile`: display names and avatars, propagated to the user's rooms by the engine.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/profile/{user_id}", get(whole))
        .route("/_matrix/client/v3/profile/{user_id}/{field}", get(field).put(set_field).delete(delete_field))
}

fn check_user(user_id: &str) -> ApiResult<()> {
    if tandem_core::accounts::is_valid_user_id(user_id) {
        Ok(())
    } else {
        Err(MatrixError::invalid_param(format!("Invalid user id {user_id:?}")))
    }
}

async fn load(api: &Api, user_id: String) -> ApiResult<Map<String, Value>> {
    check_user(&user_id)?;
    Ok(api.hs.profile_anywhere(&user_id).await?)
}

async fn whole(State(api): State<Api>, Path(user_id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(Value::Object(load(&api, user_id).await?)))
}

async fn field(State(api): State<Api>, Path((user_id, field)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let profile = load(&api, user_id).await?;
    let value = profile.get(&field).cloned().ok_or_else(|| MatrixError::not_found("Profile field not found"))?;
    let mut out = Map::new();
    out.insert(field, value);
    Ok(Json(Value::Object(out)))
}

async fn set_field(
    State(api): State<Api>,
    auth: Auth,
    Path((user_id, field)): Path<(String, String)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    check_user(&user_id)?;
    if user_id != auth.user_id {
        return Err(MatrixError::forbidden("Cannot set another user's profile"));
    }
    if field.len() > 255 {
        return Err(MatrixError::new(axum::http::StatusCode::BAD_REQUEST, "M_KEY_TOO_LARGE", "Profile key too long"));
    }
    let value =
        body.get(&field).cloned().ok_or_else(|| MatrixError::missing_param(format!("Missing key '{field}'")))?;
    if matches!(field.as_str(), "displayname" | "avatar_url") && !(value.is_string() || value.is_null()) {
        return Err(MatrixError::bad_json(format!("{field} must be a string")));
    }
    if value.as_str().is_some_and(|s| s.len() > 256 && field == "displayname") {
        return Err(MatrixError::bad_json("displayname is too long"));
    }
    let hs = api.hs.clone();
    blocking(move || hs.set_profile_field(&user_id, &field, (!value.is_null()).then_some(value))).await?;
    Ok(ok())
}

async fn delete_field(
    State(api): State<Api>,
    auth: Auth,
    Path((user_id, field)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    if user_id != auth.user_id {
        return Err(MatrixError::forbidden("Cannot change another user's profile"));
    }
    let hs = api.hs.clone();
    blocking(move || hs.set_profile_field(&user_id, &field, None)).await?;
    Ok(ok())
}
