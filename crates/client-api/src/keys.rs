//! End-to-end encryption: keys upload, query and claim (other servers' users through their
//! servers), key changes, cross-signing keys and signatures, and `sendToDevice`.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::account::require_password;
use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, JsonBody, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/keys/upload", post(upload))
        .route("/_matrix/client/v3/keys/query", post(query))
        .route("/_matrix/client/v3/keys/claim", post(claim))
        .route("/_matrix/client/v3/keys/changes", get(changes))
        .route("/_matrix/client/v3/keys/device_signing/upload", post(upload_signing_keys))
        .route("/_matrix/client/v3/keys/signatures/upload", post(upload_signatures))
        .route(
            "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
            put(put_dehydrated).get(get_dehydrated).delete(delete_dehydrated),
        )
        .route(
            "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{device}/events",
            post(dehydrated_events),
        )
        .route("/_matrix/client/v3/sendToDevice/{kind}/{txn}", put(send_to_device))
}

async fn upload(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.upload_keys(&auth.user_id, &auth.device_id, &body)).await?))
}

/// How long a key query or claim waits for other servers, unless the client says.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

fn remote_timeout(body: &Value) -> Duration {
    Duration::from_millis(body.get("timeout").and_then(Value::as_u64).unwrap_or(DEFAULT_TIMEOUT_MS).min(60_000))
}

/// Records that `server` did not answer, as the spec's `failures` object does.
fn failed(answer: &mut Value, server: &str, why: String) {
    if !answer.get("failures").is_some_and(Value::is_object) {
        answer["failures"] = json!({});
    }
    answer["failures"][server] = json!({ "status": 503, "message": why });
}

async fn query(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let wait = remote_timeout(&body);
    let (hs, user) = (api.hs.clone(), auth.user_id.clone());
    let mut q = blocking(move || hs.query_keys(&user, &body)).await?;
    if q.resync.is_empty() && q.remote.is_empty() {
        return Ok(Json(q.answer));
    }
    let network = api.hs.network()?;
    // Users sharing a room with the asker: fetch their device lists into the cache.
    for (user_id, _) in &q.resync {
        match tokio::time::timeout(wait, network.resync_devices(user_id.clone())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed(&mut q.answer, user_id.split_once(':').map_or("", |(_, s)| s), e.to_string()),
            Err(_) => failed(&mut q.answer, user_id.split_once(':').map_or("", |(_, s)| s), "timed out".into()),
        }
    }
    let (hs, user, resync, mut answer) = (api.hs.clone(), auth.user_id.clone(), q.resync, q.answer);
    answer = blocking(move || {
        hs.answer_resynced(&user, &resync, &mut answer)?;
        Ok(answer)
    })
    .await?;
    // Everyone else: ask their servers, all at once.
    let mut asks = tokio::task::JoinSet::new();
    for (server, users) in q.remote {
        let network = network.clone();
        asks.spawn(async move {
            let request = json!({ "device_keys": users });
            let result = tokio::time::timeout(wait, network.query_keys(server.clone(), request)).await;
            (server, users, result)
        });
    }
    while let Some(done) = asks.join_next().await {
        let Ok((server, users, result)) = done else { continue };
        match result {
            Ok(Ok(remote)) => {
                for field in ["device_keys", "master_keys", "self_signing_keys"] {
                    for (user_id, v) in remote.get(field).and_then(Value::as_object).into_iter().flatten() {
                        // A server answers for its own users only.
                        if users.contains_key(user_id) {
                            if answer.get(field).is_none() {
                                answer[field] = json!({});
                            }
                            answer[field][user_id] = v.clone();
                        }
                    }
                }
            }
            Ok(Err(e)) => failed(&mut answer, &server, e.to_string()),
            Err(_) => failed(&mut answer, &server, "timed out".into()),
        }
    }
    Ok(Json(answer))
}

async fn claim(State(api): State<Api>, _auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let wait = remote_timeout(&body);
    let mut remote: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (user_id, devices) in body.get("one_time_keys").and_then(Value::as_object).into_iter().flatten() {
        if let Some((_, server)) = user_id.split_once(':')
            && server != api.config.server_name
        {
            remote.entry(server.to_owned()).or_default().insert(user_id.clone(), devices.clone());
        }
    }
    let hs = api.hs.clone();
    let mut answer = blocking(move || hs.claim_keys(&body)).await?;
    if remote.is_empty() {
        return Ok(Json(answer));
    }
    let network = api.hs.network()?;
    for (server, users) in remote {
        let request = json!({ "one_time_keys": users });
        match tokio::time::timeout(wait, network.claim_keys(server.clone(), request)).await {
            Ok(Ok(keys)) => {
                for (user_id, v) in keys.get("one_time_keys").and_then(Value::as_object).into_iter().flatten() {
                    if users.contains_key(user_id) {
                        answer["one_time_keys"][user_id] = v.clone();
                    }
                }
            }
            Ok(Err(e)) => failed(&mut answer, &server, e.to_string()),
            Err(_) => failed(&mut answer, &server, "timed out".into()),
        }
    }
    Ok(Json(answer))
}

/// `/keys/device_signing/upload`: replacing existing cross-signing keys needs the password.
async fn upload_signing_keys(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (hs, user, b) = (api.hs.clone(), auth.user_id.clone(), body.clone());
    if blocking(move || hs.cross_signing_upload_needs_auth(&user, &b)).await? {
        require_password(&api, &auth, body.get("auth")).await?;
    }
    let hs = api.hs.clone();
    blocking(move || hs.upload_cross_signing_keys(&auth.user_id, &body)).await?;
    Ok(ok())
}

async fn upload_signatures(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let failures = blocking(move || hs.upload_signatures(&auth.user_id, &body)).await?;
    Ok(Json(json!({ "failures": failures })))
}

#[derive(Deserialize)]
struct ChangesQuery {
    from: String,
    to: String,
}

async fn changes(State(api): State<Api>, auth: Auth, Q(q): Q<ChangesQuery>) -> ApiResult<Json<Value>> {
    let parse = |t: &str| {
        tandem_core::rooms::messages::parse_token(t).ok_or_else(|| MatrixError::invalid_param("Invalid token"))
    };
    let (from, to) = (parse(&q.from)?, parse(&q.to)?);
    let hs = api.hs.clone();
    let (changed, left) = blocking(move || hs.key_changes(&auth.user_id, from, to)).await?;
    Ok(Json(json!({ "changed": changed, "left": left })))
}

#[derive(Deserialize)]
struct ToDeviceBody {
    messages: Value,
}

async fn send_to_device(
    State(api): State<Api>,
    auth: Auth,
    Path((kind, txn)): Path<(String, String)>,
    JsonBody(body): JsonBody<ToDeviceBody>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.send_to_device(&auth.user_id, &auth.device_id, &kind, &txn, &body.messages)).await?;
    Ok(ok())
}

async fn put_dehydrated(State(api): State<Api>, auth: Auth, JsonBody(body): JsonBody<Value>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let device_id = blocking(move || hs.put_dehydrated_device(&auth.user_id, &body)).await?;
    Ok(Json(json!({ "device_id": device_id })))
}

async fn get_dehydrated(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.get_dehydrated_device(&auth.user_id)).await?))
}

async fn delete_dehydrated(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let device_id = blocking(move || hs.delete_dehydrated_device(&auth.user_id)).await?;
    Ok(Json(json!({ "device_id": device_id })))
}

async fn dehydrated_events(
    State(api): State<Api>,
    auth: Auth,
    Path(device): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let next = body.get("next_batch").and_then(Value::as_str).map(str::to_owned);
    let hs = api.hs.clone();
    Ok(Json(blocking(move || hs.dehydrated_device_events(&auth.user_id, &device, next.as_deref())).await?))
}
