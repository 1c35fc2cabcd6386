//! End-to-end encryption basics between local users: keys upload/query/claim/changes and
//! `sendToDevice`.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/keys/upload", post(upload))
        .route("/_matrix/client/v3/keys/query", post(query))
        .route("/_matrix/client/v3/keys/claim", post(claim))
        .route("/_matrix/client/v3/keys/changes", get(changes))
        .route("/_matrix/client/v3/sendToDevice/{kind}/{txn}", put(send_to_device))
}

async fn upload(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.upload_keys(&auth.user_id, &auth.device_id, &body)).await?))
}

async fn query(State(api): State<Api>, _auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.query_keys(&body)).await?))
}

async fn claim(State(api): State<Api>, _auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.claim_keys(&body)).await?))
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
    let changed = blocking(move || hs.key_changes(&auth.user_id, from, to)).await?;
    Ok(Json(json!({ "changed": changed, "left": [] })))
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
