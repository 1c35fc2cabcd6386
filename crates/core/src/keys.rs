//! What clients need at start-up for end-to-end encryption, between local users: device keys,
//! one-time and fallback keys, key change tracking, and to-device messages.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{DEVICE_KEYS, KEY_CHANGES, ONE_TIME_KEYS, TO_DEVICE, TXNS, key, key_pos, trailing_pos};

const FALLBACK: &str = "fallback/";

impl Homeserver {
    pub(crate) fn note_key_change(&self, txn: &mut Txn, user_id: &str) {
        let pos = txn.pos();
        txn.batch.put(KEY_CHANGES, key_pos(&[], pos), user_id.as_bytes().to_vec());
    }

    /// `/keys/upload`: returns the one-time key counts.
    pub fn upload_keys(&self, user_id: &str, device_id: &str, body: &Value) -> Result<Value> {
        let obj = body.as_object().ok_or_else(|| Error::bad_json("body must be an object"))?;
        self.write(|txn| {
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
            Ok(())
        })?;
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

    /// `/keys/query` for local users.
    pub fn query_keys(&self, request: &Value) -> Result<Value> {
        let wanted = request
            .get("device_keys")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::bad_json("device_keys must be an object"))?;
        let mut device_keys = Map::new();
        for (user_id, devices) in wanted {
            let devices: Vec<&str> = match devices.as_array() {
                Some(list) => list.iter().filter_map(Value::as_str).collect(),
                None => return Err(Error::bad_json("device lists must be arrays")),
            };
            let mut out = Map::new();
            for device in self.devices(user_id)? {
                if !devices.is_empty() && !devices.contains(&device.device_id.as_str()) {
                    continue;
                }
                if let Some(bytes) = self.db.get(DEVICE_KEYS, &key(&[user_id, &device.device_id]))? {
                    let mut keys: Value = serde_json::from_slice(&bytes)?;
                    if let Some(name) = &device.display_name {
                        keys["unsigned"] = json!({ "device_display_name": name });
                    }
                    out.insert(device.device_id.clone(), keys);
                }
            }
            device_keys.insert(user_id.clone(), Value::Object(out));
        }
        Ok(json!({ "device_keys": device_keys, "failures": {} }))
    }

    /// `/keys/claim` for local users: a one-time key, else the fallback key.
    pub fn claim_keys(&self, request: &Value) -> Result<Value> {
        let wanted = request
            .get("one_time_keys")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::bad_json("one_time_keys must be an object"))?;
        self.write(|txn| {
            let mut result = Map::new();
            for (user_id, devices) in wanted {
                let devices = devices.as_object().ok_or_else(|| Error::bad_json("expected an object of devices"))?;
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

    /// Users sharing a room with `user_id` whose keys changed in `(from, to]`.
    pub fn key_changes(&self, user_id: &str, from: u64, to: u64) -> Result<Vec<String>> {
        let mut changed = BTreeSet::new();
        for entry in self.db.scan(KEY_CHANGES, &[], &key_pos(&[], from + 1), tandem_storage::Direction::Forward)? {
            let (k, v) = entry?;
            if trailing_pos(&k) > to {
                break;
            }
            changed.insert(String::from_utf8_lossy(&v).into_owned());
        }
        let mut shared = BTreeSet::from([user_id.to_owned()]);
        for room in self.joined_rooms(user_id)? {
            for (member, _) in self.members_with(&room, "join")? {
                shared.insert(member);
            }
        }
        Ok(changed.into_iter().filter(|u| shared.contains(u)).collect())
    }

    /// `/sendToDevice` to local users (`*` for all of a user's devices).
    pub fn send_to_device(
        &self,
        sender: &str,
        sender_device: &str,
        kind: &str,
        txn_id: &str,
        messages: &Value,
    ) -> Result<()> {
        let messages = messages.as_object().ok_or_else(|| Error::bad_json("messages must be an object"))?;
        self.write(|txn| {
            let txn_key = key(&[sender, sender_device, &format!("to_device/{txn_id}")]);
            if self.db.get(TXNS, &txn_key)?.is_some() {
                return Ok(());
            }
            txn.batch.put(TXNS, txn_key, Vec::new());
            for (user_id, devices) in messages {
                let devices = devices.as_object().ok_or_else(|| Error::bad_json("expected an object of devices"))?;
                if !self.is_local(user_id) {
                    continue;
                }
                for (device_id, content) in devices {
                    let targets: Vec<String> = if device_id == "*" {
                        self.devices(user_id)?.into_iter().map(|d| d.device_id).collect()
                    } else {
                        vec![device_id.clone()]
                    };
                    for target in targets {
                        let pos = txn.pos();
                        let message = json!({ "sender": sender, "type": kind, "content": content });
                        txn.put_json(TO_DEVICE, key_pos(&[user_id, &target], pos), &message);
                    }
                }
            }
            Ok(())
        })
    }

    /// To-device messages for a device after `since`; those up to `since` were acknowledged by
    /// the client's use of that token and are deleted.
    pub fn to_device_since(&self, user_id: &str, device_id: &str, since: u64, up_to: u64) -> Result<Vec<Value>> {
        let prefix = key(&[user_id, device_id]);
        let mut out = Vec::new();
        let mut acknowledged = Vec::new();
        for entry in self.db.scan_prefix(TO_DEVICE, &prefix)? {
            let (k, v) = entry?;
            let pos = trailing_pos(&k);
            if pos <= since {
                acknowledged.push(k.into_vec());
            } else if pos <= up_to {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        if !acknowledged.is_empty() {
            self.write(|txn| {
                for k in acknowledged {
                    txn.batch.delete(TO_DEVICE, k);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}
