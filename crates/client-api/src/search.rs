//! `POST /search`: message search in the rooms the user is in.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use tandem_core::filter::RoomEventFilter;
use tandem_core::rooms::read::Viewer;
use tandem_core::search::SearchRequest;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/_matrix/client/v3/search", post(search))
}

#[derive(Deserialize)]
struct SearchBody {
    search_categories: Categories,
}

#[derive(Deserialize)]
struct Categories {
    room_events: Option<RoomEvents>,
}

#[derive(Deserialize)]
struct RoomEvents {
    search_term: String,
    #[serde(default)]
    keys: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<RoomEventFilter>,
    #[serde(default)]
    event_context: Option<EventContext>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventContext {
    before_limit: Option<usize>,
    after_limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchQuery {
    next_batch: Option<String>,
}

async fn search(
    State(api): State<Api>,
    auth: Auth,
    Q(q): Q<SearchQuery>,
    JsonBody(body): JsonBody<SearchBody>,
) -> ApiResult<Json<Value>> {
    let Some(room_events) = body.search_categories.room_events else {
        return Ok(Json(serde_json::json!({ "search_categories": {} })));
    };
    let keys =
        room_events.keys.unwrap_or_else(|| vec!["content.body".into(), "content.name".into(), "content.topic".into()]);
    if let Some(bad) = keys.iter().find(|k| !matches!(k.as_str(), "content.body" | "content.name" | "content.topic")) {
        return Err(MatrixError::invalid_param(format!("Unknown search key {bad:?}")));
    }
    let before = match q.next_batch.as_deref() {
        Some(t) => Some(
            tandem_core::rooms::messages::parse_token(t)
                .ok_or_else(|| MatrixError::invalid_param("Invalid next_batch"))?,
        ),
        None => None,
    };
    let context =
        room_events.event_context.map(|c| (c.before_limit.unwrap_or(5).min(20), c.after_limit.unwrap_or(5).min(20)));
    let hs = api.hs.clone();
    Ok(Json(
        blocking(move || {
            let req = SearchRequest {
                term: &room_events.search_term,
                keys,
                filter: room_events.filter.unwrap_or_default(),
                before,
                context,
            };
            hs.search(Viewer { user_id: &auth.user_id, device_id: Some(&auth.device_id) }, &req)
        })
        .await?,
    ))
}
