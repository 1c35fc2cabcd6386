//! Membership changes a local user makes: join, invite, leave, kick, ban, unban, knock,
//! forget; and the re-sent member event when a profile changes.

use serde_json::{Map, Value};
use tandem_state_res::{Content, JoinRule};

use super::Room;
use super::build::NewEvent;
use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;
use crate::tables;

impl Homeserver {
    /// Sends `target`'s member event with `membership`, sent by `sender`. Returns the event id.
    pub fn set_membership(
        &self,
        sender: &str,
        room_id: &str,
        target: &str,
        membership: &str,
        reason: Option<&str>,
        extra: Option<Map<String, Value>>,
    ) -> Result<String> {
        if !crate::accounts::is_valid_user_id(target) {
            return Err(Error::invalid_param(format!("Invalid user id {target:?}")));
        }
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            let current = room.membership(self, target)?;
            let mut content = extra.clone().unwrap_or_default();
            content.insert("membership".into(), membership.into());
            if let Some(reason) = reason {
                content.insert("reason".into(), reason.into());
            }
            match membership {
                "join" => {
                    if current.as_deref() == Some("join") {
                        // Joining a room one is in changes nothing, as in Synapse.
                        return Ok(room.state_id(self, "m.room.member", target)?.unwrap_or_default());
                    }
                    self.add_profile(target, &mut content)?;
                    if current.as_deref() != Some("invite")
                        && let Some(authoriser) = self.restricted_join_authoriser(&room, target)?
                    {
                        content.insert("join_authorised_via_users_server".into(), authoriser.into());
                    }
                }
                "invite" | "knock" => self.add_profile(target, &mut content)?,
                "leave"
                    if sender != target && !matches!(current.as_deref(), Some("join" | "invite" | "knock" | "ban")) =>
                {
                    return Err(Error::forbidden("The target user is not in the room"));
                }
                "leave" if sender == target && current.is_none() => {
                    return Err(Error::forbidden(format!("User {target} is not in room {room_id}")));
                }
                _ => {}
            }
            let event = NewEvent::state("m.room.member", target, Value::Object(content));
            self.append(txn, &mut room, sender, event)
        })
    }

    /// Declines an invite (or withdraws a knock) without the room's other servers, when none
    /// can be reached or none is left: an invite must always be declinable. In a room this
    /// server holds the leave is a real event (the auth rules let an invitee leave); otherwise
    /// it is an out-of-band leave, signed here after the invite and known only here, as
    /// Synapse makes it. Returns the leave's event id.
    pub fn decline_locally(&self, user_id: &str, room_id: &str, reason: Option<&str>) -> Result<String> {
        let row = self
            .membership_of(user_id, room_id)?
            .filter(|r| matches!(r.membership.as_str(), "invite" | "knock"))
            .ok_or_else(|| Error::forbidden(format!("User {user_id} is not in room {room_id}")))?;
        if self.room_info(room_id)?.is_some() {
            match self.set_membership(user_id, room_id, user_id, "leave", reason, None) {
                Ok(id) => return Ok(id),
                Err(e) => tracing::info!(%room_id, "declining in the room failed, declining out of band: {e}"),
            }
        }
        let invite = self.pdu(&row.event_id)?.ok_or_else(|| Error::internal("membership event missing"))?;
        let version = match self.room_info(room_id)? {
            Some(info) => info.version,
            None => self
                .stored_stripped_state(&row.event_id)?
                .unwrap_or_default()
                .iter()
                .find(|e| e["type"] == "m.room.create")
                .and_then(|e| e["content"]["room_version"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "1".to_owned()),
        };
        let mut content = serde_json::json!({ "membership": "leave" });
        if let Some(reason) = reason {
            content["reason"] = reason.into();
        }
        let depth = invite.get("depth").and_then(Value::as_u64).unwrap_or(0) + 1;
        let (_, rules) = super::version_rules(&version)?;
        let template = serde_json::json!({
            "type": "m.room.member",
            "room_id": room_id,
            "sender": user_id,
            "state_key": user_id,
            "content": content,
            "prev_events": super::build::cited(&rules, std::slice::from_ref(&row.event_id)),
            "auth_events": super::build::cited(&rules, std::slice::from_ref(&row.event_id)),
            "depth": depth,
        });
        let Value::Object(template) = template else { return Err(Error::internal("template")) };
        let pdu = self.sign_template(&version, room_id, user_id, "leave", template)?;
        self.record_remote_membership(user_id, room_id, &pdu, "leave", None)?;
        Ok(pdu.event_id)
    }

    pub(crate) fn add_profile(&self, user_id: &str, content: &mut Map<String, Value>) -> Result<()> {
        if let Some(profile) = self.profile(user_id)? {
            for field in ["displayname", "avatar_url"] {
                if let Some(v) = profile.get(field)
                    && !content.contains_key(field)
                {
                    content.insert(field.into(), v.clone());
                }
            }
        }
        Ok(())
    }

    /// For a join under a `restricted` rule by a user who is not invited: a local member who
    /// can invite, if the user is in one of the allowed rooms. `None` when no authoriser
    /// applies (the auth rules then decide).
    pub(crate) fn restricted_join_authoriser(&self, room: &Room, user_id: &str) -> Result<Option<String>> {
        let Some(rules) = room.state_event(self, "m.room.join_rules", "")? else { return Ok(None) };
        let Content::JoinRules(rule) = rules.content else { return Ok(None) };
        if !matches!(rule, JoinRule::Restricted | JoinRule::KnockRestricted) {
            return Ok(None);
        }
        let Some(pdu) = self.pdu(&rules.event_id)? else { return Ok(None) };
        let allowed: Vec<String> = pdu
            .get("content")
            .and_then(|c| c.get("allow"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| a.get("type").and_then(Value::as_str) == Some("m.room_membership"))
            .filter_map(|a| a.get("room_id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let mut member_of_allowed = false;
        for allowed_room in &allowed {
            if self.current_membership(allowed_room, user_id)?.as_deref() == Some("join") {
                member_of_allowed = true;
                break;
            }
        }
        if !member_of_allowed {
            return Err(Error::forbidden("You do not belong to any of the required rooms/spaces to join this room."));
        }
        let invite_level = room.required_power(self, |pl| pl.invite(), 0)?;
        for (member, _) in self.members_with(&room.id, "join")? {
            if self.is_local(&member) && room.power(self, &member)? >= invite_level {
                return Ok(Some(member));
            }
        }
        Err(Error::forbidden("No local user can authorise this join"))
    }

    /// Sends a new join event for `user_id` with its content changed by `edit`.
    pub(crate) fn update_own_member_event(
        &self,
        user_id: &str,
        room_id: &str,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<String> {
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            let Some(current) = room.state_id(self, "m.room.member", user_id)? else {
                return Err(Error::forbidden("not in room"));
            };
            let mut content = self
                .pdu(&current)?
                .and_then(|p| p.get("content").and_then(Value::as_object).cloned())
                .unwrap_or_default();
            if content.get("membership").and_then(Value::as_str) != Some("join") {
                return Err(Error::forbidden("not joined"));
            }
            content.remove("join_authorised_via_users_server");
            edit(&mut content);
            self.append(txn, &mut room, user_id, NewEvent::state("m.room.member", user_id, Value::Object(content)))
        })
    }

    /// Hides a room the user has left from their sync and history.
    pub fn forget_room(&self, user_id: &str, room_id: &str) -> Result<()> {
        self.write(|txn| {
            let Some(mut row) = self.membership_of(user_id, room_id)? else {
                return Err(Error::not_found("Not a known room for this user"));
            };
            if matches!(row.membership.as_str(), "join" | "invite" | "knock") {
                return Err(Error::new(ErrorKind::BadState, format!("User {user_id} is in room {room_id}")));
            }
            row.forgotten = true;
            tables::rooms::put_membership(&mut txn.batch, user_id, room_id, &row);
            Ok(())
        })
    }

    /// The members a client names a room by when it has no name (`m.heroes`): up to five
    /// others than `user_id`, joined ones first, from [`Homeserver::members_with`]'s lists.
    pub(crate) fn heroes<'a>(
        joined: &'a [(String, String)],
        invited: &'a [(String, String)],
        user_id: &'a str,
    ) -> impl Iterator<Item = &'a (String, String)> + 'a {
        joined.iter().chain(invited).filter(move |(u, _)| u != user_id).take(5)
    }

    /// Members of a room with one membership, from its current state: `(user_id, event_id)`.
    pub fn members_with(&self, room_id: &str, membership: &str) -> Result<Vec<(String, String)>> {
        let (version, _) = super::version_rules(&self.room_version(room_id)?)?;
        let mut out = Vec::new();
        for (user, event_id) in tables::rooms::current_of_type(&self.db, room_id, "m.room.member")? {
            let event = self.auth_event(&version, &event_id)?;
            if event.membership().map(|m| m.as_str()) == Some(membership) {
                out.push((user, event_id));
            }
        }
        Ok(out)
    }

    /// The rooms `user_id` and `other` are both joined to, sorted (`/mutual_rooms`).
    pub fn mutual_rooms(&self, user_id: &str, other: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for room in self.joined_rooms(user_id)? {
            if self.current_membership(&room, other)?.as_deref() == Some("join") {
                out.push(room);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The content of the room's join rules, for `/join` checks and the directory.
    pub fn join_rule(&self, room_id: &str) -> Result<Option<String>> {
        let Some(id) = self.current_state_id(room_id, "m.room.join_rules", "")? else { return Ok(None) };
        Ok(self.pdu(&id)?.and_then(|p| p.get("content")?.get("join_rule")?.as_str().map(str::to_owned)))
    }
}
