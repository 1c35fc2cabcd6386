//! End-to-end encryption: keys upload, query and claim (other servers' users through their
//! servers), key changes, cross-signing keys and signatures, and `sendToDevice`.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::account::require_password;
use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/keys/upload", post(upload))
        .route("/_matrix/client/v3/keys/query", post(query))
        .route("/_matrix/client/v3/keys/claim", post(claim))
        .route("/_matrix/client/v3/keys/changes", get(changes))
        .route("/_matrix/client/v3/keys/device_signing/upload", post(upload_signing_keys))
        .route("/_matrix/client/v3/keys/signatures/upload", post(upload_signatures))
        .route(
            "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
            put(put_dehydrated).get(get_dehydrated).delete(delete_dehydrated),
        )
        .route(
            "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{device}/events",
            post(dehydrated_events),
        )
        .route("/_matrix/client/v3/sendToDevice/{kind}/{txn}", put(send_to_device))
}

async fn upload(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.upload_keys(&auth.user_id, &auth.device_id, &body)).await?))
}

async fn query(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    Ok(Json(api.hs.keys_query(&auth.user_id, body).await?))
}

async fn claim(State(api): State<Api>, _auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    Ok(Json(api.hs.keys_claim(body).await?))
}

/// `/keys/device_signing/upload`: replacing existing cross-signing keys needs the password.
async fn upload_signing_keys(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (hs, user, b) = (api.hs.clone(), auth.user_id.clone(), body.clone());
    if blocking(move || hs.cross_signing_upload_needs_auth(&user, &b)).await? {
        require_password(&api, &auth, body.get("auth")).await?;
    }
    let hs = api.hs.clone();
    blocking(move || hs.upload_cross_signing_keys(&auth.user_id, &body)).await?;
    Ok(ok())
}

async fn upload_signatures(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let failures = blocking(move || hs.upload_signatures(&auth.user_id, &body)).await?;
    Ok(Json(json!({ "failures": failures })))
}

#[derive(Deserialize)]
struct ChangesQuery {
    from: String,
    to: String,
}

async fn changes(State(api): State<Api>, auth: Auth, Q(q): Q<ChangesQuery>) -> ApiResult<Json<Value>> {
    let parse = |t: &str| {
        tandem_core::rooms::messages::parse_token(t).ok_or_else(|| MatrixError::invalid_param("Invalid token"))
    };
    let (from, to) = (parse(&q.from)?, parse(&q.to)?);
    let hs = api.hs.clone();
    let (changed, left) = blocking(move || hs.key_changes(&auth.user_id, from, to)).await?;
    Ok(Json(json!({ "changed": changed, "left": left })))
}

#[derive(Deserialize)]
struct ToDeviceBody {
    messages: Value,
}

async fn send_to_device(
    State(api): State<Api>,
    auth: Auth,
    Path((kind, txn)): Path<(String, String)>,
    JsonBody(body): JsonBody<ToDeviceBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.send_to_device(&auth.user_id, &auth.device_id, &kind, &txn, &body.messages)).await?;
    Ok(ok())
}

async fn put_dehydrated(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let device_id = blocking(move || hs.put_dehydrated_device(&auth.user_id, &body)).await?;
    Ok(Json(json!({ "device_id": device_id })))
}

async fn get_dehydrated(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.get_dehydrated_device(&auth.user_id)).await?))
}

async fn delete_dehydrated(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let device_id = blocking(move || hs.delete_dehydrated_device(&auth.user_id)).await?;
    Ok(Json(json!({ "device_id": device_id })))
}

async fn dehydrated_events(
    State(api): State<Api>,
    auth: Auth,
    Path(device): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let next = body.get("next_batch").and_then(Value::as_str).map(str::to_owned);
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.dehydrated_device_events(&auth.user_id, &device, next.as_deref())).await?))
}
