//! Other servers' users' keys for a local client: `/keys/query` and `/keys/claim` fanned out to
//! their servers (all at once, each within the client's timeout, a server that fails named in
//! `failures`), and the device list resync (`/user/devices`) of a user sharing a room with us
//! whose cached list is empty or stale.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::network::Request;
use crate::server::Homeserver;
use crate::server_name::server_of;

/// How long a key query or claim waits for other servers, unless the client says.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The longest a client may have us wait.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The `timeout` of a query or claim.
fn remote_timeout(body: &Value) -> Duration {
    Duration::from_millis(body.get("timeout").and_then(Value::as_u64).unwrap_or(DEFAULT_TIMEOUT_MS).min(MAX_TIMEOUT_MS))
}

/// Records that `server` did not answer, as the spec's `failures` object does.
fn failed(answer: &mut Value, server: &str, why: String) {
    if !answer.get("failures").is_some_and(Value::is_object) {
        answer["failures"] = json!({});
    }
    answer["failures"][server] = json!({ "status": 503, "message": why });
}

impl Homeserver {
    /// `/keys/query` as `viewer`: local and cached users answered here, users sharing a room
    /// with `viewer` resynced first, everyone else asked of their servers.
    pub async fn keys_query(self: &Arc<Self>, viewer: &str, body: Value) -> Result<Value> {
        let wait = remote_timeout(&body);
        let v = viewer.to_owned();
        let mut q = self.blocking(move |hs| hs.query_keys(&v, &body)).await?;
        if q.resync.is_empty() && q.remote.is_empty() {
            return Ok(q.answer);
        }
        for (user_id, _) in &q.resync {
            let server = server_of(user_id).unwrap_or_default();
            match tokio::time::timeout(wait, self.resync_devices(user_id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed(&mut q.answer, server, e.to_string()),
                Err(_) => failed(&mut q.answer, server, "timed out".into()),
            }
        }
        let (v, resync, mut answer) = (viewer.to_owned(), q.resync, q.answer);
        answer = self
            .blocking(move |hs| {
                hs.answer_resynced(&v, &resync, &mut answer)?;
                Ok(answer)
            })
            .await?;
        let mut asks = tokio::task::JoinSet::new();
        for (server, users) in q.remote {
            let hs = self.clone();
            asks.spawn(async move {
                let request = Request::KeysQuery { body: json!({ "device_keys": users }) };
                let result = tokio::time::timeout(wait, hs.ask(&server, request)).await;
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
        Ok(answer)
    }

    /// `/keys/claim`: local users' keys claimed here, other servers' users' from their servers.
    pub async fn keys_claim(self: &Arc<Self>, body: Value) -> Result<Value> {
        let wait = remote_timeout(&body);
        let mut remote: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (user_id, devices) in body.get("one_time_keys").and_then(Value::as_object).into_iter().flatten() {
            if let Some(server) = server_of(user_id)
                && !self.is_local(user_id)
            {
                remote.entry(server.to_owned()).or_default().insert(user_id.clone(), devices.clone());
            }
        }
        let mut answer = self.blocking(move |hs| hs.claim_keys(&body)).await?;
        for (server, users) in remote {
            let request = Request::KeysClaim { body: json!({ "one_time_keys": users }) };
            match tokio::time::timeout(wait, self.ask(&server, request)).await {
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
        Ok(answer)
    }

    /// Fetches another server's user's devices from its server into the cache.
    pub async fn resync_devices(self: &Arc<Self>, user_id: &str) -> Result<()> {
        let server = server_of(user_id).ok_or_else(|| Error::bad_json("bad user id"))?;
        let answer = self.ask(server, Request::UserDevices { user_id: user_id.to_owned() }).await?;
        let u = user_id.to_owned();
        self.blocking(move |hs| hs.replace_remote_devices(&u, &answer)).await
    }
}
