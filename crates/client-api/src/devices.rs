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
        .route("/_matrix/client/v3/admin/whois/{user}", get(whois))
}

/// A user's devices and their last connection, for the user or a server admin.
async fn whois(State(api): State<Api>, auth: Auth, Path(user): Path<String>) -> ApiResult<Json<Value>> {
    if !tandem_core::accounts::is_valid_user_id(&user) {
        return Err(MatrixError::invalid_param(format!("{user:?} is not a user id")));
    }
    let hs = api.hs.clone();
    let target = user.clone();
    let devices = blocking(move || hs.whois(&auth.user_id, &target)).await?;
    let devices: serde_json::Map<String, Value> = devices
        .iter()
        .map(|d| {
            let mut connection = serde_json::Map::new();
            if let Some(ip) = &d.last_seen_ip {
                connection.insert("ip".into(), ip.clone().into());
            }
            if let Some(ts) = d.last_seen_ts {
                connection.insert("last_seen".into(), ts.into());
            }
            (d.device_id.clone(), json!({ "sessions": [{ "connections": [connection] }] }))
        })
        .collect();
    Ok(Json(json!({ "user_id": user, "devices": devices })))
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
