//! `GET /_matrix/client/v1/room_summary/{roomIdOrAlias}` (spec v1.15, MSC3266) and the
//! unstable paths clients still call: a room's preview, for a user or an unauthenticated
//! client. Rooms this server is not in are asked of the `via` servers' `/hierarchy`.

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::error::ApiResult;
use crate::extract::MaybeAuth;
use crate::rooms::via_servers;
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
    let user = auth.map(|a| a.user_id);
    Ok(Json(api.hs.summary_of_room(user.as_deref(), &room, via_servers(&query)).await?))
}
