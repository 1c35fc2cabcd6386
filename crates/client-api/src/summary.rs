//! `GET /_matrix/client/v1/room_summary/{roomIdOrAlias}` (spec v1.15, MSC3266) and the
//! unstable paths clients still call: a room's preview, for a user or an unauthenticated
//! client. Rooms this server is not in are asked of the `via` servers' `/hierarchy`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{MaybeAuth, blocking};
use crate::rooms::{resolve_room_via, via_servers};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v1/room_summary/{room}", get(summary))
        .route("/_matrix/client/unstable/im.nheko.summary/summary/{room}", get(summary))
        .route("/_matrix/client/unstable/im.nheko.summary/rooms/{room}/summary", get(summary))
}

async fn summary(
    State(api): State<Api>,
    MaybeAuth(auth): MaybeAuth,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let (room_id, mut via) = resolve_room_via(&api, &room).await?;
    via.splice(0..0, via_servers(&query));
    let user = auth.map(|a| a.user_id);
    let (hs, u, r) = (api.hs.clone(), user.clone(), room_id.clone());
    if let Some(local) = blocking(move || hs.local_room_summary(u.as_deref(), &r)).await? {
        return Ok(Json(local));
    }
    let not_found = || MatrixError::not_found("Room not found or not one you may preview");
    let network = api.hs.network().map_err(|_| not_found())?;
    let answer = match network.hierarchy(room_id.clone(), via, false).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::info!(%room_id, "room summary from other servers: {e}");
            return Err(not_found());
        }
    };
    let chunk = answer.get("room").cloned().ok_or_else(not_found)?;
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.remote_room_summary(user.as_deref(), &room_id, chunk)).await?))
}
