//! Room upgrades: a new room of the requested version that carries the old one's settings,
//! a tombstone in the old room pointing at it, the old room restricted, and the local aliases
//! and directory listing moved, all in one write.

use serde_json::{Map, Value, json};

use super::build::NewEvent;
use super::{Room, RoomInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;

/// State the new room takes over from the old one.
const CARRIED: &[&str] = &[
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.canonical_alias",
];

impl Homeserver {
    /// `POST /rooms/{roomId}/upgrade`: returns the replacement room's id.
    pub fn upgrade_room(&self, user_id: &str, old_id: &str, new_version: &str) -> Result<String> {
        if !super::SUPPORTED_VERSIONS.contains(&new_version) {
            return Err(Error::new(
                ErrorKind::UnsupportedRoomVersion,
                format!("Your homeserver does not support room version {new_version}"),
            ));
        }
        self.write(|txn| {
            let mut old = self.room(old_id)?;
            if old.membership(self, user_id)?.as_deref() != Some("join") {
                return Err(Error::forbidden(format!("User {user_id} not in room {old_id}")));
            }
            let needed =
                old.required_power(self, |pl| pl.event("m.room.tombstone").unwrap_or(pl.state_default()), 50)?;
            if old.power(self, user_id)? < needed {
                return Err(Error::forbidden("You don't have permission to upgrade the room"));
            }
            let content_of = |room: &Room, kind: &str| -> Result<Option<Map<String, Value>>> {
                let Some(id) = room.state_id(self, kind, "")? else { return Ok(None) };
                Ok(self.pdu(&id)?.and_then(|mut p| p.remove("content")).and_then(|c| c.as_object().cloned()))
            };

            let info = RoomInfo::new(new_version, "");
            let mut new = Room::new(format!("!{}:{}", Homeserver::random_string(18), self.server_name), info)?;
            let old_create = content_of(&old, "m.room.create")?.unwrap_or_default();
            let mut create = Map::new();
            create.insert("room_version".into(), new_version.into());
            create.insert("predecessor".into(), json!({ "room_id": old_id }));
            for key in ["type", "m.federate"] {
                if let Some(v) = old_create.get(key) {
                    create.insert(key.into(), v.clone());
                }
            }
            if !new.version.creator_is_sender {
                create.insert("creator".into(), user_id.into());
            }
            new.info.create_event =
                self.append(txn, &mut new, user_id, NewEvent::state("m.room.create", "", Value::Object(create)))?;
            let mut member = json!({ "membership": "join" });
            if let Some(profile) = self.profile(user_id)? {
                for field in ["displayname", "avatar_url"] {
                    if let Some(v) = profile.get(field) {
                        member[field] = v.clone();
                    }
                }
            }
            self.append(txn, &mut new, user_id, NewEvent::state("m.room.member", user_id, member))?;

            // The old power levels, with the upgrader able to send the carried state; the old
            // levels are restored after (creators of v12 rooms need no entry at all).
            let old_power = super::levels::to_integers(content_of(&old, "m.room.power_levels")?.unwrap_or_default());
            let mut power = old_power.clone();
            let mut users = power.get("users").and_then(Value::as_object).cloned().unwrap_or_default();
            let mut restored = old_power.clone();
            if new.version.room_id_is_create_event_id {
                users.remove(user_id);
                let mut final_users = restored.get("users").and_then(Value::as_object).cloned().unwrap_or_default();
                final_users.remove(user_id);
                restored.insert("users".into(), Value::Object(final_users));
            } else {
                let current = users.get(user_id).and_then(Value::as_i64).unwrap_or(0);
                users.insert(user_id.into(), current.max(100).into());
            }
            power.insert("users".into(), Value::Object(users));
            self.append(
                txn,
                &mut new,
                user_id,
                NewEvent::state("m.room.power_levels", "", Value::Object(power.clone())),
            )?;
            for kind in CARRIED {
                if let Some(content) = content_of(&old, kind)? {
                    self.append(txn, &mut new, user_id, NewEvent::state(kind, "", Value::Object(content)))?;
                }
            }
            if restored != power {
                self.append(
                    txn,
                    &mut new,
                    user_id,
                    NewEvent::state("m.room.power_levels", "", Value::Object(restored)),
                )?;
            }

            let tombstone = json!({ "body": "This room has been replaced", "replacement_room": new.id });
            self.append(txn, &mut old, user_id, NewEvent::state("m.room.tombstone", "", tombstone))?;
            // Keep people from talking in the old room, as Synapse does.
            let mut restricted = old_power;
            let mut changed = false;
            for key in ["events_default", "invite"] {
                let level = restricted.get(key).and_then(Value::as_i64).unwrap_or(0);
                if level < 50 {
                    restricted.insert(key.into(), 50.into());
                    changed = true;
                }
            }
            if changed {
                // Best effort: if the upgrader cannot change the old power levels, the
                // tombstone still points everyone to the new room.
                if let Err(e) = self.append(
                    txn,
                    &mut old,
                    user_id,
                    NewEvent::state("m.room.power_levels", "", Value::Object(restricted)),
                ) {
                    tracing::info!(room_id = %old_id, "old room not restricted: {e}");
                }
            }
            for alias in self.room_aliases(old_id)? {
                self.stage_alias(txn, &alias, &new.id, user_id);
            }
            if self.room_visibility(old_id)? == "public" {
                self.stage_publish(txn, old_id, false);
                self.stage_publish(txn, &new.id, true);
            }
            tracing::info!(old = %old_id, new = %new.id, version = %new_version, "room upgraded");
            Ok(new.id)
        })
    }
}
