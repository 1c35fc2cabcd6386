//! `GET /sync`: one pass of the engine's sync, repeated while there is nothing to say and the
//! client's `timeout` has not run out (long polling).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tandem_core::sync::{SyncRequest, SyncToken};

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

/// The longest a sync waits, whatever the client asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/sync", get(sync))
        .route("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", post(sliding_sync))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SyncQuery {
    since: Option<String>,
    timeout: Option<u64>,
    full_state: Option<bool>,
    filter: Option<String>,
    set_presence: Option<String>,
}

async fn sync(State(api): State<Api>, auth: Auth, Q(q): Q<SyncQuery>) -> ApiResult<SyncBody> {
    let since = match q.since.as_deref() {
        Some(s) => Some(SyncToken::parse(s).ok_or_else(|| MatrixError::invalid_param("Invalid since token"))?),
        None => None,
    };
    let hs = api.hs.clone();
    let (user, filter_param) = (auth.user_id.clone(), q.filter.clone());
    let filter = match filter_param {
        Some(f) => blocking(move || hs.resolve_filter(&user, &f)).await?,
        None => Default::default(),
    };
    if let Some(presence) = q.set_presence.as_deref() {
        if !matches!(presence, "online" | "offline" | "unavailable") {
            return Err(MatrixError::invalid_param("Invalid set_presence"));
        }
        let (hs, user, p) = (api.hs.clone(), auth.user_id.clone(), presence.to_owned());
        blocking(move || hs.touch_presence(&user, &p)).await?;
    }
    let filter = std::sync::Arc::new(filter);
    let timeout = Duration::from_millis(q.timeout.unwrap_or(0)).min(MAX_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = api.hs.subscribe();
    loop {
        changes.borrow_and_update();
        let (hs, auth2, filter2) = (api.hs.clone(), auth.clone(), filter.clone());
        let full_state = q.full_state.unwrap_or(false);
        let (body, any) = blocking(move || {
            hs.sync_once(&SyncRequest {
                user_id: &auth2.user_id,
                device_id: &auth2.device_id,
                since,
                full_state,
                filter: &filter2,
            })
        })
        .await?;
        if any || tokio::time::Instant::now() >= deadline {
            return Ok(SyncBody(body));
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return Ok(SyncBody(body));
        }
    }
}

/// A sync or sliding sync answer, JSON text as the engine wrote it.
struct SyncBody(String);

impl IntoResponse for SyncBody {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SlidingQuery {
    pos: Option<String>,
    timeout: Option<u64>,
}

/// Simplified sliding sync (MSC4186), as Element X uses it; long-polls like `/sync`.
async fn sliding_sync(
    State(api): State<Api>,
    auth: Auth,
    Q(q): Q<SlidingQuery>,
    JsonBody(body): JsonBody<tandem_core::sliding::SlidingRequest>,
) -> ApiResult<SyncBody> {
    let body = std::sync::Arc::new(body);
    let timeout = Duration::from_millis(q.timeout.unwrap_or(0)).min(MAX_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = api.hs.subscribe();
    loop {
        changes.borrow_and_update();
        let (hs, auth2, body2, pos) = (api.hs.clone(), auth.clone(), body.clone(), q.pos.clone());
        let (response, any) =
            blocking(move || hs.sliding_sync(&auth2.user_id, &auth2.device_id, pos.as_deref(), &body2)).await?;
        if any || tokio::time::Instant::now() >= deadline {
            return Ok(SyncBody(response));
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return Ok(SyncBody(response));
        }
    }
}
