//! Rooms shared with other servers, the parts that read and write this server's rooms: the
//! halves of membership handshakes that [`super::handshake`] runs (templates made and signed,
//! signed events accepted, a remote join's state taken, invites both ways), and what this
//! server tells others about a room (state, auth chains, history).

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

use super::build::NewEvent;
use super::state::NamedState;
use super::{EventMeta, MembershipRow, Room, RoomInfo, version_rules};
use crate::error::{Error, ErrorKind, Result};
use crate::inbound::{Pdu, Received, event_ids};
use crate::server::Homeserver;
use crate::tables::{self, events};

/// An event drafted by this server for a local user, signed, not yet part of the room.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub room_version: String,
    pub pdu: Pdu,
}

impl Homeserver {
    /// `make_join`, `make_leave`, `make_knock`: an unsigned membership event for `user_id`,
    /// if the current state would allow it, and the room version. `versions` are those the
    /// asking server supports (`None`: only version 1, as the spec says for a missing `ver`).
    pub fn membership_template(
        &self,
        room_id: &str,
        user_id: &str,
        membership: &str,
        versions: Option<&[String]>,
    ) -> Result<(String, Map<String, Value>)> {
        let room = self.room(room_id)?;
        if let Some(versions) = versions
            && !versions.contains(&room.info.version)
        {
            return Err(Error::new(
                ErrorKind::IncompatibleRoomVersion,
                format!(
                    "Your homeserver does not support the features required to join this room (version {})",
                    room.info.version
                ),
            ));
        }
        let mut content = Map::new();
        content.insert("membership".into(), membership.into());
        if membership == "join"
            && room.membership(self, user_id)?.as_deref() != Some("invite")
            && let Some(authoriser) = self.restricted_join_authoriser(&room, user_id)?
        {
            content.insert("join_authorised_via_users_server".into(), authoriser.into());
        }
        let new = NewEvent::state("m.room.member", user_id, Value::Object(content));
        let (obj, _) = self.draft(&room, user_id, new, None)?;
        Ok((room.info.version.clone(), obj))
    }

    /// A join naming one of our users in `join_authorised_via_users_server` (restricted
    /// rooms), before its signatures are checked: ours must be on it. The joining user must
    /// meet the room's allow rules now (make_join checked them, but the joining server need
    /// not have asked); then the event gets our signature beside the others. Other events
    /// come back as they are.
    pub fn authorise_restricted_join(&self, room_id: &str, pdu: &Value) -> Result<Value> {
        let Some(authoriser) = pdu.pointer("/content/join_authorised_via_users_server").and_then(Value::as_str) else {
            return Ok(pdu.clone());
        };
        if !self.is_local(authoriser) || pdu.pointer("/content/membership").and_then(Value::as_str) != Some("join") {
            return Ok(pdu.clone());
        }
        let room = self.room(room_id)?;
        let sender = pdu.get("sender").and_then(Value::as_str).unwrap_or_default();
        if !matches!(room.membership(self, sender)?.as_deref(), Some("invite" | "join")) {
            self.restricted_join_authoriser(&room, sender)?
                .ok_or_else(|| Error::forbidden("The room's join rules do not let this user in"))?;
        }
        self.countersign(&room, pdu)
    }

    /// `send_join`, `send_leave`, `send_knock`: takes another server's signed membership event
    /// into the room and passes it on to the other servers in it (a restricted join already
    /// countersigned by [`Homeserver::authorise_restricted_join`]); the event as stored is
    /// returned.
    pub fn accept_membership(&self, room_id: &str, origin: &str, pdu: &Pdu, membership: &str) -> Result<Pdu> {
        let ev = &pdu.json;
        let sender = ev.get("sender").and_then(Value::as_str).unwrap_or_default();
        if ev.get("type").and_then(Value::as_str) != Some("m.room.member")
            || ev.get("state_key").and_then(Value::as_str) != Some(sender)
            || ev.pointer("/content/membership").and_then(Value::as_str) != Some(membership)
        {
            return Err(Error::bad_json(format!("not a {membership} event of its sender")));
        }
        if sender.split_once(':').map(|(_, s)| s) != Some(origin) {
            return Err(Error::forbidden("the event's sender is not on the server that sent it"));
        }
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            let pdu = pdu.clone();
            let before = room.info.state_group;
            match self.receive_in(txn, &mut room, &pdu, None)? {
                Received::Accepted | Received::AlreadyKnown => {}
                Received::SoftFailed => return Err(Error::forbidden("the room's current state does not allow this")),
                Received::Rejected(why) => return Err(Error::forbidden(why)),
            }
            self.enqueue_pdu(txn, &room, before, &pdu.event_id, &[origin])?;
            Ok(pdu)
        })
    }

    /// `pdu` with our signature added: over its redacted form, as every event signature is,
    /// leaving its content hash as the sender made it (recomputing it would vouch for
    /// content we never saw signed).
    fn countersign(&self, room: &Room, pdu: &Value) -> Result<Value> {
        let obj = ruma::canonical_json::try_from_json_map(pdu.as_object().cloned().unwrap_or_default())
            .map_err(|e| Error::bad_json(e.to_string()))?;
        let mut redacted = ruma::canonical_json::redact(obj, &room.rules.redaction, None)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        ruma::signatures::sign_json(&self.server_name, self.key.pair(), &mut redacted)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        let ours = redacted
            .get("signatures")
            .and_then(|s| match s {
                ruma::CanonicalJsonValue::Object(o) => o.get(&self.server_name).cloned(),
                _ => None,
            })
            .ok_or_else(|| Error::bad_json("signing the event failed"))?;
        let mut out = pdu.clone();
        if !out.get("signatures").is_some_and(Value::is_object) {
            out["signatures"] = serde_json::json!({});
        }
        out["signatures"][&self.server_name] = serde_json::to_value(ours)?;
        Ok(out)
    }

    /// The state before an event and the auth chain of that state and the event, as event ids.
    pub fn state_ids_at(&self, event_id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let meta =
            self.event_meta(event_id)?.filter(|m| !m.outlier).ok_or_else(|| Error::not_found("Unknown event"))?;
        let state = self.state_event_ids(&*self.state_map(meta.before)?)?;
        let mut roots = state.clone();
        roots.push(event_id.to_owned());
        let chain = self.auth_chain(&roots)?;
        Ok((state, chain))
    }

    /// The state before a join for a server that asked for members to be omitted
    /// (`send_join` with `omit_members`, spec v1.6): every state event but the member events,
    /// save those of the room's heroes when it has neither name nor canonical alias (the
    /// joining server names the room by them); and the auth chain of those and of the join, less
    /// what the state holds already. The joining server fetches the members afterwards.
    pub fn partial_state_ids_at(&self, event_id: &str, joiner: &str) -> Result<(Vec<String>, Vec<String>)> {
        let meta =
            self.event_meta(event_id)?.filter(|m| !m.outlier).ok_or_else(|| Error::not_found("Unknown event"))?;
        let named = self.named_state(&*self.state_map(meta.before)?)?;
        let nameless = ["m.room.name", "m.room.canonical_alias"]
            .iter()
            .all(|kind| !named.contains_key(&((*kind).to_owned(), String::new())));
        let heroes: HashSet<String> = if nameless {
            let (joined, invited) =
                (self.members_with(&meta.room_id, "join")?, self.members_with(&meta.room_id, "invite")?);
            Self::heroes(&joined, &invited, joiner).map(|(user, _)| user.clone()).collect()
        } else {
            HashSet::new()
        };
        let state: Vec<String> = named
            .into_iter()
            .filter(|((kind, state_key), _)| kind != "m.room.member" || heroes.contains(state_key))
            .map(|(_, id)| id)
            .collect();
        let mut roots = state.clone();
        roots.push(event_id.to_owned());
        let in_state: HashSet<&String> = state.iter().collect();
        let chain = self.auth_chain(&roots)?.into_iter().filter(|id| !in_state.contains(id)).collect();
        Ok((state, chain))
    }

    /// Every event in the auth chains of `ids` (not `ids` themselves unless cited).
    pub fn auth_chain(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        for id in ids {
            if let Some(pdu) = self.pdu(id)? {
                stack.extend(event_ids(&Value::Object(pdu), "auth_events"));
            }
        }
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(pdu) = self.pdu(&id)? else { continue };
            stack.extend(event_ids(&Value::Object(pdu), "auth_events"));
            out.push(id);
        }
        Ok(out)
    }

    /// A state map of the events `ids` (skipping rejected ones and events not held).
    pub fn state_from_ids(&self, room_id: &str, ids: &[String]) -> Result<NamedState> {
        let room = self.room(room_id)?;
        let mut map = NamedState::new();
        for id in ids {
            if !room.has_event(self, id)? {
                continue;
            }
            let event = room.auth_event(self, id)?;
            if let (false, Some(sk)) = (event.rejected, event.state_key()) {
                map.insert((event.kind.as_str().to_owned(), sk.to_owned()), id.clone());
            }
        }
        Ok(map)
    }

    /// PDUs by id, skipping those this server lacks.
    pub fn pdus(&self, ids: &[String]) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(pdu) = self.pdu(id)? {
                out.push(Value::Object(pdu));
            }
        }
        Ok(out)
    }

    /// Whether `server` has a user joined to the room now, or at `event_id` if given: the
    /// condition for it to read the room's events and state over federation.
    pub fn server_in_room(&self, room_id: &str, server: &str) -> Result<bool> {
        let Some(room) = self.load_room(room_id)? else { return Ok(false) };
        Ok(self.joined_servers(&room, room.info.state_group, None)?.contains(server))
    }

    /// `/backfill`: up to `limit` events preceding `from` (and `from` themselves), newest
    /// first, by walking `prev_events`; redacted where `server` may not see them.
    pub fn backfill(&self, server: &str, room_id: &str, from: &[String], limit: usize) -> Result<Vec<Value>> {
        let events = self.walk_back(room_id, from, &BTreeSet::new(), limit)?;
        events.into_iter().map(|(id, e)| self.for_server(server, &id, e)).collect()
    }

    /// Whether `server` may see the event whole: the room's history visibility at the event
    /// allows it (world readable or shared, or a member of that server invited or joined then,
    /// as the visibility requires).
    pub fn server_may_see(&self, server: &str, event_id: &str) -> Result<bool> {
        let Some(meta) = self.event_meta(event_id)? else { return Ok(false) };
        let state = self.state_map(meta.after)?;
        let visibility = self
            .state_content(&state, "m.room.history_visibility", "")?
            .and_then(|c| c.get("history_visibility")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "shared".to_owned());
        let invited_counts = match visibility.as_str() {
            "invited" => true,
            "joined" => false,
            _ => return Ok(true),
        };
        // The servers joined at each state group are cached for the outbound queue already.
        let room = self.room(&meta.room_id)?;
        if self.joined_servers(&room, meta.after, None)?.contains(server) {
            return Ok(true);
        }
        if invited_counts {
            for (user, id) in self.state_of_type(&state, "m.room.member")? {
                if user.split_once(':').is_some_and(|(_, s)| s == server)
                    && room.auth_event(self, &id)?.membership().is_some_and(|m| m.as_str() == "invite")
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The event as `server` may see it: whole, or redacted (see [`Self::server_may_see`]).
    pub fn for_server(&self, server: &str, event_id: &str, pdu: Value) -> Result<Value> {
        if self.server_may_see(server, event_id)? {
            return Ok(pdu);
        }
        let Some(meta) = self.event_meta(event_id)? else { return Ok(pdu) };
        let (_, rules) = version_rules(&self.room_version(&meta.room_id)?)?;
        let Ok(ruma::CanonicalJsonValue::Object(obj)) = ruma::CanonicalJsonValue::try_from(pdu.clone()) else {
            return Ok(pdu);
        };
        match ruma::canonical_json::redact(obj, &rules.redaction, None) {
            Ok(redacted) => Ok(serde_json::to_value(redacted)?),
            Err(_) => Ok(pdu),
        }
    }

    /// `/get_missing_events`: events before `latest` and after `earliest`, oldest first.
    pub fn missing_between(
        &self,
        server: &str,
        room_id: &str,
        earliest: &[String],
        latest: &[String],
        limit: usize,
    ) -> Result<Vec<Value>> {
        let stop: BTreeSet<String> = earliest.iter().cloned().collect();
        let mut starts = Vec::new();
        for id in latest {
            if let Some(pdu) = self.pdu(id)? {
                starts.extend(event_ids(&Value::Object(pdu), "prev_events"));
            }
        }
        let mut out = self.walk_back(room_id, &starts, &stop, limit)?;
        out.reverse();
        out.into_iter().map(|(id, e)| self.for_server(server, &id, e)).collect()
    }

    fn walk_back(
        &self,
        room_id: &str,
        from: &[String],
        stop: &BTreeSet<String>,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        // Newest first by depth, as Synapse answers.
        let mut queue: Vec<(i64, String)> = Vec::new();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in from {
            if let Some(pdu) = self.pdu(id)? {
                let depth = pdu.get("depth").and_then(Value::as_i64).unwrap_or(0);
                queue.push((depth, id.clone()));
            }
        }
        while out.len() < limit {
            queue.sort();
            let Some((_, id)) = queue.pop() else { break };
            if stop.contains(&id) || !seen.insert(id.clone()) {
                continue;
            }
            let Some(pdu) = self.pdu(&id)? else { continue };
            if pdu.get("room_id").and_then(Value::as_str).is_some_and(|r| r != room_id) {
                continue;
            }
            let pdu = Value::Object(pdu);
            for prev in event_ids(&pdu, "prev_events") {
                if let Some(p) = self.pdu(&prev)? {
                    queue.push((p.get("depth").and_then(Value::as_i64).unwrap_or(0), prev));
                }
            }
            out.push((id, pdu));
        }
        Ok(out)
    }

    /// Joins a room on another server: `join` is the join event (signed by this server and,
    /// after `send_join`, by the resident server), `state` the state before it and `auth_chain`
    /// their auth events, all with signatures and hashes checked.
    pub fn join_remote(
        &self,
        room_id: &str,
        version: &str,
        join: &Pdu,
        state: &[Pdu],
        auth_chain: &[Pdu],
    ) -> Result<()> {
        version_rules(version)?;
        let room_as_known = || -> Result<Room> {
            match self.load_room(room_id)? {
                Some(room) => Ok(room),
                None => {
                    let create = state
                        .iter()
                        .find(|p| p.json.get("type").and_then(Value::as_str) == Some("m.room.create"))
                        .ok_or_else(|| Error::bad_json("the room's state has no create event"))?;
                    Room::new(room_id.to_owned(), RoomInfo::new(version, &create.event_id))
                }
            }
        };
        // The room's state and auth chain first, in writes of their own: checking a big room's
        // whole state must not hold up every other room's writes. Outliers alone change nothing
        // anyone sees, whether or not the join then goes through.
        let all: Vec<Pdu> = auth_chain.iter().chain(state).cloned().collect();
        let room = room_as_known()?;
        self.store_outliers_of(&room, &all)?;
        // The state before the join: the events the checks allowed (their verdicts are in their
        // metadata; parsing each again would cost more than the write).
        let mut named = NamedState::new();
        for pdu in state {
            let (Some(kind), Some(state_key)) =
                (pdu.json.get("type").and_then(Value::as_str), pdu.json.get("state_key").and_then(Value::as_str))
            else {
                continue;
            };
            if self.event_meta(&pdu.event_id)?.is_some_and(|m| m.rejected.is_none()) {
                named.insert((kind.to_owned(), state_key.to_owned()), pdu.event_id.clone());
            }
        }
        // Its names interned in a write of their own too, as a received event's reported state is.
        let map = self.write(|txn| room.intern_state(self, txn, &named))?;
        self.write(|txn| {
            let mut room = room_as_known()?;
            // What this server knew of the room before it left is no longer the room's edge.
            room.info.extremities.clear();
            match self.receive_in(txn, &mut room, join, Some(map.clone()))? {
                Received::Accepted | Received::AlreadyKnown => Ok(()),
                Received::SoftFailed => Err(Error::forbidden("the room's state does not allow this join")),
                Received::Rejected(why) => Err(Error::forbidden(format!("the join was rejected: {why}"))),
            }
        })
    }

    /// Draws up and signs a membership event of a local user for a room this server is in,
    /// without adding it: an invite of a remote user goes to their server first.
    pub fn prepare_membership(
        &self,
        sender: &str,
        room_id: &str,
        target: &str,
        content: Map<String, Value>,
    ) -> Result<Prepared> {
        let room = self.room(room_id)?;
        let new = NewEvent::state("m.room.member", target, Value::Object(content));
        let (obj, _) = self.draft(&room, sender, new, None)?;
        let (event_id, bytes) = self.sign_event(&room, obj)?;
        let json = serde_json::from_str(&bytes)?;
        Ok(Prepared { room_version: room.info.version.clone(), pdu: Pdu { event_id, json } })
    }

    /// Hashes and signs a membership event another server drew up for a local user
    /// (`make_join` and friends), after checking it is the event asked for.
    pub fn sign_template(
        &self,
        version: &str,
        room_id: &str,
        user_id: &str,
        membership: &str,
        mut obj: Map<String, Value>,
    ) -> Result<Pdu> {
        let (_, rules) = version_rules(version)?;
        // Everything the signature would vouch for must be what was asked: a template for
        // another room, user or membership would get a local user's signature on an event
        // they never wanted (a leave from a room they are in, a join elsewhere).
        let str_of = |k: &str| obj.get(k).and_then(Value::as_str);
        let in_room = match str_of("room_id") {
            Some(r) => r == room_id,
            None => false,
        };
        let origin_ok = str_of("origin").is_none_or(|o| o == self.server_name);
        let lists_ok = ["prev_events", "auth_events"].iter().all(|k| obj.get(*k).is_some_and(Value::is_array));
        if !in_room
            || !origin_ok
            || !lists_ok
            || str_of("type") != Some("m.room.member")
            || str_of("sender") != Some(user_id)
            || str_of("state_key") != Some(user_id)
            || obj.get("content").and_then(|c| c.get("membership")).and_then(Value::as_str) != Some(membership)
            || !obj.get("content").is_some_and(Value::is_object)
            || obj.get("redacts").is_some()
        {
            return Err(Error::bad_json("the other server's template is not the membership event asked for"));
        }
        obj.remove("signatures");
        obj.remove("hashes");
        obj.remove("unsigned");
        // Versions 1 and 2: the event gets an id of this server, which signs it.
        obj.remove("event_id");
        obj.insert("origin_server_ts".into(), Self::now_ms().into());
        if membership == "join"
            && let Some(Value::Object(content)) = obj.get_mut("content")
            && let Some(profile) = self.profile(user_id)?
        {
            for field in ["displayname", "avatar_url"] {
                if let Some(v) = profile.get(field) {
                    content.entry(field).or_insert_with(|| v.clone());
                }
            }
        }
        let mut canonical = ruma::canonical_json::try_from_json_map(obj)
            .map_err(|e| Error::bad_json(format!("not canonical JSON: {e}")))?;
        let event_id = crate::pdu::hash_sign_and_id(&rules, &self.server_name, &self.key, &mut canonical)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        Ok(Pdu { event_id, json: serde_json::to_value(canonical)? })
    }

    /// Adds a prepared event (as the other server returned it, with its signature too) to the
    /// room and sends it to the servers in it.
    pub fn commit_prepared(&self, room_id: &str, pdu: &Pdu) -> Result<()> {
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            let before = room.info.state_group;
            match self.receive_in(txn, &mut room, pdu, None)? {
                Received::Accepted | Received::AlreadyKnown => {}
                Received::SoftFailed => {
                    return Err(Error::forbidden("the room's state changed and no longer allows this"));
                }
                Received::Rejected(why) => return Err(Error::forbidden(why)),
            }
            self.enqueue_pdu(txn, &room, before, &pdu.event_id, &[])
        })
    }

    /// An invite from another server for a local user (`/invite`): checked, countersigned and
    /// returned. If this server is not in the room the invite is kept with the room's stripped
    /// state, for the user's `/sync`.
    pub fn receive_invite(&self, origin: &str, version: &str, pdu: &Pdu, stripped: Vec<Value>) -> Result<Pdu> {
        let (_, rules) = version_rules(version)?;
        let ev = &pdu.json;
        let target = ev.get("state_key").and_then(Value::as_str).unwrap_or_default().to_owned();
        let sender = ev.get("sender").and_then(Value::as_str).unwrap_or_default();
        if ev.get("type").and_then(Value::as_str) != Some("m.room.member")
            || ev.pointer("/content/membership").and_then(Value::as_str) != Some("invite")
        {
            return Err(Error::bad_json("not an invite event"));
        }
        if sender.split_once(':').map(|(_, s)| s) != Some(origin) {
            return Err(Error::forbidden("the inviter is not on the server that sent the invite"));
        }
        if !self.is_local(&target) || self.account(&target)?.is_none() {
            return Err(Error::not_found("the invited user is not on this server"));
        }
        let room_id =
            ev.get("room_id").and_then(Value::as_str).ok_or_else(|| Error::bad_json("no room_id"))?.to_owned();
        let mut obj = ruma::canonical_json::try_from_json_map(ev.as_object().cloned().unwrap_or_default())
            .map_err(|e| Error::bad_json(e.to_string()))?;
        ruma::signatures::hash_and_sign_event(&self.server_name, self.key.pair(), &mut obj, &rules.redaction)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        let signed = Pdu { event_id: pdu.event_id.clone(), json: serde_json::to_value(obj)? };
        if self.server_in_room(&room_id, &self.server_name)? {
            // A room this server is in: the invite is an event of it like any other, and must
            // pass the room's checks; one that does not changes nothing (recording it anyway
            // would let any server turn a joined user into an invited one).
            if self.room_version(&room_id)? != version {
                return Err(Error::bad_json("the invite names another room version than the room's"));
            }
            return match self.receive_pdu(&room_id, &signed, None)? {
                Received::Accepted | Received::AlreadyKnown => Ok(signed),
                Received::SoftFailed => Err(Error::forbidden("the room's current state does not allow this invite")),
                Received::Rejected(why) => Err(Error::forbidden(why)),
            };
        }
        // A room this server is not in: nothing to check the invite against but the user's own
        // standing. One cannot be invited to a room one is in (as this server knows it).
        if self.membership_of(&target, &room_id)?.is_some_and(|r| matches!(r.membership.as_str(), "join" | "ban")) {
            return Err(Error::forbidden("the invited user's membership does not allow an invite"));
        }
        self.record_remote_membership(&target, &room_id, &signed, "invite", Some(stripped))?;
        Ok(signed)
    }

    /// Records a local user's leave or knock in a room this server is not in (an invite
    /// declined, a knock made or withdrawn), with the event the room's server accepted and,
    /// for a knock, the room's stripped state.
    pub fn record_remote_membership(
        &self,
        user_id: &str,
        room_id: &str,
        pdu: &Pdu,
        membership: &str,
        stripped: Option<Vec<Value>>,
    ) -> Result<()> {
        self.write(|txn| {
            let pos = txn.pos();
            let kind = pdu.json.get("type").and_then(Value::as_str);
            let state_key = pdu.json.get("state_key").and_then(Value::as_str);
            txn.store_pdu(self, &pdu.event_id, kind.zip(state_key), pdu.json.to_string().into_bytes())?;
            let meta = EventMeta { outlier: true, ..EventMeta::new(room_id, pos, 0, 0) };
            events::put_meta(&mut txn.batch, &pdu.event_id, &meta);
            if let Some(stripped) = &stripped {
                tables::rooms::put_stripped_state(&mut txn.batch, &pdu.event_id, stripped);
            }
            let row =
                MembershipRow { membership: membership.into(), event_id: pdu.event_id.clone(), pos, forgotten: false };
            tables::rooms::put_membership(&mut txn.batch, user_id, room_id, &row);
            Ok(())
        })
    }

    /// The stripped state another server sent with an invite.
    pub(crate) fn stored_stripped_state(&self, membership_event: &str) -> Result<Option<Vec<Value>>> {
        tables::rooms::stripped_state(&self.db, membership_event)
    }

    /// The servers to try to join a room through: those named, then the servers of the
    /// users who invited or are in it as far as this server knows.
    pub fn join_candidates(&self, user_id: &str, room_id: &str, named: &[String]) -> Result<Vec<String>> {
        let mut out: Vec<String> = named.to_vec();
        if let Some(row) = self.membership_of(user_id, room_id)?
            && let Some(pdu) = self.pdu(&row.event_id)?
            && let Some(server) =
                pdu.get("sender").and_then(Value::as_str).and_then(|s| s.split_once(':')).map(|(_, s)| s)
        {
            out.push(server.to_owned());
        }
        if let Some((_, server)) = room_id.split_once(':') {
            out.push(server.to_owned());
        }
        let mut seen = HashSet::new();
        out.retain(|s| *s != self.server_name && seen.insert(s.clone()));
        Ok(out)
    }

    /// Whether this server can make events in the room itself: it knows the room and one of
    /// its users is joined.
    pub fn is_resident(&self, room_id: &str) -> Result<bool> {
        self.server_in_room(room_id, &self.server_name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::inbound::persist::tests::public_room;

    /// A join answered with members omitted: the state holds no member events but the
    /// heroes' while the room has no name, none once it has one; the auth chain holds what the
    /// returned events need (the creator's join, which authorized the power levels) and nothing
    /// the state holds already.
    #[test]
    fn members_omitted_keep_the_heroes_and_the_auth_chain() {
        let (_dir, hs, alice, room_id, _) = public_room();
        let join = |name: &str| {
            let user = hs.create_account(name, None, false).unwrap();
            let id = hs.set_membership(&user, &room_id, &user, "join", None, None).unwrap();
            (user, id)
        };
        let (bob, _) = join("bob");
        let (carol, carol_join) = join("carol");
        let member = |user: &str| hs.current_state_id(&room_id, "m.room.member", user).unwrap().unwrap();
        let is_member = |id: &String| hs.pdu(id).unwrap().unwrap()["type"] == "m.room.member";

        let (state, chain) = hs.partial_state_ids_at(&carol_join, &carol).unwrap();
        let mut members: Vec<&String> = state.iter().filter(|id| is_member(id)).collect();
        members.sort();
        let mut heroes = [member(&alice), member(&bob)];
        heroes.sort();
        assert_eq!(members, heroes.iter().collect::<Vec<_>>(), "the nameless room's heroes, not the joiner");
        assert!(chain.iter().all(|id| !state.contains(id)), "nothing twice");

        hs.send_state(&alice, &room_id, "m.room.name", "", json!({ "name": "Named" })).unwrap();
        let (_, dave_join) = join("dave");
        let (state, chain) = hs.partial_state_ids_at(&dave_join, "@dave:example.org").unwrap();
        assert!(state.iter().all(|id| !is_member(id)), "no member events in a named room's state");
        assert!(chain.contains(&member(&alice)), "the creator's join, in the auth chain of what is returned");
        assert!(chain.iter().all(|id| !state.contains(id)));
    }
}
