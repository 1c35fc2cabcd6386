//! Receipts (`m.read`, `m.read.private`, threaded) and presence.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::tables::{self, PRESENCE, RECEIPTS, key};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Receipt {
    event_id: String,
    ts: u64,
    pos: u64,
}

pub const RECEIPT_TYPES: &[&str] = &["m.read", "m.read.private", "m.fully_read"];

impl Homeserver {
    /// Records a receipt. `thread_id` is `None` for an unthreaded receipt.
    pub fn set_receipt(
        &self,
        user_id: &str,
        room_id: &str,
        receipt_type: &str,
        event_id: &str,
        thread_id: Option<&str>,
    ) -> Result<()> {
        if !RECEIPT_TYPES.contains(&receipt_type) {
            return Err(Error::invalid_param(format!("Receipt type {receipt_type:?} is not recognised")));
        }
        if self.current_membership(room_id, user_id)?.as_deref() != Some("join") {
            return Err(Error::forbidden(format!("User {user_id} not in room {room_id}")));
        }
        let meta = self.event_meta(event_id)?.filter(|m| m.room_id == room_id);
        if meta.is_none() {
            return Err(Error::not_found("Event not found"));
        }
        if receipt_type == "m.fully_read" {
            return self.put_account_data(user_id, Some(room_id), "m.fully_read", json!({ "event_id": event_id }));
        }
        self.write(|txn| {
            let pos = txn.pos();
            let receipt = Receipt { event_id: event_id.to_owned(), ts: Self::now_ms(), pos };
            txn.put_json(RECEIPTS, key(&[room_id, receipt_type, user_id, thread_id.unwrap_or("")]), &receipt);
            if receipt_type == "m.read" && self.is_local(user_id) {
                self.share_receipt(txn, room_id, user_id, event_id, thread_id)?;
            }
            if receipt_type != "m.fully_read" && self.is_local(user_id) {
                self.stage_badge_update(txn, user_id)?;
            }
            let mut info = self.room_info(room_id)?.ok_or_else(|| Error::not_found("Unknown room"))?;
            info.last_receipt_pos = pos;
            tables::rooms::put_info(&mut txn.batch, room_id, &info);
            Ok(())
        })
    }

    /// The `m.receipt` content of receipts in a room after `since`, as `user_id` may see them.
    pub fn receipts_since(&self, room_id: &str, user_id: &str, since: u64) -> Result<Option<Value>> {
        let mut content: Map<String, Value> = Map::new();
        for (k, r) in self.scan_json::<Receipt>(RECEIPTS, &key(&[room_id]))? {
            if r.pos <= since {
                continue;
            }
            let parts = crate::tables::split(&k);
            let (Some(kind), Some(user), Some(thread)) = (parts.get(1), parts.get(2), parts.get(3)) else { continue };
            if *kind == "m.read.private" && *user != user_id {
                continue;
            }
            let mut entry = json!({ "ts": r.ts });
            if !thread.is_empty() {
                entry["thread_id"] = (*thread).into();
            }
            let by_event = content.entry(r.event_id.clone()).or_insert_with(|| json!({}));
            by_event[*kind][*user] = entry;
        }
        Ok((!content.is_empty()).then_some(Value::Object(content)))
    }

    /// Where a user has read a room up to, by thread (`""` for unthreaded receipts, `"main"`,
    /// or a thread's root): the stream position of the event each public or private read
    /// receipt names, the later of the two.
    pub(crate) fn read_positions(&self, room_id: &str, user_id: &str) -> Result<HashMap<String, u64>> {
        let mut out: HashMap<String, u64> = HashMap::new();
        for kind in ["m.read", "m.read.private"] {
            for (k, r) in self.scan_json::<Receipt>(RECEIPTS, &key(&[room_id, kind, user_id]))? {
                let Some(thread) = crate::tables::split(&k).get(3).map(|t| t.to_string()) else { continue };
                if let Some(meta) = self.event_meta(&r.event_id)? {
                    let best = out.entry(thread).or_insert(meta.pos);
                    *best = (*best).max(meta.pos);
                }
            }
        }
        Ok(out)
    }

    /// When a user last moved their own unthreaded or main-thread read receipt in a room (a
    /// stream position): their unread counts may have changed since.
    pub fn own_receipt_pos(&self, room_id: &str, user_id: &str) -> Result<Option<u64>> {
        let mut last: Option<u64> = None;
        for kind in ["m.read", "m.read.private"] {
            for thread in ["", "main"] {
                let r: Option<Receipt> = self.get_json(RECEIPTS, &key(&[room_id, kind, user_id, thread]))?;
                if let Some(r) = r {
                    last = Some(last.map_or(r.pos, |l| l.max(r.pos)));
                }
            }
        }
        Ok(last)
    }

    /// Sets a user's presence (`online`, `unavailable`, `offline`) and status message.
    pub fn set_presence(&self, user_id: &str, presence: &str, status_msg: Option<&str>) -> Result<()> {
        if !matches!(presence, "online" | "unavailable" | "offline") {
            return Err(Error::invalid_param(format!("Invalid presence state {presence:?}")));
        }
        let servers = if self.is_local(user_id) { self.servers_sharing_rooms(user_id)? } else { Default::default() };
        self.store_presence(user_id, presence, status_msg, Self::now_ms(), &servers)
    }

    /// Stores a presence; for a local user, tells the servers sharing a room with it too
    /// (`m.presence`).
    fn store_presence(
        &self,
        user_id: &str,
        presence: &str,
        status_msg: Option<&str>,
        last_active_ts: u64,
        servers: &std::collections::BTreeSet<String>,
    ) -> Result<()> {
        self.write(|txn| {
            let pos = txn.pos();
            let mut value = json!({ "presence": presence, "last_active_ts": last_active_ts, "pos": pos });
            if let Some(msg) = status_msg {
                value["status_msg"] = msg.into();
            }
            txn.put_json(PRESENCE, key(&[user_id]), &value);
            if !servers.is_empty() {
                let mut update = json!({
                    "user_id": user_id, "presence": presence, "last_active_ago": 0,
                    "currently_active": presence == "online",
                });
                if let Some(msg) = status_msg {
                    update["status_msg"] = msg.into();
                }
                let edu = json!({ "edu_type": "m.presence", "content": { "push": [update] } });
                for server in servers {
                    self.enqueue(txn, server, crate::outbox::Outgoing::Edu(edu.clone()));
                }
            }
            Ok(())
        })
    }

    /// An `m.presence` EDU from `origin`: the presence of its own users.
    pub fn receive_presence(&self, origin: &str, content: &Value) -> Result<()> {
        for update in content.get("push").and_then(Value::as_array).into_iter().flatten() {
            let (Some(user_id), Some(presence)) =
                (update.get("user_id").and_then(Value::as_str), update.get("presence").and_then(Value::as_str))
            else {
                continue;
            };
            if user_id.split_once(':').map(|(_, s)| s) != Some(origin)
                || !matches!(presence, "online" | "unavailable" | "offline")
                || !self.shares_room_with_us(user_id)?
            {
                continue;
            }
            let ago = update.get("last_active_ago").and_then(Value::as_u64).unwrap_or(0);
            let msg = update.get("status_msg").and_then(Value::as_str);
            self.store_presence(user_id, presence, msg, Self::now_ms().saturating_sub(ago), &Default::default())?;
        }
        Ok(())
    }

    /// The users whose presence was set after stream position `since` (all with one, without).
    pub(crate) fn presence_changed_since(&self, since: Option<u64>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(PRESENCE, &[])? {
            let (k, v) = entry?;
            let stored: Value = serde_json::from_slice(&v)?;
            if since.is_some_and(|s| stored["pos"].as_u64().unwrap_or(0) <= s) {
                continue;
            }
            if let Some(user) = tables::split(&k).first() {
                out.push(user.to_string());
            }
        }
        Ok(out)
    }

    /// A user's presence in the client format, and the position it was set at.
    pub fn presence(&self, user_id: &str) -> Result<Option<(Value, u64)>> {
        let Some(stored) = self.get_json::<Value>(PRESENCE, &key(&[user_id]))? else { return Ok(None) };
        let last = stored["last_active_ts"].as_u64().unwrap_or(0);
        let mut out = json!({
            "presence": stored["presence"],
            "last_active_ago": Self::now_ms().saturating_sub(last),
            "currently_active": stored["presence"] == "online",
        });
        if let Some(msg) = stored.get("status_msg") {
            out["status_msg"] = msg.clone();
        }
        Ok(Some((out, stored["pos"].as_u64().unwrap_or(0))))
    }
}

impl Homeserver {
    /// Sets presence from a sync's `set_presence`, writing only when it changes.
    pub fn touch_presence(&self, user_id: &str, presence: &str) -> Result<()> {
        let current = self.get_json::<Value>(PRESENCE, &key(&[user_id]))?;
        if current.as_ref().and_then(|c| c["presence"].as_str()) == Some(presence) {
            return Ok(());
        }
        self.set_presence(user_id, presence, current.as_ref().and_then(|c| c["status_msg"].as_str()))
    }
}
