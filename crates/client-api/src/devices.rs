//! `/devices`: list, get, rename, delete (with user-interactive auth).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::sessions::Device;

use crate::account::require_password;
use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/devices", get(list))
        .route("/_matrix/client/v3/devices/{device_id}", get(one).put(rename).delete(delete))
        .route("/_matrix/client/v3/delete_devices", post(delete_many))
}

fn device_json(d: &Device) -> Value {
    json!({
        "device_id": d.device_id,
        "display_name": d.display_name,
        "last_seen_ts": d.last_seen_ts,
        "last_seen_ip": d.last_seen_ip,
    })
}

async fn list(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let devices = blocking(move || hs.devices(&auth.user_id)).await?;
    Ok(Json(json!({ "devices": devices.iter().map(device_json).collect::<Vec<_>>() })))
}

async fn one(State(api): State<Api>, auth: Auth, Path(device_id): Path<String>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let device = blocking(move || hs.device(&auth.user_id, &device_id)).await?;
    device.map(|d| Json(device_json(&d))).ok_or_else(|| MatrixError::not_found("Device not found"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RenameBody {
    display_name: Option<String>,
}

async fn rename(
    State(api): State<Api>,
    auth: Auth,
    Path(device_id): Path<String>,
    JsonBody(body): JsonBody<RenameBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.rename_device(&auth.user_id, &device_id, body.display_name.as_deref())).await?;
    Ok(ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteBody {
    auth: Option<Value>,
}

async fn delete(
    State(api): State<Api>,
    auth: Auth,
    Path(device_id): Path<String>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let (user, dev) = (auth.user_id.clone(), device_id.clone());
    if blocking(move || hs.device(&user, &dev)).await?.is_none() {
        return Err(MatrixError::not_found("Device not found"));
    }
    require_password(&api, &auth, body.auth.as_ref()).await?;
    let hs = api.hs.clone();
    blocking(move || hs.delete_devices(&auth.user_id, &[device_id])).await?;
    Ok(ok())
}

#[derive(Deserialize)]
struct DeleteManyBody {
    devices: Vec<String>,
    #[serde(default)]
    auth: Option<Value>,
}

async fn delete_many(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<DeleteManyBody>,
) -> ApiResult<Json<Value>> {
    require_password(&api, &auth, body.auth.as_ref()).await?;
    let hs = api.hs.clone();
    blocking(move || hs.delete_devices(&auth.user_id, &body.devices)).await?;
    Ok(ok())
}
