//! Membership handshakes other servers start: `make_join`/`send_join`, `make_leave`/
//! `send_leave`, `make_knock`/`send_knock`, and `invite`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use tandem_core::rooms::receive::Pdu;

use crate::auth::{Origin, Signed};
use crate::inbound::rules_of;
use crate::{FedError, Federation, blocking};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new()
        .route("/_matrix/federation/v1/make_join/{room}/{user}", get(make_join))
        .route("/_matrix/federation/v1/make_leave/{room}/{user}", get(make_leave))
        .route("/_matrix/federation/v1/make_knock/{room}/{user}", get(make_knock))
        .route("/_matrix/federation/v2/send_join/{room}/{event}", put(send_join_v2))
        .route("/_matrix/federation/v1/send_join/{room}/{event}", put(send_join_v1))
        .route("/_matrix/federation/v2/send_leave/{room}/{event}", put(send_leave_v2))
        .route("/_matrix/federation/v1/send_leave/{room}/{event}", put(send_leave_v1))
        .route("/_matrix/federation/v1/send_knock/{room}/{event}", put(send_knock))
        .route("/_matrix/federation/v2/invite/{room}/{event}", put(invite))
}

/// The values of a repeated query parameter.
pub(crate) fn query_values(query: &Option<String>, name: &str) -> Vec<String> {
    query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
        .collect()
}

pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn template(
    fed: &Arc<Federation>,
    origin: &str,
    room: String,
    user: String,
    membership: &'static str,
    versions: Option<Vec<String>>,
) -> Result<Json<Value>, FedError> {
    if user.split_once(':').map(|(_, s)| s) != Some(origin) {
        return Err(FedError::forbidden("The user is not on the server asking"));
    }
    fed.check_acl(&room, origin).await?;
    let hs = fed.hs.clone();
    let resident = {
        let (hs, room) = (hs.clone(), room.clone());
        blocking(move || hs.is_resident(&room)).await?
    };
    if !resident {
        return Err(FedError::not_found("This server is not in the room"));
    }
    let (version, event) =
        blocking(move || hs.membership_template(&room, &user, membership, versions.as_deref())).await?;
    Ok(Json(json!({ "room_version": version, "event": event })))
}

async fn make_join(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path((room, user)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let mut versions = query_values(&query, "ver");
    if versions.is_empty() {
        versions.push("1".into());
    }
    template(&fed, &origin, room, user, "join", Some(versions)).await
}

async fn make_knock(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path((room, user)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let versions = query_values(&query, "ver");
    template(&fed, &origin, room, user, "knock", Some(versions)).await
}

async fn make_leave(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path((room, user)): Path<(String, String)>,
) -> Result<Json<Value>, FedError> {
    template(&fed, &origin, room, user, "leave", None).await
}

/// Checks and takes another server's signed membership event.
async fn accept(
    fed: &Arc<Federation>,
    origin: &str,
    room: &str,
    event_id: &str,
    body: &Value,
    membership: &'static str,
) -> Result<Pdu, FedError> {
    fed.check_acl(room, origin).await?;
    let hs = fed.hs.clone();
    let r = room.to_owned();
    let version = blocking(move || hs.room_version(&r)).await?;
    let rules = rules_of(&version).ok_or_else(|| FedError::bad_json("unsupported room version"))?;
    let countersigned;
    let body = if membership == "join" {
        let (hs, r, b) = (fed.hs.clone(), room.to_owned(), body.clone());
        countersigned = blocking(move || hs.authorise_restricted_join(&r, &b)).await?;
        &countersigned
    } else {
        body
    };
    let (id, json) = fed.verify_pdu(&rules, body).await.map_err(FedError::forbidden)?;
    if id != event_id {
        return Err(FedError::bad_json("The event id does not match the event"));
    }
    if body.get("room_id").and_then(Value::as_str) != Some(room) {
        return Err(FedError::bad_json("The event is for another room"));
    }
    let hs = fed.hs.clone();
    let (r, o) = (room.to_owned(), origin.to_owned());
    let pdu = blocking(move || hs.accept_membership(&r, &o, &Pdu { event_id: id, json }, membership)).await?;
    Ok(pdu)
}

async fn join_answer(
    fed: &Arc<Federation>,
    origin: &str,
    room: &str,
    event_id: &str,
    body: &Value,
) -> Result<Value, FedError> {
    let lock = fed.room_lock(room);
    let _guard = lock.lock().await;
    let pdu = accept(fed, origin, room, event_id, body, "join").await?;
    let hs = fed.hs.clone();
    let (id, r) = (pdu.event_id.clone(), room.to_owned());
    let (state, chain, servers) = blocking(move || {
        let (state, chain) = hs.state_ids_at(&id)?;
        Ok((hs.pdus(&state)?, hs.pdus(&chain)?, hs.room_servers(&r)?))
    })
    .await?;
    Ok(json!({
        "origin": fed.server_name(),
        "event": pdu.json,
        "state": state,
        "auth_chain": chain,
        "members_omitted": false,
        "servers_in_room": servers,
    }))
}

async fn send_join_v2(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    join_answer(&fed, &origin, &room, &event_id, &body).await.map(Json)
}

async fn send_join_v1(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let answer = join_answer(&fed, &origin, &room, &event_id, &body).await?;
    Ok(Json(json!([200, answer])))
}

async fn send_leave_v2(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    accept(&fed, &origin, &room, &event_id, &body, "leave").await?;
    Ok(Json(json!({})))
}

async fn send_leave_v1(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    accept(&fed, &origin, &room, &event_id, &body, "leave").await?;
    Ok(Json(json!([200, {}])))
}

async fn send_knock(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let pdu = accept(&fed, &origin, &room, &event_id, &body, "knock").await?;
    let hs = fed.hs.clone();
    let stripped = blocking(move || hs.stripped_state(&room, &pdu.event_id)).await?;
    Ok(Json(json!({ "knock_room_state": stripped })))
}

async fn invite(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let version = body.get("room_version").and_then(Value::as_str).unwrap_or("1").to_owned();
    let Some(rules) = rules_of(&version).filter(|_| tandem_core::rooms::SUPPORTED_VERSIONS.contains(&version.as_str()))
    else {
        return Err(FedError::Matrix {
            status: 400,
            errcode: "M_INCOMPATIBLE_ROOM_VERSION",
            message: format!("Room version {version} is not supported here"),
        });
    };
    let event = body.get("event").cloned().ok_or_else(|| FedError::bad_json("event missing"))?;
    if event.get("room_id").and_then(Value::as_str) != Some(room.as_str()) {
        return Err(FedError::bad_json("The event is for another room"));
    }
    // A server the room's ACL bans may not invite into it (known when this server is in it).
    fed.check_acl(&room, &origin).await?;
    let (id, json) = fed.verify_pdu(&rules, &event).await.map_err(FedError::forbidden)?;
    if id != event_id {
        return Err(FedError::bad_json("The event id does not match the event"));
    }
    let stripped = body.get("invite_room_state").and_then(Value::as_array).cloned().unwrap_or_default();
    let hs = fed.hs.clone();
    let signed = blocking(move || hs.receive_invite(&origin, &version, &Pdu { event_id: id, json }, stripped)).await?;
    Ok(Json(json!({ "event": signed.json })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = Some("ver=10&ver=11&x=%21a%3Ab&ver=12".to_owned());
        assert_eq!(query_values(&q, "ver"), vec!["10", "11", "12"]);
        assert_eq!(query_values(&q, "x"), vec!["!a:b"]);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%4"), "%4");
        assert!(query_values(&None, "ver").is_empty());
    }
}
