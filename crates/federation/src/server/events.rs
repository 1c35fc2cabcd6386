//! What other servers read of a room: single events, the state at an event, auth chains,
//! history (`/backfill`) and gaps (`/get_missing_events`). Only servers with a member joined to
//! the room may read it.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::membership::query_values;
use crate::auth::{Origin, Signed};
use crate::{FedError, Federation, blocking, now_ms};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new()
        .route("/_matrix/federation/v1/event/{event}", get(event))
        .route("/_matrix/federation/v1/state_ids/{room}", get(state_ids))
        .route("/_matrix/federation/v1/state/{room}", get(state))
        .route("/_matrix/federation/v1/event_auth/{room}/{event}", get(event_auth))
        .route("/_matrix/federation/v1/backfill/{room}", get(backfill))
        .route("/_matrix/federation/v1/get_missing_events/{room}", post(missing_events))
        .route("/_matrix/federation/v1/timestamp_to_event/{room}", get(timestamp_to_event))
}

async fn ensure_in_room(fed: &Arc<Federation>, room: &str, origin: &str) -> Result<(), FedError> {
    fed.hs.check_acl(room, origin).await?;
    let (hs, r, o) = (fed.hs.clone(), room.to_owned(), origin.to_owned());
    if blocking(move || hs.server_in_room(&r, &o)).await? {
        Ok(())
    } else {
        Err(FedError::forbidden("Your server has no member in this room"))
    }
}

async fn event(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, FedError> {
    let hs = fed.hs.clone();
    let id = event_id.clone();
    let meta = blocking(move || hs.event_meta(&id)).await?.ok_or_else(|| FedError::not_found("Unknown event"))?;
    ensure_in_room(&fed, &meta.room_id, &origin).await?;
    let hs = fed.hs.clone();
    let pdu = blocking(move || match hs.pdu(&event_id)? {
        Some(pdu) => hs.for_server(&origin, &event_id, Value::Object(pdu)).map(Some),
        None => Ok(None),
    })
    .await?
    .ok_or_else(|| FedError::not_found("Unknown event"))?;
    Ok(Json(json!({ "origin": fed.server_name(), "origin_server_ts": now_ms(), "pdus": [pdu] })))
}

async fn state_at(
    fed: &Arc<Federation>,
    origin: &str,
    room: &str,
    query: &Option<String>,
) -> Result<(Vec<String>, Vec<String>), FedError> {
    ensure_in_room(fed, room, origin).await?;
    let event_id =
        query_values(query, "event_id").pop().ok_or_else(|| FedError::missing_param("event_id is required"))?;
    let hs = fed.hs.clone();
    let r = room.to_owned();
    blocking(move || {
        let meta = hs.event_meta(&event_id)?.filter(|m| m.room_id == r);
        if meta.is_none() {
            return Err(tandem_core::Error::not_found("Unknown event"));
        }
        hs.state_ids_at(&event_id)
    })
    .await
}

async fn state_ids(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let (state, chain) = state_at(&fed, &origin, &room, &query).await?;
    Ok(Json(json!({ "pdu_ids": state, "auth_chain_ids": chain })))
}

async fn state(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let (state, chain) = state_at(&fed, &origin, &room, &query).await?;
    let hs = fed.hs.clone();
    let (pdus, chain) = blocking(move || Ok((hs.pdus(&state)?, hs.pdus(&chain)?))).await?;
    Ok(Json(json!({ "pdus": pdus, "auth_chain": chain })))
}

async fn event_auth(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path((room, event_id)): Path<(String, String)>,
) -> Result<Json<Value>, FedError> {
    ensure_in_room(&fed, &room, &origin).await?;
    let hs = fed.hs.clone();
    let chain = blocking(move || {
        if hs.event_meta(&event_id)?.is_none_or(|m| m.room_id != room) {
            return Err(tandem_core::Error::not_found("Unknown event"));
        }
        let ids = hs.auth_chain(&[event_id])?;
        hs.pdus(&ids)
    })
    .await?;
    Ok(Json(json!({ "auth_chain": chain })))
}

async fn backfill(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    ensure_in_room(&fed, &room, &origin).await?;
    let from = query_values(&query, "v");
    let limit: usize = query_values(&query, "limit").pop().and_then(|l| l.parse().ok()).unwrap_or(10).min(100);
    if from.is_empty() {
        return Err(FedError::missing_param("v is required"));
    }
    let hs = fed.hs.clone();
    let pdus = blocking(move || hs.backfill(&origin, &room, &from, limit)).await?;
    Ok(Json(json!({ "origin": fed.server_name(), "origin_server_ts": now_ms(), "pdus": pdus })))
}

async fn missing_events(
    State(fed): State<Arc<Federation>>,
    Path(room): Path<String>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    ensure_in_room(&fed, &room, &origin).await?;
    let ids = |field: &str| -> Vec<String> {
        body.get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (earliest, latest) = (ids("earliest_events"), ids("latest_events"));
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10).min(100) as usize;
    let hs = fed.hs.clone();
    let events = blocking(move || hs.missing_between(&origin, &room, &earliest, &latest, limit)).await?;
    Ok(Json(json!({ "events": events })))
}

async fn timestamp_to_event(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path(room): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    ensure_in_room(&fed, &room, &origin).await?;
    let ts: u64 = query_values(&query, "ts")
        .pop()
        .ok_or_else(|| FedError::missing_param("ts is required"))?
        .parse()
        .map_err(|_| FedError::invalid_param("ts must be a timestamp in milliseconds"))?;
    let forward = match query_values(&query, "dir").pop().as_deref() {
        Some("f") => true,
        Some("b") => false,
        Some(_) => return Err(FedError::invalid_param("dir must be f or b")),
        None => return Err(FedError::missing_param("dir is required")),
    };
    let hs = fed.hs.clone();
    let found = blocking(move || hs.event_near(&room, ts, forward, |id| hs.server_may_see(&origin, id))).await?;
    let (event_id, origin_server_ts) =
        found.ok_or_else(|| FedError::not_found(format!("Unable to find event from {ts}")))?;
    Ok(Json(json!({ "event_id": event_id, "origin_server_ts": origin_server_ts })))
}
