//! `GET /_matrix/client/v1/rooms/{roomId}/hierarchy`: the parameters checked here, the walk of
//! the space done by the engine ([`tandem_core::hierarchy`]).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use tandem_core::hierarchy::Walk;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, Q};
use crate::state::Api;

const DEFAULT_LIMIT: usize = 50;

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/_matrix/client/v1/rooms/{room}/hierarchy", get(hierarchy))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HierarchyQuery {
    from: Option<String>,
    limit: Option<String>,
    max_depth: Option<String>,
    suggested_only: Option<String>,
}

fn number(value: Option<&str>, name: &str) -> ApiResult<Option<usize>> {
    value
        .map(|v| {
            v.parse::<usize>().map_err(|_| MatrixError::invalid_param(format!("{name} must be a non-negative integer")))
        })
        .transpose()
}

async fn hierarchy(
    State(api): State<Api>,
    auth: Auth,
    Path(root): Path<String>,
    Q(q): Q<HierarchyQuery>,
) -> ApiResult<Json<Value>> {
    let limit = number(q.limit.as_deref(), "limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        return Err(MatrixError::invalid_param("limit must be positive"));
    }
    let max_depth = number(q.max_depth.as_deref(), "max_depth")?.unwrap_or(usize::MAX);
    let suggested_only = match q.suggested_only.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(MatrixError::invalid_param("suggested_only must be true or false")),
    };
    let offset = match q.from.as_deref() {
        None => 0,
        Some(t) => t
            .strip_prefix('h')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| MatrixError::invalid_param("Invalid from token"))?,
    };

    let walk = Walk { offset, limit, max_depth, suggested_only };
    Ok(Json(api.hs.hierarchy(&auth.user_id, &root, walk).await?))
}
