//! Inbound request authentication: every federation request carries an `X-Matrix`
//! Authorization header, the origin's signature over the method, the path, both server names
//! and the body. [`Origin`] (no body) and [`Signed`] (a JSON body) check it and the server
//! policy before a handler runs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use serde_json::{Value, json};

use tandem_wire::{XMatrix, parse_x_matrix, valid_server_name};

use crate::keys::canonical;
use crate::{FedError, Federation};

/// The authenticated server that sent a request without a body.
pub struct Origin(pub String);

/// The authenticated server that sent a request, and its JSON body.
pub struct Signed {
    pub origin: String,
    pub body: Value,
}

/// What can be checked of a request before its body is read: the header's form, the
/// destination, the origin's name and the server policy. A request failing these costs no
/// body read, no JSON parse and no key fetch.
fn precheck(fed: &Federation, parts: &Parts) -> Result<XMatrix, FedError> {
    let header = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| FedError::unauthorized("Missing Authorization header"))?;
    let x = parse_x_matrix(header).ok_or_else(|| FedError::unauthorized("Malformed X-Matrix Authorization header"))?;
    if let Some(d) = &x.destination
        && d != fed.server_name()
    {
        return Err(FedError::unauthorized("The request is for another server"));
    }
    // A malformed origin gets no discovery or key fetch at all.
    if !valid_server_name(&x.origin) {
        return Err(FedError::unauthorized("The origin is not a valid server name"));
    }
    if !fed.config.policy.allows(&x.origin) {
        return Err(FedError::forbidden(format!("Federation with {} is not allowed", x.origin)));
    }
    Ok(x)
}

async fn authenticate(fed: &Federation, parts: &Parts, content: Option<&Value>) -> Result<String, FedError> {
    let x = precheck(fed, parts)?;
    let uri = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str());
    let mut request = json!({
        "method": parts.method.as_str(),
        "uri": uri,
        "origin": x.origin,
        "destination": fed.server_name(),
        "signatures": { &x.origin: { &x.key: x.sig } },
    });
    if let Some(content) = content {
        request["content"] = content.clone();
    }
    let keys = fed.server_keys(&x.origin, std::slice::from_ref(&x.key)).await.map_err(|e| {
        tracing::info!("cannot get keys of {}: {e}", x.origin);
        FedError::unauthorized(format!("Cannot get the signing keys of {}", x.origin))
    })?;
    // Requests are signed now: only a current key that has not expired may sign them (an old
    // verify key is for events it signed before, and a key past `valid_until_ts` is not
    // trusted even when its server cannot be reached to renew it).
    let key = keys
        .get(&x.key)
        .filter(|k| k.expired_ts.is_none() && k.valid_until_ts > crate::now_ms())
        .ok_or_else(|| FedError::unauthorized("Unknown or expired signing key"))?;
    let mut set = PublicKeySet::new();
    set.insert(x.key.clone(), ruma::serde::Base64::parse(&key.key).map_err(|_| FedError::unauthorized("Bad key"))?);
    let mut map = PublicKeyMap::new();
    map.insert(x.origin.clone(), set);
    let obj = canonical(&request).ok_or_else(|| FedError::bad_json("The request is not canonical JSON"))?;
    ruma::signatures::verify_json(&map, &obj).map_err(|_| FedError::unauthorized("Invalid signature"))?;
    fed.peer_alive(&x.origin);
    Ok(x.origin)
}

impl FromRequestParts<Arc<Federation>> for Origin {
    type Rejection = FedError;

    async fn from_request_parts(parts: &mut Parts, fed: &Arc<Federation>) -> Result<Self, FedError> {
        authenticate(fed, parts, None).await.map(Origin)
    }
}

impl FromRequest<Arc<Federation>> for Signed {
    type Rejection = FedError;

    async fn from_request(req: Request, fed: &Arc<Federation>) -> Result<Self, FedError> {
        let (parts, body) = req.into_parts();
        precheck(fed, &parts)?;
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), fed)
            .await
            .map_err(|e| FedError::Matrix { status: 413, errcode: "M_TOO_LARGE", message: e.to_string() })?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| FedError::Matrix {
            status: 400,
            errcode: "M_NOT_JSON",
            message: "Content not JSON.".into(),
        })?;
        let origin = authenticate(fed, &parts, Some(&body)).await?;
        Ok(Signed { origin, body })
    }
}
