//! Signing keys: ours as `/_matrix/key/v2/server` publishes them, other servers' fetched from
//! them (or from a notary) and cached until they expire, and the signature checks of requests
//! and events that use them.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use reqwest::Method;
use ruma::CanonicalJsonObject;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use serde_json::{Value, json};
use tandem_core::remote_keys::RemoteKey;

use crate::{FedError, Federation, blocking, now_ms};

/// How long others may cache our key.
const OUR_KEY_VALIDITY_MS: u64 = 24 * 3600 * 1000;

/// The longest a fetched key is trusted, whatever `valid_until_ts` the server gave (the spec's
/// rule for room versions 5 on, applied to all: a stolen key is not trusted for years).
const MAX_KEY_VALIDITY_MS: u64 = 7 * 24 * 3600 * 1000;
/// How long a server whose keys could not be fetched is not asked again (a request naming a
/// new origin would otherwise make this server fetch on every request).
const FAILED_FETCH_BACKOFF: Duration = Duration::from_secs(60);
/// The most servers held in each in-memory key map; past it the least recently used goes (the
/// database keeps every key, so nothing is lost but a re-read).
const MAX_CACHED_SERVERS: NonZeroUsize = NonZeroUsize::new(10_000).expect("not zero");
/// The most servers one notary query may ask about.
pub const MAX_NOTARY_SERVERS: usize = 50;

/// Other servers' keys in memory (every request and event needs them), their key documents
/// as they signed them (for answering notary queries), and recent failures to fetch them.
/// Each holds the [`MAX_CACHED_SERVERS`] servers used most recently: a flood of new server
/// names evicts the least used, not the keys of the servers we talk to all day.
pub struct KeyCache {
    known: Mutex<LruCache<String, BTreeMap<String, RemoteKey>>>,
    documents: Mutex<LruCache<String, Value>>,
    failed: Mutex<LruCache<String, Instant>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            known: Mutex::new(LruCache::new(MAX_CACHED_SERVERS)),
            documents: Mutex::new(LruCache::new(MAX_CACHED_SERVERS)),
            failed: Mutex::new(LruCache::new(MAX_CACHED_SERVERS)),
        }
    }
}

fn locked<V>(map: &Mutex<LruCache<String, V>>) -> std::sync::MutexGuard<'_, LruCache<String, V>> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

impl Federation {
    /// Our key document, signed.
    pub fn own_key_document(&self) -> Value {
        let key = self.hs.signing_key();
        let doc = json!({
            "server_name": self.server_name(),
            "valid_until_ts": now_ms() + OUR_KEY_VALIDITY_MS,
            "verify_keys": { key.key_id(): { "key": key.public_key_base64() } },
            "old_verify_keys": self.hs.old_signing_keys(),
        });
        self.sign(doc)
    }

    /// `value` with our signature added.
    pub fn sign(&self, value: Value) -> Value {
        let Ok(mut obj) = ruma::canonical_json::try_from_json_map(value.as_object().cloned().unwrap_or_default())
        else {
            return value;
        };
        let key = self.hs.signing_key();
        if key.sign_json(self.server_name(), &mut obj).is_err() {
            return value;
        }
        serde_json::to_value(obj).unwrap_or(value)
    }

    /// The keys of `server`, fetching them if none known is still valid or `wanted` is missing.
    pub async fn server_keys(&self, server: &str, wanted: &[String]) -> Result<BTreeMap<String, RemoteKey>, FedError> {
        if server == self.server_name() {
            let key = self.hs.signing_key();
            let own = RemoteKey { key: key.public_key_base64(), valid_until_ts: u64::MAX, expired_ts: None };
            return Ok(BTreeMap::from([(key.key_id(), own)]));
        }
        let cached = locked(&self.keys.known).get(server).cloned();
        let known = match cached {
            Some(keys) => keys,
            None => {
                let hs = self.hs.clone();
                let name = server.to_owned();
                let keys = blocking(move || hs.remote_keys(&name)).await?;
                self.remember(server, &keys);
                keys
            }
        };
        let now = now_ms();
        let fresh = |keys: &BTreeMap<String, RemoteKey>| {
            wanted.iter().all(|id| keys.get(id).is_some_and(|k| k.valid_until_ts > now || k.expired_ts.is_some()))
                && (!wanted.is_empty() || keys.values().any(|k| k.valid_until_ts > now))
        };
        if fresh(&known) {
            return Ok(known);
        }
        let recently_failed = locked(&self.keys.failed).get(server).is_some_and(|t| t.elapsed() < FAILED_FETCH_BACKOFF);
        let fetched = if recently_failed {
            Err(FedError::Remote {
                server: server.to_owned(),
                status: None,
                errcode: None,
                message: "its keys could not be fetched a moment ago".into(),
            })
        } else {
            self.fetch_keys(server).await
        };
        match fetched {
            Ok(keys) => {
                self.remember(server, &keys);
                Ok(keys)
            }
            Err(e) => {
                if !recently_failed {
                    locked(&self.keys.failed).put(server.to_owned(), Instant::now());
                }
                // An unreachable server's keys we already hold still verify what they signed
                // while they were valid; the callers check validity against the time of use.
                if known.is_empty() { Err(e) } else { Ok(known) }
            }
        }
    }

    fn remember(&self, server: &str, keys: &BTreeMap<String, RemoteKey>) {
        let mut known = locked(&self.keys.known);
        // A fresh document is the whole truth about current keys: a key the server no longer
        // lists as current is dropped (unless it moved to `old_verify_keys`, which `keys` has).
        let entry = known.get_or_insert_mut(server.to_owned(), BTreeMap::new);
        entry.retain(|id, k| keys.contains_key(id) || k.expired_ts.is_some());
        entry.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    async fn fetch_keys(&self, server: &str) -> Result<BTreeMap<String, RemoteKey>, FedError> {
        let direct = self.client.unsigned(Method::GET, server, "/_matrix/key/v2/server", None).await;
        let doc = match direct {
            Ok(doc) => doc,
            Err(e) => {
                let mut found = None;
                for notary in &self.config.trusted_key_servers {
                    let body = json!({ "server_keys": { server: {} } });
                    if let Ok(answer) =
                        self.client.unsigned(Method::POST, notary, "/_matrix/key/v2/query", Some(&body)).await
                        && let Some(doc) = answer
                            .get("server_keys")
                            .and_then(Value::as_array)
                            .and_then(|docs| docs.iter().find(|d| d["server_name"] == server))
                    {
                        found = Some(doc.clone());
                        break;
                    }
                }
                found.ok_or(e)?
            }
        };
        let keys = self.check_key_document(server, &doc)?;
        locked(&self.keys.documents).put(server.to_owned(), doc);
        locked(&self.keys.failed).pop(server);
        let hs = self.hs.clone();
        let (name, to_store) = (server.to_owned(), keys.clone());
        blocking(move || hs.store_remote_keys(&name, &to_store)).await?;
        Ok(keys)
    }

    /// The keys a document publishes, if it is `server`'s and signed by one of its own keys.
    fn check_key_document(&self, server: &str, doc: &Value) -> Result<BTreeMap<String, RemoteKey>, FedError> {
        let bad = |why: &str| FedError::Remote {
            server: server.to_owned(),
            status: None,
            errcode: None,
            message: format!("bad key document: {why}"),
        };
        if doc.get("server_name").and_then(Value::as_str) != Some(server) {
            return Err(bad("wrong server_name"));
        }
        let valid_until_ts =
            doc.get("valid_until_ts").and_then(Value::as_u64).unwrap_or(0).min(now_ms() + MAX_KEY_VALIDITY_MS);
        let mut keys = BTreeMap::new();
        let mut set = PublicKeySet::new();
        for (id, k) in doc.get("verify_keys").and_then(Value::as_object).into_iter().flatten() {
            let Some(b64) = k.get("key").and_then(Value::as_str) else { continue };
            keys.insert(id.clone(), RemoteKey { key: b64.to_owned(), valid_until_ts, expired_ts: None });
            if let Some(bytes) = decode(b64) {
                set.insert(id.clone(), ruma::serde::Base64::new(bytes));
            }
        }
        for (id, k) in doc.get("old_verify_keys").and_then(Value::as_object).into_iter().flatten() {
            let Some(b64) = k.get("key").and_then(Value::as_str) else { continue };
            let expired = k.get("expired_ts").and_then(Value::as_u64).unwrap_or(0);
            keys.insert(
                id.clone(),
                RemoteKey { key: b64.to_owned(), valid_until_ts: expired, expired_ts: Some(expired) },
            );
        }
        let mut map = PublicKeyMap::new();
        map.insert(server.to_owned(), set);
        let obj = canonical(doc).ok_or_else(|| bad("not canonical JSON"))?;
        ruma::signatures::verify_json(&map, &obj).map_err(|e| bad(&e.to_string()))?;
        Ok(keys)
    }

    /// A key map holding the keys of every server in `servers` that we could get and that
    /// were valid at `at` (ms since the epoch): a key is trusted for what was signed while it
    /// was in use, not for events dated after it expired.
    pub async fn key_map(&self, servers: &[(String, Vec<String>)], at: u64) -> PublicKeyMap {
        let mut map = PublicKeyMap::new();
        for (server, wanted) in servers {
            let Ok(keys) = self.server_keys(server, wanted).await else { continue };
            let mut set = PublicKeySet::new();
            for (id, k) in keys {
                let valid_then = k.expired_ts.map_or(k.valid_until_ts, |e| e.max(k.valid_until_ts)) >= at;
                if valid_then && let Some(bytes) = decode(&k.key) {
                    set.insert(id, ruma::serde::Base64::new(bytes));
                }
            }
            map.insert(server.clone(), set);
        }
        map
    }

    /// Answers a notary query for `server`: its key document with our signature beside its own.
    pub async fn notarize(&self, server: &str) -> Option<Value> {
        if server == self.server_name() {
            return Some(self.own_key_document());
        }
        self.server_keys(server, &[]).await.ok()?;
        let doc = locked(&self.keys.documents).get(server).cloned()?;
        Some(self.sign(doc))
    }
}

pub(crate) fn canonical(value: &Value) -> Option<CanonicalJsonObject> {
    ruma::canonical_json::try_from_json_map(value.as_object()?.clone()).ok()
}

fn decode(b64: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    tandem_core::server_key::LENIENT_BASE64.decode(b64).ok()
}
