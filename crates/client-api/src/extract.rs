//! Request extractors that fail the Matrix way: the access token (`M_MISSING_TOKEN`,
//! `M_UNKNOWN_TOKEN`), JSON bodies (`M_NOT_JSON`, `M_BAD_JSON`, `M_TOO_LARGE`) and query
//! strings (`M_INVALID_PARAM`); and [`blocking`], which runs engine calls off the async
//! workers.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiResult, MatrixError};
use crate::state::Api;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Auth {
    pub user_id: String,
    pub device_id: String,
}

fn access_token(parts: &Parts) -> Option<String> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION)
        && let Ok(h) = h.to_str()
        && let Some(token) = h.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "access_token").then(|| percent_decode(v))
    })
}

/// A query string's `name=value` pairs, decoded, repeated names kept (`Q` keeps one).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (percent_decode(k), percent_decode(v)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = b.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FromRequestParts<Api> for Auth {
    type Rejection = MatrixError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> ApiResult<Self> {
        let token = access_token(parts)
            .ok_or_else(|| MatrixError::new(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "Missing access token"))?;
        let hs = api.hs.clone();
        let ip = client_ip(parts, &api.config.trusted_proxies);
        let session = blocking(move || {
            let session = hs.authenticate(&token)?;
            hs.touch_device(&session, ip.as_deref())?;
            Ok(session)
        })
        .await?;
        Ok(Auth { user_id: session.user_id, device_id: session.device_id })
    }
}

/// The caller, if it sent an access token (a wrong one is still refused), for endpoints open
/// to unauthenticated clients too.
pub struct MaybeAuth(pub Option<Auth>);

impl FromRequestParts<Api> for MaybeAuth {
    type Rejection = MatrixError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> ApiResult<Self> {
        if access_token(parts).is_none() {
            return Ok(MaybeAuth(None));
        }
        Ok(MaybeAuth(Some(Auth::from_request_parts(parts, api).await?)))
    }
}

/// The client's address: the peer the listener saw, or, when that peer is a trusted reverse
/// proxy, the last address before it in `X-Forwarded-For` (the one the proxy itself added;
/// earlier entries are whatever the client claimed).
pub fn client_ip(parts: &Parts, trusted_proxies: &[IpAddr]) -> Option<String> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    let hops: Vec<IpAddr> = forwarded.join(",").split(',').filter_map(|h| h.trim().parse().ok()).collect();
    let client = hops.iter().rev().find(|ip| !trusted_proxies.contains(ip)).copied().unwrap_or(peer);
    Some(client.to_string())
}

/// The caller's address as an extractor (for rate limits); "unknown" when not served over TCP.
pub struct ClientIp(pub String);

impl FromRequestParts<Api> for ClientIp {
    type Rejection = MatrixError;
    async fn from_request_parts(parts: &mut Parts, api: &Api) -> ApiResult<Self> {
        Ok(ClientIp(client_ip(parts, &api.config.trusted_proxies).unwrap_or_else(|| "unknown".into())))
    }
}

/// A JSON request body deserialized into `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = MatrixError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                MatrixError::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "Request body too large")
            } else {
                MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", e.body_text())
            }
        })?;
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Content not JSON."))?
        };
        if !value.is_object() {
            return Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", "Content must be a JSON object."));
        }
        let parsed = serde_json::from_value(value).map_err(|e| MatrixError::bad_json(e.to_string()))?;
        Ok(JsonBody(parsed))
    }
}

/// A query string deserialized into `T`.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = MatrixError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| MatrixError::invalid_param(e.body_text()))
    }
}

/// Runs an engine call (which may block on disk) on the blocking pool.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> tandem_core::Result<T> + Send + 'static) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(MatrixError::from),
        Err(e) => {
            tracing::error!("engine task failed: {e}");
            Err(MatrixError::internal())
        }
    }
}
