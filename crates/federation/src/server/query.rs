//! Queries: `/version`, profiles and room aliases of this server's users and rooms, its
//! public room directory, and whom an OpenID token vouches for (`/openid/userinfo`, asked by
//! third parties without signatures).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::membership::query_values;
use crate::auth::{Origin, Signed};
use crate::{FedError, Federation, blocking};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new()
        .route("/_matrix/federation/v1/version", get(version))
        .route("/_matrix/federation/v1/query/profile", get(profile))
        .route("/_matrix/federation/v1/query/directory", get(directory))
        .route("/_matrix/federation/v1/publicRooms", get(public_rooms).post(search_public_rooms))
        .route("/_matrix/federation/v1/openid/userinfo", get(openid_userinfo))
}

async fn openid_userinfo(
    State(fed): State<Arc<Federation>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let Some(token) = query_values(&query, "access_token").pop() else {
        return Err(FedError::Matrix {
            status: 401,
            errcode: "M_MISSING_TOKEN",
            message: "Access Token required".into(),
        });
    };
    let hs = fed.hs.clone();
    match blocking(move || hs.openid_user(&token)).await? {
        Some(user_id) => Ok(Json(json!({ "sub": user_id }))),
        None => Err(FedError::Matrix {
            status: 401,
            errcode: "M_UNKNOWN_TOKEN",
            message: "Access Token unknown or expired".into(),
        }),
    }
}

async fn version() -> Json<Value> {
    Json(json!({ "server": { "name": "Tandem", "version": env!("CARGO_PKG_VERSION") } }))
}

async fn profile(
    State(fed): State<Arc<Federation>>,
    Origin(_origin): Origin,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let user = query_values(&query, "user_id").pop().ok_or_else(|| FedError::missing_param("user_id is required"))?;
    let field = query_values(&query, "field").pop();
    let hs = fed.hs.clone();
    let local = user.split_once(':').is_some_and(|(_, s)| s == fed.server_name());
    if !local {
        return Err(FedError::not_found("The user is not on this server"));
    }
    let profile = blocking(move || {
        if hs.account(&user)?.is_none() {
            return Err(tandem_core::Error::not_found("Profile not found"));
        }
        Ok(hs.profile(&user)?.unwrap_or_default())
    })
    .await?;
    let mut out = serde_json::Map::new();
    for (k, v) in profile {
        if field.as_deref().is_none_or(|f| f == k) {
            out.insert(k, v);
        }
    }
    Ok(Json(Value::Object(out)))
}

async fn directory(
    State(fed): State<Arc<Federation>>,
    Origin(_origin): Origin,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let alias =
        query_values(&query, "room_alias").pop().ok_or_else(|| FedError::missing_param("room_alias is required"))?;
    let hs = fed.hs.clone();
    let (room, servers) = blocking(move || {
        let room = hs.alias_target(&alias)?.ok_or_else(|| tandem_core::Error::not_found("Room alias not found"))?;
        let mut servers: Vec<String> = hs.room_servers(&room).map(|s| s.into_iter().collect()).unwrap_or_default();
        let own = hs.server_name().to_owned();
        servers.retain(|s| *s != own);
        servers.insert(0, own);
        Ok((room, servers))
    })
    .await?;
    Ok(Json(json!({ "room_id": room, "servers": servers })))
}

async fn public_rooms(
    State(fed): State<Arc<Federation>>,
    Origin(_origin): Origin,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, FedError> {
    let limit = query_values(&query, "limit").pop().map(|l| l.parse::<usize>()).transpose();
    let limit = limit.map_err(|_| FedError::invalid_param("limit must be a number"))?;
    let since = query_values(&query, "since").pop();
    let hs = fed.hs.clone();
    Ok(Json(blocking(move || hs.public_rooms(limit, since.as_deref(), None)).await?))
}

async fn search_public_rooms(
    State(fed): State<Arc<Federation>>,
    Signed { body, .. }: Signed,
) -> Result<Json<Value>, FedError> {
    let limit = match body.get("limit") {
        None | Some(Value::Null) => None,
        Some(l) => Some(l.as_u64().ok_or_else(|| FedError::bad_json("limit must be a number"))? as usize),
    };
    let since = body.get("since").and_then(Value::as_str).map(str::to_owned);
    let term = body.pointer("/filter/generic_search_term").and_then(Value::as_str).map(str::to_owned);
    let hs = fed.hs.clone();
    Ok(Json(blocking(move || hs.public_rooms(limit, since.as_deref(), term.as_deref())).await?))
}
