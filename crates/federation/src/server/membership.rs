//! Membership handshakes other servers start: `make_join`/`send_join`, `make_leave`/
//! `send_leave`, `make_knock`/`send_knock`, and `invite`: parsed here, run by the engine
//! (`tandem_core::rooms::handshake`).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::{Origin, Signed};
use crate::{FedError, Federation};

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
    template(&fed, &origin, &room, &user, "join", Some(versions)).await
}

async fn make_knock(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path((room, user)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let versions = query_values(&query, "ver");
    template(&fed, &origin, &room, &user, "knock", Some(versions)).await
}

async fn make_leave(
    State(fed): State<Arc<Federation>>,
    Origin(origin): Origin,
    Path((room, user)): Path<(String, String)>,
) -> Result<Json<Value>, FedError> {
    template(&fed, &origin, &room, &user, "leave", None).await
}

async fn template(
    fed: &Federation,
    origin: &str,
    room: &str,
    user: &str,
    membership: &'static str,
    versions: Option<Vec<String>>,
) -> Result<Json<Value>, FedError> {
    let (version, event) = fed.hs.template_for(origin, room, user, membership, versions).await?;
    Ok(Json(json!({ "room_version": version, "event": event })))
}

async fn send_join_v2(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let omit_members = query_values(&query, "omit_members").pop().as_deref() == Some("true");
    Ok(Json(fed.hs.send_join_answer(&origin, &room, &event_id, body, omit_members).await?))
}

async fn send_join_v1(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let answer = fed.hs.send_join_answer(&origin, &room, &event_id, body, false).await?;
    Ok(Json(json!([200, answer])))
}

async fn send_leave_v2(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    fed.hs.accept_signed_membership(&origin, &room, &event_id, body, "leave").await?;
    Ok(Json(json!({})))
}

async fn send_leave_v1(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    fed.hs.accept_signed_membership(&origin, &room, &event_id, body, "leave").await?;
    Ok(Json(json!([200, {}])))
}

async fn send_knock(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    Ok(Json(fed.hs.send_knock_answer(&origin, &room, &event_id, body).await?))
}

async fn invite(
    State(fed): State<Arc<Federation>>,
    Path((room, event_id)): Path<(String, String)>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    Ok(Json(fed.hs.invite_from(&origin, &room, &event_id, body).await?))
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
