//! `GET /_matrix/federation/v1/hierarchy/{roomId}`: a room of a space this server is in, with
//! its children that the asking server may preview.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tandem_core::Homeserver;
use tandem_core::hierarchy::Asker;

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
    fed.check_acl(&room, &origin).await?;
    let suggested_only = query_values(&query, "suggested_only").pop().as_deref() == Some("true");
    let hs = fed.hs.clone();
    let answer = blocking(move || {
        let asker = Asker::Server(&origin);
        let not_found = || tandem_core::Error::not_found("Unknown room, or not one your server may preview");
        if !hs.is_resident(&room)? || !hs.may_preview(asker, &room)? {
            return Err(not_found());
        }
        let chunk = hs.space_room_chunk(&room)?.ok_or_else(not_found)?;
        let (mut children, mut inaccessible) = (Vec::new(), Vec::new());
        for child in Homeserver::space_children(&chunk, suggested_only) {
            if !hs.is_resident(&child.room_id)? {
                continue;
            }
            if !hs.may_preview(asker, &child.room_id)? {
                inaccessible.push(child.room_id);
                continue;
            }
            if let Some(mut summary) = hs.space_room_chunk(&child.room_id)? {
                if let Some(obj) = summary.as_object_mut() {
                    obj.remove("children_state");
                }
                children.push(summary);
            }
        }
        Ok(json!({ "room": chunk, "children": children, "inaccessible_children": inaccessible }))
    })
    .await?;
    Ok(Json(answer))
}
