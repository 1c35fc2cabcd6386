//! End-to-end encryption: device keys, one-time and fallback keys and key change tracking
//! here; cross-signing in [`cross_signing`], dehydrated devices in [`dehydrated`], device lists across servers in [`device_lists`],
//! to-device messages in [`to_device`]. Other servers' users are answered from the device list
//! cache where it can be trusted; what it cannot answer is asked of their servers ([`remote`]).

pub mod cross_signing;
pub mod dehydrated;
pub mod device_lists;
pub mod remote;
pub mod to_device;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{DEVICE_KEYS, KEY_CHANGES, ONE_TIME_KEYS, key, key_pos, trailing_pos};

/// A `/keys/query` as far as this server can answer it, and what other servers must answer.
#[derive(Debug, Default)]
pub(crate) struct KeyQuery {
    /// `device_keys`, `master_keys`, `self_signing_keys`, `user_signing_keys`, `failures`.
    pub answer: Value,
    /// Other servers' users sharing a room with the asker whose cache is empty or stale:
    /// resync them (`/user/devices`), then answer them from the cache.
    pub resync: Vec<(String, Vec<String>)>,
    /// Other users, by server: ask their servers (`/user/keys/query`).
    pub remote: BTreeMap<String, Map<String, Value>>,
}

const FALLBACK: &str = "fallback/";

impl Homeserver {
    /// A local device's keys as it uploaded them.
    pub(crate) fn uploaded_device_keys(&self, user_id: &str, device_id: &str) -> Result<Option<Value>> {
        self.get_json(DEVICE_KEYS, &key(&[user_id, device_id]))
    }

    /// Removes, in the write, a deleted device's keys and one-time keys.
    pub(crate) fn stage_delete_device_keys(&self, txn: &mut Txn, user_id: &str, device_id: &str) -> Result<()> {
        txn.batch.delete(DEVICE_KEYS, key(&[user_id, device_id]));
        for entry in self.db.scan_prefix(ONE_TIME_KEYS, &key(&[user_id, device_id]))? {
            txn.batch.delete(ONE_TIME_KEYS, entry?.0.into_vec());
        }
        Ok(())
    }

    pub(crate) fn note_key_change(&self, txn: &mut Txn, user_id: &str) {
        let pos = txn.pos();
        txn.batch.put(KEY_CHANGES, key_pos(&[], pos), user_id.as_bytes().to_vec());
    }

    /// `/keys/upload`: returns the one-time key counts.
    pub fn upload_keys(&self, user_id: &str, device_id: &str, body: &Value) -> Result<Value> {
        let obj = body.as_object().ok_or_else(|| Error::bad_json("body must be an object"))?;
        let device_changed = self.write(|txn| {
            let mut device_changed = false;
            if let Some(dk) = obj.get("device_keys").filter(|v| !v.is_null()) {
                let dk_obj = dk.as_object().ok_or_else(|| Error::bad_json("device_keys must be an object"))?;
                if dk_obj.get("user_id").and_then(Value::as_str) != Some(user_id)
                    || dk_obj.get("device_id").and_then(Value::as_str) != Some(device_id)
                {
                    return Err(Error::invalid_param("device_keys must be for the authenticated user and device"));
                }
                let old = self.db.get(DEVICE_KEYS, &key(&[user_id, device_id]))?;
                let new = serde_json::to_vec(dk)?;
                if old.as_deref() != Some(&new[..]) {
                    txn.batch.put(DEVICE_KEYS, key(&[user_id, device_id]), new);
                    self.note_key_change(txn, user_id);
                    device_changed = true;
                }
            }
            for (field, prefix) in [("one_time_keys", ""), ("fallback_keys", FALLBACK)] {
                let Some(keys) = obj.get(field).filter(|v| !v.is_null()) else { continue };
                let keys = keys.as_object().ok_or_else(|| Error::bad_json(format!("{field} must be an object")))?;
                for (key_id, value) in keys {
                    let Some((algorithm, _)) = key_id.split_once(':') else {
                        return Err(Error::bad_json(format!("Invalid key id {key_id:?}")));
                    };
                    if prefix == FALLBACK {
                        // One fallback key per algorithm: a new one replaces the old.
                        for entry in self.db.scan_prefix(ONE_TIME_KEYS, &key(&[user_id, device_id]))? {
                            let (k, _) = entry?;
                            if crate::tables::split(&k)
                                .get(2)
                                .is_some_and(|id| id.starts_with(&format!("{FALLBACK}{algorithm}:")))
                            {
                                txn.batch.delete(ONE_TIME_KEYS, k.into_vec());
                            }
                        }
                    } else if let Some(existing) = self.db.get(ONE_TIME_KEYS, &key(&[user_id, device_id, key_id]))?
                        && existing != serde_json::to_vec(value)?
                    {
                        return Err(Error::invalid_param(format!("One time key {key_id} already exists")));
                    }
                    let stored =
                        if prefix == FALLBACK { json!({ "key": value, "used": false }) } else { value.clone() };
                    txn.put_json(ONE_TIME_KEYS, key(&[user_id, device_id, &format!("{prefix}{key_id}")]), &stored);
                }
            }
            if device_changed {
                self.note_unshared_change(txn, user_id, device_id, false);
            }
            Ok(device_changed)
        })?;
        if device_changed {
            self.share_device_change(user_id, device_id, false)?;
        }
        Ok(json!({ "one_time_key_counts": self.one_time_key_counts(user_id, device_id)? }))
    }

    /// Unclaimed one-time keys per algorithm (`signed_curve25519` always present, as Synapse).
    pub fn one_time_key_counts(&self, user_id: &str, device_id: &str) -> Result<Value> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::from([("signed_curve25519".to_owned(), 0)]);
        for entry in self.db.scan_prefix(ONE_TIME_KEYS, &key(&[user_id, device_id]))? {
            let (k, _) = entry?;
            if let Some(id) = crate::tables::split(&k).get(2)
                && !id.starts_with(FALLBACK)
                && let Some((alg, _)) = id.split_once(':')
            {
                *counts.entry(alg.to_owned()).or_default() += 1;
            }
        }
        Ok(json!(counts))
    }

    /// Algorithms with an unused fallback key.
    pub fn unused_fallback_key_types(&self, user_id: &str, device_id: &str) -> Result<Vec<String>> {
        let mut out = BTreeSet::new();
        for entry in self.db.scan_prefix(ONE_TIME_KEYS, &key(&[user_id, device_id]))? {
            let (k, v) = entry?;
            let stored: Value = serde_json::from_slice(&v)?;
            if let Some(id) = crate::tables::split(&k).get(2).and_then(|id| id.strip_prefix(FALLBACK))
                && stored["used"] == false
                && let Some((alg, _)) = id.split_once(':')
            {
                out.insert(alg.to_owned());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// `/keys/query` as `viewer`: local users and cached remote ones are answered here;
    /// the rest is returned to be asked of other servers ([`remote`]).
    pub(crate) fn query_keys(&self, viewer: &str, request: &Value) -> Result<KeyQuery> {
        let wanted = request
            .get("device_keys")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::bad_json("device_keys must be an object"))?;
        let mut query = KeyQuery { answer: json!({ "device_keys": {}, "failures": {} }), ..KeyQuery::default() };
        for (user_id, devices) in wanted {
            let devices: Vec<String> = match devices.as_array() {
                Some(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                None => return Err(Error::bad_json("device lists must be arrays")),
            };
            if self.is_local(user_id) {
                let mut out = Map::new();
                for device in self.devices(user_id)? {
                    if !devices.is_empty() && !devices.contains(&device.device_id) {
                        continue;
                    }
                    if let Some(keys) = self.device_keys_for(viewer, user_id, &device)? {
                        out.insert(device.device_id.clone(), keys);
                    }
                }
                query.answer["device_keys"][user_id] = Value::Object(out);
                self.add_cross_signing(viewer, user_id, &mut query.answer)?;
            } else if let Some(cached) = self.cached_remote_devices(user_id, &devices)? {
                query.answer["device_keys"][user_id] = Value::Object(cached);
                self.add_cross_signing(viewer, user_id, &mut query.answer)?;
            } else if self.share_a_room(viewer, user_id)? {
                query.resync.push((user_id.clone(), devices));
            } else if let Some((_, server)) = user_id.split_once(':') {
                query.remote.entry(server.to_owned()).or_default().insert(user_id.clone(), json!(devices));
            }
        }
        Ok(query)
    }

    /// Answers resynced users from the cache, once their devices were fetched.
    pub(crate) fn answer_resynced(
        &self,
        viewer: &str,
        users: &[(String, Vec<String>)],
        answer: &mut Value,
    ) -> Result<()> {
        for (user_id, devices) in users {
            if let Some(cached) = self.cached_remote_devices(user_id, devices)? {
                answer["device_keys"][user_id] = Value::Object(cached);
                self.add_cross_signing(viewer, user_id, answer)?;
            }
        }
        Ok(())
    }

    fn add_cross_signing(&self, viewer: &str, user_id: &str, answer: &mut Value) -> Result<()> {
        let [master, self_signing, user_signing] = self.cross_signing_keys_for(viewer, user_id)?;
        for (field, k) in
            [("master_keys", master), ("self_signing_keys", self_signing), ("user_signing_keys", user_signing)]
        {
            if let Some(k) = k {
                if answer.get(field).is_none() {
                    answer[field] = json!({});
                }
                answer[field][user_id] = k;
            }
        }
        Ok(())
    }

    /// `/user/keys/query` from another server: local users only, as that server sees them.
    pub fn query_keys_for_server(&self, request: &Value) -> Result<Value> {
        let wanted = request
            .get("device_keys")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::bad_json("device_keys must be an object"))?;
        let mut local = Map::new();
        for (user, devices) in wanted {
            if self.is_local(user) {
                local.insert(user.clone(), devices.clone());
            }
        }
        // A server sees what the world sees: the users' own signatures only.
        let mut answer = self.query_keys("", &json!({ "device_keys": local }))?.answer;
        if let Some(obj) = answer.as_object_mut() {
            obj.remove("failures");
            obj.remove("user_signing_keys");
        }
        Ok(answer)
    }

    /// `/keys/claim` (and `/user/keys/claim`) for local users: a one-time key, else the
    /// fallback key.
    pub fn claim_keys(&self, request: &Value) -> Result<Value> {
        let wanted = request
            .get("one_time_keys")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::bad_json("one_time_keys must be an object"))?;
        self.write(|txn| {
            let mut result = Map::new();
            for (user_id, devices) in wanted {
                let devices = devices.as_object().ok_or_else(|| Error::bad_json("expected an object of devices"))?;
                // Other servers' users are claimed from their servers.
                if !self.is_local(user_id) {
                    continue;
                }
                let mut per_user = Map::new();
                for (device_id, algorithm) in devices {
                    let algorithm = algorithm.as_str().ok_or_else(|| Error::bad_json("algorithm must be a string"))?;
                    let mut otk = None;
                    let mut fallback = None;
                    for entry in self.db.scan_prefix(ONE_TIME_KEYS, &key(&[user_id, device_id]))? {
                        let (k, v) = entry?;
                        let Some(id) = crate::tables::split(&k).get(2).map(|s| s.to_string()) else { continue };
                        if id.starts_with(&format!("{algorithm}:")) {
                            otk = Some((k, id, v));
                            break;
                        }
                        if id.starts_with(&format!("{FALLBACK}{algorithm}:")) {
                            fallback = Some((k, id, v));
                        }
                    }
                    if let Some((k, id, v)) = otk {
                        txn.batch.delete(ONE_TIME_KEYS, k.into_vec());
                        per_user.insert(device_id.clone(), json!({ id: serde_json::from_slice::<Value>(&v)? }));
                    } else if let Some((k, id, v)) = fallback {
                        let mut stored: Value = serde_json::from_slice(&v)?;
                        stored["used"] = true.into();
                        txn.batch.put(ONE_TIME_KEYS, k.into_vec(), serde_json::to_vec(&stored)?);
                        per_user.insert(device_id.clone(), json!({ id.trim_start_matches(FALLBACK): stored["key"] }));
                    }
                }
                result.insert(user_id.clone(), Value::Object(per_user));
            }
            Ok(json!({ "one_time_keys": result, "failures": {} }))
        })
    }

    /// `device_lists` for `user_id` over `(from, to]`: users sharing a room with it whose
    /// keys or memberships changed, or who joined a room it is in (all the members of a room
    /// it joined itself), and the users among those changes it no longer shares a room with.
    pub fn key_changes(&self, user_id: &str, from: u64, to: u64) -> Result<(Vec<String>, Vec<String>)> {
        let mut changes = BTreeSet::new();
        for entry in self.db.scan(KEY_CHANGES, &[], &key_pos(&[], from + 1), tandem_storage::Direction::Forward)? {
            let (k, v) = entry?;
            if trailing_pos(&k) > to {
                break;
            }
            changes.insert(String::from_utf8_lossy(&v).into_owned());
        }
        let rows = self.memberships(user_id)?;
        let joined: Vec<&str> =
            rows.iter().filter(|(_, r)| r.membership == "join").map(|(id, _)| id.as_str()).collect();
        // Point lookups in the rooms the user is in, not a scan of their member lists: this runs
        // on every incremental sync.
        let in_any = |other: &str, memberships: &[&str]| -> Result<bool> {
            for room in &joined {
                if self.current_membership(room, other)?.is_some_and(|m| memberships.contains(&m.as_str())) {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        let shares = |other: &str| -> Result<bool> { Ok(other == user_id || in_any(other, &["join"])?) };
        let mut changed = BTreeSet::new();
        let mut gone = BTreeSet::new();
        for (room, row) in rows.iter().filter(|(_, r)| r.pos > from && r.pos <= to) {
            match row.membership.as_str() {
                // A room joined just now: all its members are new to track.
                "join" => changed.extend(self.members_with(room, "join")?.into_iter().map(|(m, _)| m)),
                // A room left just now: its members may be no one to track any more.
                "leave" | "ban" => gone.extend(self.members_with(room, "join")?.into_iter().map(|(m, _)| m)),
                _ => {}
            }
        }
        changed.remove(user_id);
        for user in changes {
            if shares(&user)? {
                changed.insert(user);
            } else if in_any(&user, &["leave", "ban"])? {
                // Someone who left a room the user is in.
                gone.insert(user);
            }
        }
        let mut left = Vec::new();
        for user in gone {
            if !shares(&user)? {
                left.push(user);
            }
        }
        Ok((changed.into_iter().collect(), left))
    }
}
