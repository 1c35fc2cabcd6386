//! Device lists across servers. A local user's device changes are numbered (the stream
//! position of the change) and sent as `m.device_list_update` EDUs, each naming the one before
//! it (`prev_id`), to every server sharing a room with the user; cross-signing key changes go
//! as `m.signing_key_update`. Other servers' users' devices are cached here, kept current by
//! their EDUs while every `prev_id` is known, and marked stale (for a resync through
//! `/user/devices`) when one is not.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::cross_signing::{MASTER, SELF_SIGNING, USER_SIGNING};
use crate::error::Result;
use crate::outbox::Outgoing;
use crate::server::{Homeserver, Txn};
use crate::sessions::Device;
use crate::tables::{self, DEVICE_LISTS, REMOTE_DEVICES, UNSHARED_DEVICE_CHANGES, key, split};

/// What is known of a user's device list: for a local user the id of the last update sent,
/// for another server's user the last one applied to the cache.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ListState {
    stream_id: u64,
    /// The cache missed an update: it must be fetched again before it is used.
    #[serde(default)]
    stale: bool,
}

/// What became of an `m.device_list_update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListUpdate {
    Applied,
    /// An update before it was missed: resync the user's devices with `/user/devices`.
    Resync,
}

impl Homeserver {
    fn list_state(&self, user_id: &str) -> Result<Option<ListState>> {
        self.get_json(DEVICE_LISTS, &key(&[user_id]))
    }

    /// The other servers sharing a room with `user_id`.
    pub fn servers_sharing_rooms(&self, user_id: &str) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for room in self.joined_rooms(user_id)? {
            out.extend(self.room_servers(&room)?);
        }
        out.remove(self.server_name());
        Ok(out)
    }

    /// Whether another server's user is joined to a room this server is in: only then do
    /// their presence and device lists concern us (Synapse drops the others' updates too).
    pub fn shares_room_with_us(&self, user_id: &str) -> Result<bool> {
        for room in tables::rooms::remote_member_rooms(&self.db, user_id)? {
            if self.is_resident(&room)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `a` and `b` are both joined to some room (`a` local).
    pub fn share_a_room(&self, a: &str, b: &str) -> Result<bool> {
        for room in self.joined_rooms(a)? {
            if self.current_membership(&room, b)?.as_deref() == Some("join") {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A local device's keys as `viewer` sees them: with the signatures made of them since
    /// and the device's display name.
    pub(crate) fn device_keys_for(&self, viewer: &str, user_id: &str, device: &Device) -> Result<Option<Value>> {
        let Some(mut keys) = self.uploaded_device_keys(user_id, &device.device_id)? else {
            return Ok(None);
        };
        self.merge_signatures(viewer, user_id, &device.device_id, &mut keys)?;
        if let Some(name) = &device.display_name {
            keys["unsigned"] = json!({ "device_display_name": name });
        }
        Ok(Some(keys))
    }

    /// Notes, in the write that makes it, that a local device changed (or, with `device_id`
    /// `""`, the user's cross-signing keys), so that the change reaches other servers even if
    /// the process dies before [`Homeserver::share_device_change`] queues it.
    pub(crate) fn note_unshared_change(&self, txn: &mut Txn, user_id: &str, device_id: &str, deleted: bool) {
        txn.put_json(UNSHARED_DEVICE_CHANGES, key(&[user_id, device_id]), &json!({ "deleted": deleted }));
    }

    /// Queues what a crash left noted but unshared. Run at start.
    pub fn share_unshared_changes(&self) -> Result<()> {
        for (k, v) in self.scan_json::<Value>(UNSHARED_DEVICE_CHANGES, &[])? {
            let parts = split(&k);
            let (Some(user), Some(device)) = (parts.first(), parts.get(1)) else { continue };
            let (user, device) = (user.to_string(), device.to_string());
            if device.is_empty() {
                self.share_signing_keys(&user)?;
            } else {
                self.share_device_change(&user, &device, v["deleted"] == true)?;
            }
        }
        Ok(())
    }

    /// Tells the servers sharing a room with a local user that one of its devices changed
    /// (new keys, a new name, new signatures, or deleted), and clears the change's note.
    pub(crate) fn share_device_change(&self, user_id: &str, device_id: &str, deleted: bool) -> Result<()> {
        if !self.is_local(user_id) {
            return Ok(());
        }
        let servers = self.servers_sharing_rooms(user_id)?;
        let device = if deleted { None } else { self.device(user_id, device_id)? };
        let keys = match &device {
            Some(d) => self.device_keys_for(user_id, user_id, d)?,
            None => None,
        };
        self.write(|txn| {
            let stream_id = txn.pos();
            let prev = self.list_state(user_id)?.map_or(0, |s| s.stream_id);
            let mut content = json!({
                "user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                "prev_id": if prev == 0 { vec![] } else { vec![prev] },
            });
            if deleted || device.is_none() {
                content["deleted"] = true.into();
            }
            if let Some(name) = device.as_ref().and_then(|d| d.display_name.clone()) {
                content["device_display_name"] = name.into();
            }
            if let Some(k) = &keys {
                content["keys"] = k.clone();
            }
            let edu = json!({ "edu_type": "m.device_list_update", "content": content });
            for server in &servers {
                self.enqueue(txn, server, Outgoing::Edu(edu.clone()));
            }
            txn.put_json(DEVICE_LISTS, key(&[user_id]), &ListState { stream_id, stale: false });
            txn.batch.delete(UNSHARED_DEVICE_CHANGES, key(&[user_id, device_id]));
            Ok(())
        })
    }

    /// Tells the servers sharing a room with a local user its new master and self-signing keys.
    pub(crate) fn share_signing_keys(&self, user_id: &str) -> Result<()> {
        let servers = self.servers_sharing_rooms(user_id)?;
        let mut content = json!({ "user_id": user_id });
        for (kind, field) in [(MASTER, "master_key"), (SELF_SIGNING, "self_signing_key")] {
            if let Some(k) = self.cross_signing_key(user_id, user_id, kind)? {
                content[field] = k;
            }
        }
        let edu = json!({ "edu_type": "m.signing_key_update", "content": content });
        self.write(|txn| {
            for d in servers.iter().filter(|d| **d != self.server_name) {
                self.enqueue(txn, d, Outgoing::Edu(edu.clone()));
            }
            txn.batch.delete(UNSHARED_DEVICE_CHANGES, key(&[user_id, ""]));
            Ok(())
        })
    }

    /// `/user/devices/{userId}` for a local user: every device with keys and name, the id of
    /// the last update sent, and the master and self-signing keys.
    pub fn user_devices(&self, user_id: &str) -> Result<Value> {
        let mut devices = Vec::new();
        for device in self.devices(user_id)? {
            let mut entry = json!({ "device_id": device.device_id });
            if let Some(k) = self.device_keys_for(user_id, user_id, &device)? {
                entry["keys"] = k;
            }
            if let Some(name) = &device.display_name {
                entry["device_display_name"] = name.clone().into();
            }
            devices.push(entry);
        }
        let stream_id = self.list_state(user_id)?.map_or(0, |s| s.stream_id);
        let mut out = json!({ "user_id": user_id, "stream_id": stream_id, "devices": devices });
        for (kind, field) in [(MASTER, "master_key"), (SELF_SIGNING, "self_signing_key")] {
            if let Some(k) = self.cross_signing_key(user_id, user_id, kind)? {
                out[field] = k;
            }
        }
        Ok(out)
    }

    /// An `m.device_list_update` for another server's user (the caller checked it came from
    /// that server). Applied to the cache if every `prev_id` is known; otherwise the cache is
    /// marked stale. Local clients sharing a room with the user hear of the change either way.
    pub fn apply_device_list_update(&self, content: &Value) -> Result<ListUpdate> {
        let (Some(user_id), Some(device_id), Some(stream_id)) = (
            content.get("user_id").and_then(Value::as_str),
            content.get("device_id").and_then(Value::as_str),
            content.get("stream_id").and_then(Value::as_u64),
        ) else {
            return Ok(ListUpdate::Applied);
        };
        if self.is_local(user_id) {
            return Ok(ListUpdate::Applied);
        }
        let prev: Vec<u64> =
            content.get("prev_id").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_u64).collect();
        let state = self.list_state(user_id)?;
        if state.as_ref().is_some_and(|s| !s.stale && s.stream_id >= stream_id) {
            return Ok(ListUpdate::Applied);
        }
        let in_order = match &state {
            Some(s) => !s.stale && prev.iter().all(|p| *p <= s.stream_id) && prev.contains(&s.stream_id),
            None => prev.is_empty(),
        };
        self.write(|txn| {
            if in_order {
                let k = key(&[user_id, device_id]);
                if content.get("deleted").and_then(Value::as_bool) == Some(true) {
                    txn.batch.delete(REMOTE_DEVICES, k);
                } else if let Some(keys) = content.get("keys").filter(|k| k.is_object()) {
                    let mut keys = keys.clone();
                    if let Some(name) = content.get("device_display_name").and_then(Value::as_str) {
                        keys["unsigned"] = json!({ "device_display_name": name });
                    }
                    txn.put_json(REMOTE_DEVICES, k, &keys);
                }
            }
            txn.put_json(DEVICE_LISTS, key(&[user_id]), &ListState { stream_id, stale: !in_order });
            self.note_key_change(txn, user_id);
            Ok(())
        })?;
        Ok(if in_order { ListUpdate::Applied } else { ListUpdate::Resync })
    }

    /// Replaces the cache of another server's user with its `/user/devices` answer.
    pub fn replace_remote_devices(&self, user_id: &str, answer: &Value) -> Result<()> {
        if self.is_local(user_id) || answer.get("user_id").and_then(Value::as_str) != Some(user_id) {
            return Ok(());
        }
        for (kind, field) in [(MASTER, "master_key"), (SELF_SIGNING, "self_signing_key")] {
            if let Some(k) = answer.get(field).filter(|k| k.is_object()) {
                self.store_remote_cross_signing_key(user_id, kind, k)?;
            }
        }
        let stream_id = answer.get("stream_id").and_then(Value::as_u64).unwrap_or(0);
        self.write(|txn| {
            for entry in self.db.scan_prefix(REMOTE_DEVICES, &key(&[user_id]))? {
                txn.batch.delete(REMOTE_DEVICES, entry?.0.into_vec());
            }
            for device in answer.get("devices").and_then(Value::as_array).into_iter().flatten() {
                let (Some(device_id), Some(keys)) =
                    (device.get("device_id").and_then(Value::as_str), device.get("keys").filter(|k| k.is_object()))
                else {
                    continue;
                };
                let mut keys = keys.clone();
                if let Some(name) = device.get("device_display_name").and_then(Value::as_str) {
                    keys["unsigned"] = json!({ "device_display_name": name });
                }
                txn.put_json(REMOTE_DEVICES, key(&[user_id, device_id]), &keys);
            }
            txn.put_json(DEVICE_LISTS, key(&[user_id]), &ListState { stream_id, stale: false });
            self.note_key_change(txn, user_id);
            Ok(())
        })
    }

    /// The cached devices of another server's user (restricted to `wanted` unless empty), if
    /// the cache can be trusted: it was filled and has missed no update since.
    pub fn cached_remote_devices(&self, user_id: &str, wanted: &[String]) -> Result<Option<Map<String, Value>>> {
        if self.list_state(user_id)?.is_none_or(|s| s.stale) {
            return Ok(None);
        }
        let mut out = Map::new();
        for (k, keys) in self.scan_json::<Value>(REMOTE_DEVICES, &key(&[user_id]))? {
            let Some(device_id) = crate::tables::split(&k).get(1).map(|s| s.to_string()) else { continue };
            if wanted.is_empty() || wanted.contains(&device_id) {
                out.insert(device_id, keys);
            }
        }
        Ok(Some(out))
    }

    /// The cross-signing keys of a user as `viewer` sees them, local or cached:
    /// `(master, self_signing, user_signing)`; the user-signing key only for oneself.
    pub fn cross_signing_keys_for(&self, viewer: &str, user_id: &str) -> Result<[Option<Value>; 3]> {
        Ok([
            self.cross_signing_key(viewer, user_id, MASTER)?,
            self.cross_signing_key(viewer, user_id, SELF_SIGNING)?,
            if viewer == user_id { self.cross_signing_key(viewer, user_id, USER_SIGNING)? } else { None },
        ])
    }
}
