//! The room summary (MSC3266, spec v1.15 `GET /room_summary/{roomIdOrAlias}`): what a client
//! shows of a room before joining it. A room this server is in is summarised here; another
//! room from the `room` of another server's `/hierarchy` answer, checked and trimmed here.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::hierarchy::{Asker, strings};
use crate::server::Homeserver;

/// The fields of a summary (spec `room_summary.yaml`); anything else another server sends is
/// dropped.
const FIELDS: &[&str] = &[
    "room_id",
    "name",
    "topic",
    "avatar_url",
    "canonical_alias",
    "num_joined_members",
    "world_readable",
    "guest_can_join",
    "join_rule",
    "room_type",
    "room_version",
    "encryption",
    "allowed_room_ids",
];

fn not_found() -> Error {
    Error::not_found("Room not found or not one you may preview")
}

impl Homeserver {
    /// The summary of a room or alias for `user` (`None`: unauthenticated): ours if this
    /// server is in the room, else from the `room` of the first of `via` (and the alias's
    /// servers) whose `/hierarchy` answers.
    pub async fn summary_of_room(self: &Arc<Self>, user: Option<&str>, room: &str, via: Vec<String>) -> Result<Value> {
        let (room_id, alias_via) = self.resolve_room(room).await?;
        let via: Vec<String> = via.into_iter().chain(alias_via).collect();
        let (u, r) = (user.map(str::to_owned), room_id.clone());
        if let Some(local) = self.blocking(move |hs| hs.local_room_summary(u.as_deref(), &r)).await? {
            return Ok(local);
        }
        let answer = match self.remote_hierarchy(&room_id, &via, false).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::info!(%room_id, "room summary from other servers: {e}");
                return Err(not_found());
            }
        };
        let chunk = answer.get("room").cloned().ok_or_else(not_found)?;
        let u = user.map(str::to_owned);
        self.blocking(move |hs| hs.remote_room_summary(u.as_deref(), &room_id, chunk)).await
    }

    /// The summary of a room this server is in, for `user` (`None`: unauthenticated);
    /// `Ok(None)` when this server is not in the room (another server must be asked), not
    /// found when the user may not preview it.
    pub fn local_room_summary(&self, user: Option<&str>, room_id: &str) -> Result<Option<Value>> {
        let Some(chunk) = self.space_room_chunk(room_id)? else { return Ok(None) };
        let membership = self.summary_membership(user, room_id)?;
        // Someone invited, knocking or joined sees the room they are dealing with.
        let involved = matches!(membership.as_deref(), Some("invite" | "knock" | "join"));
        if !involved && !self.may_preview(user.map_or(Asker::Anonymous, Asker::User), room_id)? {
            return Err(not_found());
        }
        Ok(Some(trimmed(chunk, membership)))
    }

    /// A summary another server gave for `room_id`, if `user` may see it by what it says
    /// (world readable, open to join or knock, or restricted to rooms the user is in).
    pub fn remote_room_summary(&self, user: Option<&str>, room_id: &str, chunk: Value) -> Result<Value> {
        if chunk.get("room_id").and_then(Value::as_str) != Some(room_id) {
            return Err(not_found());
        }
        let membership = self.summary_membership(user, room_id)?;
        let allowed = matches!(membership.as_deref(), Some("invite" | "knock" | "join"))
            || chunk["world_readable"] == true
            || match chunk["join_rule"].as_str().unwrap_or("public") {
                "public" | "knock" | "knock_restricted" => true,
                "restricted" => match user {
                    Some(user) => self.joined_any(user, &strings(chunk.get("allowed_room_ids")))?,
                    None => false,
                },
                _ => false,
            };
        if !allowed {
            return Err(not_found());
        }
        Ok(trimmed(chunk, membership))
    }

    /// The user's membership as this server knows it (`leave` when none), or `None` for an
    /// unauthenticated client, which is told nothing about memberships.
    fn summary_membership(&self, user: Option<&str>, room_id: &str) -> Result<Option<String>> {
        let Some(user) = user else { return Ok(None) };
        Ok(Some(self.membership_of(user, room_id)?.map_or_else(|| "leave".to_owned(), |r| r.membership)))
    }
}

/// Only the summary's own fields, and the membership.
fn trimmed(chunk: Value, membership: Option<String>) -> Value {
    let Value::Object(fields) = chunk else { return Value::Object(Map::new()) };
    let mut out: Map<String, Value> = fields.into_iter().filter(|(k, _)| FIELDS.contains(&k.as_str())).collect();
    if let Some(m) = membership {
        out.insert("membership".into(), m.into());
    }
    Value::Object(out)
}
