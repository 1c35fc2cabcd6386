//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs and EDUs from another
//! server. The envelope is checked here (`tandem_wire`); the engine takes the rest
//! (`tandem_core::inbound`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::Value;
use tandem_wire::{Transaction, WireError};

use crate::auth::Signed;
use crate::{FedError, Federation};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new().route("/_matrix/federation/v1/send/{txn_id}", put(send))
}

async fn send(
    State(fed): State<Arc<Federation>>,
    Path(txn_id): Path<String>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let Transaction { pdus, edus } = Transaction::from_body(&origin, body).map_err(|e| match e {
        WireError::WrongOrigin => FedError::forbidden(e.to_string()),
        e => FedError::bad_json(e.to_string()),
    })?;
    Ok(Json(fed.hs.receive_transaction(&origin, &txn_id, pdus, edus).await?))
}
