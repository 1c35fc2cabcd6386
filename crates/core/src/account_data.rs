//! Account data (global and per room), tags, and read markers' `m.fully_read`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::tables::{ACCOUNT_DATA, key};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountDataEntry {
    pub content: Value,
    pub pos: u64,
}

/// Types the server manages itself, which clients may not set through account data.
const SERVER_MANAGED: &[&str] = &["m.fully_read", "m.push_rules"];

impl Homeserver {
    /// Sets account data; `room_id` `None` for global.
    pub fn set_account_data(&self, user_id: &str, room_id: Option<&str>, kind: &str, content: Value) -> Result<()> {
        if !content.is_object() {
            return Err(Error::bad_json("content must be a JSON object"));
        }
        if room_id.is_some() && kind == "m.fully_read" || SERVER_MANAGED[1..].contains(&kind) {
            return Err(Error::bad_json(format!("Cannot set {kind} through this API")));
        }
        if let Some(room) = room_id
            && self.room_info(room)?.is_none()
        {
            return Err(Error::not_found("Unknown room"));
        }
        self.put_account_data(user_id, room_id, kind, content)
    }

    pub(crate) fn put_account_data(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        kind: &str,
        content: Value,
    ) -> Result<()> {
        self.write(|txn| {
            let pos = txn.pos();
            txn.put_json(
                ACCOUNT_DATA,
                key(&[user_id, room_id.unwrap_or(""), kind]),
                &AccountDataEntry { content, pos },
            );
            Ok(())
        })
    }

    pub fn account_data(&self, user_id: &str, room_id: Option<&str>, kind: &str) -> Result<Value> {
        let entry: Option<AccountDataEntry> =
            self.get_json(ACCOUNT_DATA, &key(&[user_id, room_id.unwrap_or(""), kind]))?;
        match entry {
            // Deleting account data stores `{}` (as Synapse's MSC3391 does); reads see 404.
            Some(e) if e.content.as_object().is_some_and(|o| !o.is_empty()) => Ok(e.content),
            _ => Err(Error::not_found("Account data not found")),
        }
    }

    /// All account data changed after `since`: `(room_id or "", type) → content`.
    pub fn account_data_since(&self, user_id: &str, since: u64) -> Result<Vec<(String, String, Value)>> {
        let mut out = Vec::new();
        for (k, e) in self.scan_json::<AccountDataEntry>(ACCOUNT_DATA, &key(&[user_id]))? {
            if e.pos > since {
                let parts = crate::tables::split(&k);
                if let (Some(room), Some(kind)) = (parts.get(1), parts.get(2)) {
                    out.push((room.to_string(), kind.to_string(), e.content));
                }
            }
        }
        Ok(out)
    }

    pub fn tags(&self, user_id: &str, room_id: &str) -> Result<Value> {
        let tags = self.account_data(user_id, Some(room_id), "m.tag").ok();
        Ok(tags.and_then(|t| t.get("tags").cloned()).unwrap_or_else(|| json!({})))
    }

    pub fn set_tag(&self, user_id: &str, room_id: &str, tag: &str, content: Option<Value>) -> Result<()> {
        if tag.len() > 255 {
            return Err(Error::invalid_param("tag too long"));
        }
        let mut tags: Map<String, Value> = self.tags(user_id, room_id)?.as_object().cloned().unwrap_or_default();
        match content {
            Some(c) => {
                if !c.is_object() {
                    return Err(Error::bad_json("tag content must be an object"));
                }
                tags.insert(tag.to_owned(), c)
            }
            None => tags.remove(tag),
        };
        self.put_account_data(user_id, Some(room_id), "m.tag", json!({ "tags": tags }))
    }
}
