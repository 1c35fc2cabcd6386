//! Spaces: what this server says about a room it is in when a user or another server walks a
//! space hierarchy (`/hierarchy`): the room's summary, its `m.space.child` events, and
//! whether the asker may preview it. The walk itself, which crosses to other servers for
//! rooms this server is not in, is driven by the HTTP layer.

use serde_json::{Value, json};

use crate::error::Result;
use crate::server::Homeserver;

/// Who asks to preview a room.
#[derive(Clone, Copy, Debug)]
pub enum Asker<'a> {
    User(&'a str),
    Server(&'a str),
    /// A client without an access token (the room summary allows it for open rooms).
    Anonymous,
}

/// A child named by an `m.space.child` event, with the servers to reach it through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub room_id: String,
    pub via: Vec<String>,
    pub suggested: bool,
}

impl Homeserver {
    /// A space's `m.space.child` events with a non-empty `via`, stripped; none for a room that
    /// is not a space.
    fn space_children_state(&self, room_id: &str) -> Result<Vec<Value>> {
        let Some(info) = self.room_info(room_id)? else { return Ok(Vec::new()) };
        let state = self.state_map(info.state_group)?;
        let room_type = self.state_content(&state, "m.room.create", "")?.and_then(|c| c.get("type").cloned());
        if room_type.as_ref().and_then(Value::as_str) != Some("m.space") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let kind = "m.space.child";
        for (state_key, id) in self.state_of_type(&state, kind)? {
            let Some(pdu) = self.pdu(&id)? else { continue };
            if pdu.get("content").and_then(|c| c.get("via")).and_then(Value::as_array).is_none_or(|v| v.is_empty()) {
                continue;
            }
            out.push(json!({
                "type": kind, "state_key": state_key, "content": pdu["content"], "sender": pdu["sender"],
                "origin_server_ts": pdu["origin_server_ts"],
            }));
        }
        Ok(out)
    }

    /// The summary of a room this server is in, as `/hierarchy` returns it (with
    /// `children_state`), or `None` if this server is not in the room.
    pub fn space_room_chunk(&self, room_id: &str) -> Result<Option<Value>> {
        if !self.is_resident(room_id)? {
            return Ok(None);
        }
        let Some(mut chunk) = self.public_room_chunk(room_id)? else { return Ok(None) };
        chunk["children_state"] = self.space_children_state(room_id)?.into();
        chunk["room_version"] = self.room_version(room_id)?.into();
        if let Some(id) = self.current_state_id(room_id, "m.room.encryption", "")?
            && let Some(alg) = self.pdu(&id)?.and_then(|p| p.get("content")?.get("algorithm").cloned())
        {
            chunk["encryption"] = alg;
        }
        if let Some(id) = self.current_state_id(room_id, "m.room.join_rules", "")?
            && let Some(content) = self.pdu(&id)?.and_then(|mut p| p.remove("content"))
        {
            let allowed = allowed_rooms(&content);
            if !allowed.is_empty() {
                chunk["allowed_room_ids"] = allowed.into();
            }
        }
        Ok(Some(chunk))
    }

    /// The children a room's `children_state` names.
    pub fn space_children(chunk: &Value, suggested_only: bool) -> Vec<Child> {
        let mut out = Vec::new();
        for event in chunk.get("children_state").and_then(Value::as_array).into_iter().flatten() {
            let (Some(room_id), Some(content)) = (event.get("state_key").and_then(Value::as_str), event.get("content"))
            else {
                continue;
            };
            let via = strings(content.get("via"));
            let suggested = content.get("suggested").and_then(Value::as_bool).unwrap_or(false);
            if via.is_empty() || (suggested_only && !suggested) {
                continue;
            }
            out.push(Child { room_id: room_id.to_owned(), via, suggested });
        }
        out
    }

    /// Whether the asker may preview a room this server is in: a member (or, for a server, one
    /// of its users is), the room is world readable, or its join rules let anyone knock or
    /// join (for restricted rooms: a member of one of the allowed rooms).
    pub fn may_preview(&self, asker: Asker<'_>, room_id: &str) -> Result<bool> {
        let member = match asker {
            Asker::User(user) => {
                matches!(self.current_membership(room_id, user)?.as_deref(), Some("join" | "invite"))
            }
            Asker::Server(server) => self.server_in_room(room_id, server)?,
            Asker::Anonymous => false,
        };
        if member {
            return Ok(true);
        }
        let content = |kind: &str| -> Result<Option<Value>> {
            let Some(id) = self.current_state_id(room_id, kind, "")? else { return Ok(None) };
            Ok(self.pdu(&id)?.and_then(|mut p| p.remove("content")))
        };
        let visibility = content("m.room.history_visibility")?;
        if visibility.as_ref().and_then(|c| c.get("history_visibility")?.as_str()) == Some("world_readable") {
            return Ok(true);
        }
        let rules = content("m.room.join_rules")?.unwrap_or_default();
        match rules.get("join_rule").and_then(Value::as_str).unwrap_or("public") {
            "public" | "knock" | "knock_restricted" => Ok(true),
            "restricted" => match asker {
                Asker::User(user) => self.joined_any(user, &allowed_rooms(&rules)),
                // Another server decides for its own users with `allowed_room_ids`.
                Asker::Server(_) => Ok(true),
                Asker::Anonymous => Ok(false),
            },
            _ => Ok(false),
        }
    }

    /// Whether `user_id` is joined to one of `rooms`.
    pub fn joined_any(&self, user_id: &str, rooms: &[String]) -> Result<bool> {
        for room in rooms {
            if self.current_membership(room, user_id)?.as_deref() == Some("join") {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The rooms whose members a restricted join rule (`m.room.join_rules` content) lets in.
pub fn allowed_rooms(join_rules: &Value) -> Vec<String> {
    join_rules
        .get("allow")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "m.room_membership")
        .filter_map(|a| a.get("room_id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The strings of a JSON array (`via`, `allowed_room_ids`); non-strings are skipped.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}
