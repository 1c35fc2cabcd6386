//! `/_matrix/key/v2/server` (our keys) and `/_matrix/key/v2/query` (a notary for others'),
//! and `/.well-known/matrix/server` delegation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::{FedError, Federation};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new()
        .route("/_matrix/key/v2/server", get(server))
        .route("/_matrix/key/v2/server/{key_id}", get(server))
        .route("/_matrix/key/v2/query", post(query))
        .route("/_matrix/key/v2/query/{server_name}", get(query_one))
        .route("/.well-known/matrix/server", get(well_known))
}

async fn server(State(fed): State<Arc<Federation>>) -> Json<Value> {
    Json(fed.own_key_document())
}

async fn query(State(fed): State<Arc<Federation>>, body: axum::body::Bytes) -> Result<Json<Value>, FedError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| FedError::bad_json("Content not JSON."))?;
    let servers =
        body.get("server_keys").and_then(Value::as_object).ok_or_else(|| FedError::bad_json("server_keys missing"))?;
    // Each server named may cost a fetch from it: a query is bounded, as Synapse bounds it.
    if servers.len() > crate::keys::MAX_NOTARY_SERVERS {
        return Err(FedError::bad_json(format!("At most {} servers per query", crate::keys::MAX_NOTARY_SERVERS)));
    }
    let mut docs = Vec::new();
    for server in servers.keys().filter(|s| tandem_wire::valid_server_name(s)) {
        if let Some(doc) = fed.notarize(server).await {
            docs.push(doc);
        }
    }
    Ok(Json(json!({ "server_keys": docs })))
}

async fn query_one(State(fed): State<Arc<Federation>>, Path(server): Path<String>) -> Json<Value> {
    if !tandem_wire::valid_server_name(&server) {
        return Json(json!({ "server_keys": [] }));
    }
    let docs: Vec<Value> = fed.notarize(&server).await.into_iter().collect();
    Json(json!({ "server_keys": docs }))
}

async fn well_known(State(fed): State<Arc<Federation>>) -> Result<Json<Value>, FedError> {
    match &fed.config.well_known_server {
        Some(server) => Ok(Json(json!({ "m.server": server }))),
        None => Err(FedError::not_found("No .well-known/matrix/server here")),
    }
}
