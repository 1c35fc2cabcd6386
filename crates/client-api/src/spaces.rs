//! `GET /_matrix/client/v1/rooms/{roomId}/hierarchy`: a breadth-first walk of a space. Rooms
//! this server is in are summarised by the engine; the others are asked of the servers their
//! `m.space.child` events name, through the federation layer.

use std::collections::{HashMap, HashSet, VecDeque};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::Homeserver;
use tandem_core::hierarchy::Asker;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, Q, blocking};
use crate::state::Api;

/// The most rooms one walk visits; pages are cut from them.
const MAX_ROOMS: usize = 1000;
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

    let (hs, user, r) = (api.hs.clone(), auth.user_id.clone(), root.clone());
    let root_chunk = blocking(move || {
        let chunk = hs.space_room_chunk(&r)?;
        Ok(match chunk {
            Some(c) if hs.may_preview(Asker::User(&user), &r)? => Some(c),
            _ => None,
        })
    })
    .await?
    .ok_or_else(|| MatrixError::forbidden("You may not preview this room"))?;

    let mut rooms = Vec::new();
    let mut seen = HashSet::from([root.clone()]);
    // Summaries of rooms this server is not in, as their parents' servers gave them.
    let mut remote: HashMap<String, Value> = HashMap::new();
    let mut queue = VecDeque::from([(root_chunk, 0usize)]);
    while let Some((chunk, depth)) = queue.pop_front() {
        let children = if depth < max_depth { Homeserver::space_children(&chunk, suggested_only) } else { Vec::new() };
        rooms.push(chunk);
        if rooms.len() >= MAX_ROOMS {
            break;
        }
        for child in children {
            if !seen.insert(child.room_id.clone()) {
                continue;
            }
            let expand = depth + 1 < max_depth;
            if let Some(chunk) = summary(&api, &auth.user_id, &child, suggested_only, expand, &mut remote).await? {
                queue.push_back((chunk, depth + 1));
            }
        }
    }

    let page: Vec<Value> = rooms.iter().skip(offset).take(limit).cloned().collect();
    let mut out = json!({ "rooms": page });
    if offset + limit < rooms.len() {
        out["next_batch"] = format!("h{}", offset + limit).into();
    }
    Ok(Json(out))
}

/// A child room's summary if the user may preview it: from the engine for a room this server
/// is in, else from another server (its own `/hierarchy` when its children are needed, or the
/// summary its parent's server gave).
async fn summary(
    api: &Api,
    user_id: &str,
    child: &tandem_core::hierarchy::Child,
    suggested_only: bool,
    expand: bool,
    remote: &mut HashMap<String, Value>,
) -> ApiResult<Option<Value>> {
    let (hs, user, room) = (api.hs.clone(), user_id.to_owned(), child.room_id.clone());
    let local = blocking(move || {
        Ok(match hs.space_room_chunk(&room)? {
            Some(chunk) => Some(hs.may_preview(Asker::User(&user), &room)?.then_some(chunk)),
            None => None,
        })
    })
    .await?;
    if let Some(found) = local {
        return Ok(found);
    }
    let mut chunk = remote.remove(&child.room_id);
    if chunk.is_none() || expand {
        let Ok(network) = api.hs.network() else { return Ok(chunk.map(with_children_state)) };
        match network.hierarchy(child.room_id.clone(), child.via.clone(), suggested_only).await {
            Ok(answer) => {
                for c in answer.get("children").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(id) = c.get("room_id").and_then(Value::as_str) {
                        remote.entry(id.to_owned()).or_insert_with(|| c.clone());
                    }
                }
                chunk = answer.get("room").cloned();
            }
            Err(e) => tracing::info!(room_id = %child.room_id, "hierarchy of a remote room: {e}"),
        }
    }
    let Some(chunk) = chunk else { return Ok(None) };
    // A restricted room another server describes: the user must be in one of the allowed rooms.
    if matches!(chunk["join_rule"].as_str(), Some("restricted")) && chunk["world_readable"] != true {
        let allowed = tandem_core::hierarchy::strings(chunk.get("allowed_room_ids"));
        let (hs, user) = (api.hs.clone(), user_id.to_owned());
        let member = blocking(move || hs.joined_any(&user, &allowed)).await?;
        if !member {
            return Ok(None);
        }
    }
    Ok(Some(with_children_state(chunk)))
}

/// Clients are promised `children_state` on every room.
fn with_children_state(mut chunk: Value) -> Value {
    if chunk.get("children_state").is_none() {
        chunk["children_state"] = json!([]);
    }
    chunk
}
