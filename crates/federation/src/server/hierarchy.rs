//! `GET /_matrix/federation/v1/hierarchy/{roomId}`: a room of a space this server is in, with
//! its children that the asking server may preview.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::membership::query_values;
use crate::auth::Origin;
use crate::{FedError, Federation, blocking};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new().route("/_matrix/federation/v1/hierarchy/{room}", get(hierarchy))
}

async fn hierarchy(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    fed.hs.check_acl(&room, &origin).await?;
    let suggested_only = query_values(&query, "suggested_only").pop().as_deref() == Some("true");
    let hs = fed.hs.clone();
    Ok(Json(blocking(move || hs.hierarchy_for_server(&origin, &room, suggested_only)).await?))
}
