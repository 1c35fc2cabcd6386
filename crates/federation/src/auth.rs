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

use crate::keys::canonical;
use crate::{FedError, Federation};

/// The authenticated server that sent a request without a body.
pub struct Origin(pub String);

/// The authenticated server that sent a request, and its JSON body.
pub struct Signed {
    pub origin: String,
    pub body: Value,
}

/// The fields of an `X-Matrix` header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct XMatrix {
    pub origin: String,
    pub destination: Option<String>,
    pub key: String,
    pub sig: String,
}

pub fn parse_x_matrix(header: &str) -> Option<XMatrix> {
    let params = header.strip_prefix("X-Matrix ").or_else(|| header.strip_prefix("x-matrix "))?;
    let mut out = XMatrix::default();
    for param in split_params(params) {
        let (name, value) = param.split_once('=')?;
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => value.to_owned(),
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "origin" => out.origin = value,
            "destination" => out.destination = Some(value),
            "key" => out.key = value,
            "sig" => out.sig = value,
            _ => {}
        }
    }
    (!out.origin.is_empty() && !out.key.is_empty() && !out.sig.is_empty()).then_some(out)
}

/// Whether `name` is a server name by the spec's grammar (host, optional port).
pub fn valid_server_name(name: &str) -> bool {
    name.len() <= 255 && <&ruma::ServerName>::try_from(name).is_ok()
}

/// Splits on commas outside double quotes.
fn split_params(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let x = parse_x_matrix(r#"X-Matrix origin="a.org",destination="b.org",key="ed25519:k",sig="ab/c+""#).unwrap();
        assert_eq!(x.origin, "a.org");
        assert_eq!(x.destination.as_deref(), Some("b.org"));
        assert_eq!(x.key, "ed25519:k");
        assert_eq!(x.sig, "ab/c+");
        let unquoted = parse_x_matrix("X-Matrix origin=127.0.0.1:8481,key=ed25519:a_1,sig=xyz").unwrap();
        assert_eq!(unquoted.origin, "127.0.0.1:8481");
        assert!(parse_x_matrix("Bearer abc").is_none());
        assert!(parse_x_matrix(r#"X-Matrix origin="a.org""#).is_none());
    }
}
