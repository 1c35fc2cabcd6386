//! Reading events back for clients: the client event format (with redactions applied and
//! `unsigned` filled in), history visibility, room state and member lists.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::EventMeta;
use super::render::Rendered;
use crate::error::{Error, Result};
use crate::raw_json::Object;
use crate::server::Homeserver;

/// The parts of an event's client form that depend on who reads it, or when.
struct ReaderExtras {
    age: u64,
    transaction_id: Option<String>,
    membership: Option<String>,
    relations: Option<Value>,
}

/// Who is reading, for `unsigned.transaction_id` and visibility.
#[derive(Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
}

/// Whether, and up to where, a user may read a room.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    Joined,
    /// Left, kicked or banned: the room as it was at this membership event.
    Left {
        event_id: String,
        pos: u64,
    },
    /// Not a member but the history is world readable.
    WorldReadable,
}

impl Homeserver {
    /// An event in the client-server format, or `None` if the server does not have it.
    pub fn client_event(&self, event_id: &str, viewer: Option<Viewer<'_>>) -> Result<Option<Value>> {
        let Some(meta) = self.event_meta(event_id)? else { return Ok(None) };
        let Some(rendered) = self.rendered(event_id, &meta)? else { return Ok(None) };
        let extras = self.reader_extras(event_id, &meta, &rendered, viewer)?;
        let mut out = rendered.fields.clone();
        let mut unsigned = rendered.unsigned.clone();
        unsigned.insert("age".into(), extras.age.into());
        if let Some(txn_id) = extras.transaction_id {
            unsigned.insert("transaction_id".into(), txn_id.into());
        }
        if let Some(membership) = extras.membership {
            unsigned.insert("membership".into(), membership.into());
        }
        if let Some(bundle) = extras.relations {
            unsigned.insert("m.relations".into(), bundle);
        }
        out.insert("unsigned".into(), Value::Object(unsigned));
        Ok(Some(Value::Object(out)))
    }

    /// [`Homeserver::client_event`] as JSON text, with the kept form it was written from.
    pub(crate) fn client_event_text(
        &self,
        event_id: &str,
        viewer: Option<Viewer<'_>>,
    ) -> Result<Option<(String, Arc<Rendered>)>> {
        let Some(meta) = self.event_meta(event_id)? else { return Ok(None) };
        let Some(rendered) = self.rendered(event_id, &meta)? else { return Ok(None) };
        let extras = self.reader_extras(event_id, &meta, &rendered, viewer)?;
        let mut unsigned = Object::with_capacity(rendered.unsigned_entries.len() + 64);
        unsigned.number("age", extras.age)?;
        if let Some(txn_id) = &extras.transaction_id {
            unsigned.field("transaction_id", txn_id)?;
        }
        if let Some(membership) = &extras.membership {
            unsigned.field("membership", membership)?;
        }
        if let Some(bundle) = &extras.relations {
            unsigned.field("m.relations", bundle)?;
        }
        let mut unsigned = unsigned.finish();
        if !rendered.unsigned_entries.is_empty() {
            // `{"age":1}` + kept entries: `{"age":1,"prev_content":...}`.
            unsigned.pop();
            unsigned.push(',');
            unsigned.push_str(&rendered.unsigned_entries);
            unsigned.push('}');
        }
        let mut out = String::with_capacity(rendered.head.len() + unsigned.len() + 16);
        out.push_str(&rendered.head);
        // `head` always holds `event_id` and `room_id`: a comma always follows.
        out.push_str(",\"unsigned\":");
        out.push_str(&unsigned);
        out.push('}');
        Ok(Some((out, rendered)))
    }

    /// What of an event's client form depends on the reader or the clock.
    fn reader_extras(
        &self,
        event_id: &str,
        meta: &EventMeta,
        rendered: &Rendered,
        viewer: Option<Viewer<'_>>,
    ) -> Result<ReaderExtras> {
        let mut extras = ReaderExtras {
            age: Self::now_ms().saturating_sub(rendered.ts),
            transaction_id: None,
            membership: None,
            relations: None,
        };
        if let (Some(v), Some(device)) = (viewer, &meta.device_id)
            && rendered.sender() == Some(v.user_id)
            && v.device_id == Some(device.as_str())
        {
            extras.transaction_id = meta.txn_id.clone();
        }
        // MSC4115 (spec v1.11): the reader's membership at the event, so clients can tell
        // "sent before I joined" from other undecryptable messages. Synapse's rule: the
        // membership after the event, `leave` when there is none.
        if let Some(v) = viewer {
            let membership = match self.visibility_at(meta, v.user_id)?.1 {
                Some(m) if !meta.outlier => m,
                _ if meta.outlier
                    && rendered.kind() == Some("m.room.member")
                    && rendered.state_key() == Some(v.user_id) =>
                {
                    // An out-of-band membership (an invite or its rejection) has no state.
                    rendered
                        .fields
                        .get("content")
                        .and_then(|c| c.get("membership"))
                        .and_then(Value::as_str)
                        .unwrap_or("leave")
                        .to_owned()
                }
                _ => "leave".to_owned(),
            };
            extras.membership = Some(membership);
        }
        if meta.redacted_by.is_none()
            && meta.related
            && let Some(v) = viewer
        {
            extras.relations = self.bundled_relations(event_id, v)?;
        }
        Ok(extras)
    }

    /// The content of a state event at a key in a state map.
    pub(crate) fn state_content(
        &self,
        map: &super::state::StateMap,
        kind: &str,
        state_key: &str,
    ) -> Result<Option<Value>> {
        let Some(id) = self.state_id_in(map, kind, state_key)? else { return Ok(None) };
        Ok(self.pdu(&id)?.and_then(|mut p| p.remove("content")))
    }

    /// The room's history visibility and `user_id`'s membership in the state after an event
    /// (so one's own join shows as joined), cached by state group.
    fn visibility_at(&self, meta: &EventMeta, user_id: &str) -> Result<(String, Option<String>)> {
        let key = (meta.after, user_id.to_owned());
        if let Some(v) = crate::server::lock(&self.visibility).get(&key).cloned() {
            return Ok(v);
        }
        let state = self.state_map(meta.after)?;
        let visibility = self
            .state_content(&state, "m.room.history_visibility", "")?
            .and_then(|c| c.get("history_visibility")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "shared".to_owned());
        let membership_at = self
            .state_content(&state, "m.room.member", user_id)?
            .and_then(|c| c.get("membership")?.as_str().map(str::to_owned));
        let mut cache = crate::server::lock(&self.visibility);
        if cache.len() > 200_000 {
            cache.clear();
        }
        cache.insert(key, (visibility.clone(), membership_at.clone()));
        Ok((visibility, membership_at))
    }

    /// Whether `user_id` may see `event_id`, by the room's history visibility at the event.
    pub fn may_see(&self, user_id: &str, event_id: &str) -> Result<bool> {
        let Some(meta) = self.event_meta(event_id)? else { return Ok(false) };
        let (visibility, membership_at) = self.visibility_at(&meta, user_id)?;
        if visibility == "world_readable" {
            return Ok(true);
        }
        match membership_at.as_deref() {
            Some("join") => Ok(true),
            Some("invite") if visibility == "invited" || visibility == "shared" => {
                Ok(visibility == "invited"
                    || self.current_membership(&meta.room_id, user_id)?.as_deref() == Some("join"))
            }
            // One's own membership changes (kicks, bans, leaves) are always visible to oneself.
            _ if self.current_state_id(&meta.room_id, "m.room.member", user_id)?.as_deref() == Some(event_id)
                || self.state_id_in(&*self.state_map(meta.after)?, "m.room.member", user_id)?.as_deref()
                    == Some(event_id) =>
            {
                Ok(true)
            }
            _ if visibility == "shared" => {
                Ok(self.current_membership(&meta.room_id, user_id)?.as_deref() == Some("join"))
            }
            _ => Ok(false),
        }
    }

    /// How `user_id` may read `room_id`; `M_FORBIDDEN` if not at all.
    pub fn room_access(&self, user_id: &str, room_id: &str) -> Result<Access> {
        let not_in_room = || Error::forbidden(format!("User {user_id} not in room {room_id}"));
        if self.room_info(room_id)?.is_none() {
            return Err(not_in_room());
        }
        if let Some(row) = self.membership_of(user_id, room_id)? {
            match row.membership.as_str() {
                "join" => return Ok(Access::Joined),
                "leave" | "ban" if !row.forgotten => return Ok(Access::Left { event_id: row.event_id, pos: row.pos }),
                _ => {}
            }
        }
        if self.world_readable(room_id)? { Ok(Access::WorldReadable) } else { Err(not_in_room()) }
    }

    /// Whether the room's current history visibility is `world_readable`.
    pub fn world_readable(&self, room_id: &str) -> Result<bool> {
        let Some(id) = self.current_state_id(room_id, "m.room.history_visibility", "")? else { return Ok(false) };
        Ok(self
            .pdu(&id)?
            .and_then(|p| p.get("content")?.get("history_visibility")?.as_str().map(|s| s == "world_readable"))
            .unwrap_or(false))
    }

    /// The room state a user may see: current if joined, at their leave if they left.
    pub fn visible_state(&self, user_id: &str, room_id: &str) -> Result<std::sync::Arc<super::state::StateMap>> {
        match self.room_access(user_id, room_id)? {
            Access::Joined | Access::WorldReadable => {
                let info = self.room_info(room_id)?.ok_or_else(|| Error::not_found("Unknown room"))?;
                self.state_map(info.state_group)
            }
            Access::Left { event_id, .. } => self.state_at_event(&event_id, true),
        }
    }

    /// Every visible state event, client format.
    pub fn room_state(&self, user_id: &str, room_id: &str) -> Result<Vec<Value>> {
        let map = self.visible_state(user_id, room_id)?;
        let mut out = Vec::with_capacity(map.len());
        for id in self.state_event_ids(&map)? {
            if let Some(e) = self.client_event(&id, None)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// One visible state event (the whole client event; handlers usually return its content).
    pub fn room_state_event(&self, user_id: &str, room_id: &str, kind: &str, state_key: &str) -> Result<Value> {
        let map = self.visible_state(user_id, room_id)?;
        let id = self.state_id_in(&map, kind, state_key)?.ok_or_else(|| Error::not_found("Event not found."))?;
        self.client_event(&id, None)?.ok_or_else(|| Error::not_found("Event not found."))
    }

    /// `/event/{eventId}`: the event if the user may see it.
    pub fn get_event(&self, user_id: &str, device_id: Option<&str>, room_id: &str, event_id: &str) -> Result<Value> {
        let not_found = || Error::not_found("Event not found.");
        self.room_access(user_id, room_id)?;
        let meta = self.event_meta(event_id)?.ok_or_else(not_found)?;
        // Rejected events were never part of the room; soft-failed ones are hidden from clients.
        if meta.room_id != room_id || meta.rejected.is_some() || meta.soft_failed || !self.may_see(user_id, event_id)? {
            return Err(not_found());
        }
        self.client_event(event_id, Some(Viewer { user_id, device_id }))?.ok_or_else(not_found)
    }

    /// The member events of a room's visible state, filtered by membership.
    pub fn room_members(
        &self,
        user_id: &str,
        room_id: &str,
        membership: Option<&str>,
        not_membership: Option<&str>,
    ) -> Result<Vec<Value>> {
        let map = self.visible_state(user_id, room_id)?;
        let mut out = Vec::new();
        for (_, id) in self.state_of_type(&map, "m.room.member")? {
            let Some(e) = self.client_event(&id, None)? else { continue };
            let m = e["content"]["membership"].as_str().unwrap_or_default();
            if membership.is_some_and(|want| want != m) || not_membership.is_some_and(|not| not == m) {
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// `joined_members`: display names and avatars of the joined members.
    /// Members may ask, and anyone may of a world-readable room (as in Synapse); a member who
    /// left may not otherwise (the list is the current one).
    pub fn joined_members(&self, user_id: &str, room_id: &str) -> Result<Value> {
        let allowed = match self.room_access(user_id, room_id)? {
            Access::Joined | Access::WorldReadable => true,
            Access::Left { .. } => self.world_readable(room_id)?,
        };
        if !allowed {
            return Err(Error::forbidden(format!("User {user_id} not in room {room_id}")));
        }
        let mut joined = Map::new();
        for (member, event_id) in self.members_with(room_id, "join")? {
            let content = self.pdu(&event_id)?.and_then(|mut p| p.remove("content")).unwrap_or_default();
            joined.insert(
                member,
                json!({ "display_name": content.get("displayname"), "avatar_url": content.get("avatar_url") }),
            );
        }
        Ok(json!({ "joined": joined }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::Viewer;

    /// The text form sync writes and the `Value` form other endpoints build are one event:
    /// with kept `unsigned` entries (`prev_content`, `redacted_because`) and per-reader ones
    /// (`transaction_id`, `membership`).
    #[test]
    fn the_text_form_is_the_value_form() {
        let (_dir, hs) = crate::server::test_server();
        let alice = hs.create_account("alice", None, false).unwrap();
        let room = hs.create_room(&alice, Default::default()).unwrap();
        hs.send_state(&alice, &room, "m.room.topic", "", json!({"topic": "first \"quoted\""})).unwrap();
        let topic = hs.send_state(&alice, &room, "m.room.topic", "", json!({"topic": "second é"})).unwrap();
        let message = hs.send_message(&alice, "D", &room, "m.room.message", "t1", json!({"body": "hi"})).unwrap();
        let redacted = hs.send_message(&alice, "D", &room, "m.room.message", "t2", json!({"body": "x"})).unwrap();
        hs.redact(&alice, "D", &room, &redacted, "t3", json!({})).unwrap();

        let without_age = |mut e: Value| {
            e["unsigned"].as_object_mut().unwrap().remove("age");
            if let Some(because) = e["unsigned"].get_mut("redacted_because") {
                because["unsigned"].as_object_mut().map(|u| u.remove("age"));
            }
            e
        };
        let viewer = Viewer { user_id: &alice, device_id: Some("D") };
        for (id, who) in [(&topic, None), (&message, Some(viewer)), (&redacted, Some(viewer)), (&topic, Some(viewer))] {
            let value = hs.client_event(id, who).unwrap().unwrap();
            let (text, _) = hs.client_event_text(id, who).unwrap().unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(without_age(parsed), without_age(value), "{id}");
        }
        // The parts compared are there.
        let (text, _) = hs.client_event_text(&topic, None).unwrap().unwrap();
        assert!(text.contains("prev_content"), "{text}");
        let (text, _) = hs.client_event_text(&message, Some(viewer)).unwrap().unwrap();
        assert!(text.contains(r#""transaction_id":"t1""#) && text.contains(r#""membership":"join""#), "{text}");
        let (text, _) = hs.client_event_text(&redacted, None).unwrap().unwrap();
        assert!(text.contains("redacted_because") && !text.contains(r#""body""#), "{text}");
    }
}
