//! What other servers ask about this server's users' encryption keys: `/user/devices`,
//! `/user/keys/query` and `/user/keys/claim`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::{Origin, Signed};
use crate::{FedError, Federation, blocking};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new()
        .route("/_matrix/federation/v1/user/devices/{user}", get(devices))
        .route("/_matrix/federation/v1/user/keys/query", post(query))
        .route("/_matrix/federation/v1/user/keys/claim", post(claim))
}

async fn devices(
    State(fed): State<Arc<Federation>>,
    Origin(_origin): Origin,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, FedError> {
    if crate::client::server_of(&user_id) != Some(fed.server_name()) {
        return Err(FedError::forbidden("The user is not on this server"));
    }
    let hs = fed.hs.clone();
    Ok(Json(blocking(move || hs.user_devices(&user_id)).await?))
}

async fn query(State(fed): State<Arc<Federation>>, Signed { body, .. }: Signed) -> Result<Json<Value>, FedError> {
    let hs = fed.hs.clone();
    Ok(Json(blocking(move || hs.query_keys_for_server(&body)).await?))
}

async fn claim(State(fed): State<Arc<Federation>>, Signed { body, .. }: Signed) -> Result<Json<Value>, FedError> {
    let hs = fed.hs.clone();
    let mut answer = blocking(move || hs.claim_keys(&body)).await?;
    if let Some(obj) = answer.as_object_mut() {
        obj.remove("failures");
    }
    Ok(Json(answer))
}
