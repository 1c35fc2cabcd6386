//! `createRoom`: the sequence of events the spec prescribes (create, the creator's join, power
//! levels, canonical alias, the preset's rules, `initial_state`, name, topic, invites), all in
//! one write: a room is created whole or not at all.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::build::NewEvent;
use super::{Room, RoomInfo};
use crate::error::{Error, Result};
use crate::server::Homeserver;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateRoom {
    pub visibility: Option<String>,
    pub room_alias_name: Option<String>,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<String>,
    pub room_version: Option<String>,
    pub creation_content: Option<Map<String, Value>>,
    pub initial_state: Vec<InitialState>,
    pub preset: Option<String>,
    pub is_direct: bool,
    pub power_level_content_override: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct InitialState {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub state_key: String,
    pub content: Map<String, Value>,
}

impl Homeserver {
    /// Creates a room; returns its id.
    pub fn create_room(&self, creator: &str, req: CreateRoom) -> Result<String> {
        let version = req.room_version.clone().unwrap_or_else(|| super::DEFAULT_VERSION.to_owned());
        if !super::SUPPORTED_VERSIONS.contains(&version.as_str()) {
            return Err(Error::new(
                crate::ErrorKind::UnsupportedRoomVersion,
                format!("Your homeserver does not support room version {version}"),
            ));
        }
        if let Some(over) = &req.power_level_content_override {
            super::levels::integers_only(&Value::Object(over.clone()))?;
        }
        let public = match req.visibility.as_deref() {
            None | Some("private") => false,
            Some("public") => true,
            Some(other) => return Err(Error::bad_json(format!("unknown visibility {other:?}"))),
        };
        let preset =
            req.preset.clone().unwrap_or_else(|| if public { "public_chat" } else { "private_chat" }.to_owned());
        if !matches!(preset.as_str(), "public_chat" | "private_chat" | "trusted_private_chat") {
            return Err(Error::bad_json(format!("unknown preset {preset:?}")));
        }
        let alias = match &req.room_alias_name {
            Some(name) => {
                if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
                    return Err(Error::invalid_param("Invalid characters in room alias"));
                }
                Some(format!("#{name}:{}", self.server_name))
            }
            None => None,
        };
        for user in &req.invite {
            if !crate::accounts::is_valid_user_id(user) {
                return Err(Error::invalid_param(format!("Invalid user id {user:?}")));
            }
        }
        let profile = self.profile(creator)?.unwrap_or_default();
        self.write(|txn| {
            if let Some(alias) = &alias
                && self.alias_target(alias)?.is_some()
            {
                return Err(Error::new(crate::ErrorKind::RoomInUse, "Room alias already taken"));
            }
            let provisional_id = format!("!{}:{}", Homeserver::random_string(18), self.server_name);
            let info = RoomInfo::new(&version, "");
            let mut room = Room::new(provisional_id, info)?;

            let mut create = req.creation_content.clone().unwrap_or_default();
            create.insert("room_version".into(), version.clone().into());
            if !room.version.creator_is_sender {
                create.insert("creator".into(), creator.into());
            }
            let create_id =
                self.append(txn, &mut room, creator, NewEvent::state("m.room.create", "", Value::Object(create)))?;
            room.info.create_event = create_id;

            let mut member = json!({ "membership": "join" });
            for field in ["displayname", "avatar_url"] {
                if let Some(v) = profile.get(field) {
                    member[field] = v.clone();
                }
            }
            self.append(txn, &mut room, creator, NewEvent::state("m.room.member", creator, member))?;

            let mut users = Map::new();
            if !room.version.room_id_is_create_event_id {
                users.insert(creator.into(), 100.into());
            }
            if preset == "trusted_private_chat" {
                for user in &req.invite {
                    users.insert(user.clone(), 100.into());
                }
            }
            let mut power = json!({
                "users": users,
                "users_default": 0,
                "events": {
                    "m.room.name": 50,
                    "m.room.power_levels": 100,
                    "m.room.history_visibility": 100,
                    "m.room.canonical_alias": 50,
                    "m.room.avatar": 50,
                    "m.room.tombstone": 100,
                    "m.room.server_acl": 100,
                    "m.room.encryption": 100,
                },
                "events_default": 0,
                "state_default": 50,
                "ban": 50,
                "kick": 50,
                "redact": 50,
                "invite": 0,
                "historical": 100,
            });
            if let Some(over) = &req.power_level_content_override {
                for (k, v) in over {
                    power[k.as_str()] = v.clone();
                }
            }
            self.append(txn, &mut room, creator, NewEvent::state("m.room.power_levels", "", power))?;

            if let Some(alias) = &alias {
                self.append(
                    txn,
                    &mut room,
                    creator,
                    NewEvent::state("m.room.canonical_alias", "", json!({ "alias": alias })),
                )?;
            }

            let overridden = |kind: &str| req.initial_state.iter().any(|s| s.kind == kind && s.state_key.is_empty());
            let join_rule = if preset == "public_chat" { "public" } else { "invite" };
            let mut preset_events = vec![
                ("m.room.join_rules", json!({ "join_rule": join_rule })),
                ("m.room.history_visibility", json!({ "history_visibility": "shared" })),
            ];
            if preset != "public_chat" {
                preset_events.push(("m.room.guest_access", json!({ "guest_access": "can_join" })));
            }
            for (kind, content) in preset_events {
                if !overridden(kind) {
                    self.append(txn, &mut room, creator, NewEvent::state(kind, "", content))?;
                }
            }
            for state in &req.initial_state {
                let content = Value::Object(state.content.clone());
                self.append(txn, &mut room, creator, NewEvent::state(&state.kind, &state.state_key, content))?;
            }
            if let Some(name) = &req.name {
                self.append(txn, &mut room, creator, NewEvent::state("m.room.name", "", json!({ "name": name })))?;
            }
            if let Some(topic) = &req.topic {
                let content = json!({ "topic": topic, "m.topic": [{ "body": topic, "mimetype": "text/plain" }] });
                self.append(txn, &mut room, creator, NewEvent::state("m.room.topic", "", content))?;
            }
            // Users of other servers are invited through their servers afterwards.
            for user in req.invite.iter().filter(|u| self.is_local(u)) {
                let mut content = serde_json::Map::new();
                content.insert("membership".into(), "invite".into());
                if req.is_direct {
                    content.insert("is_direct".into(), true.into());
                }
                // The invitee's profile, as on any invite, so the inviter's client can name them.
                self.add_profile(user, &mut content)?;
                self.append(txn, &mut room, creator, NewEvent::state("m.room.member", user, Value::Object(content)))?;
            }
            if let Some(alias) = &alias {
                self.stage_alias(txn, alias, &room.id, creator);
            }
            if public {
                self.stage_publish(txn, &room.id, true);
            }
            tracing::info!(room_id = %room.id, %version, "room created");
            Ok(room.id)
        })
    }
}
