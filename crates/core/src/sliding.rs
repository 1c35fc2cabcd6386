//! Simplified sliding sync (MSC4186), what Element X syncs with: the client asks for windows
//! (`ranges`) of its room list sorted by recent activity, and for each room in them gets the
//! state it names (`required_state`) and the latest `timeline_limit` events; later requests
//! with `pos` get only what changed. The server remembers per connection which rooms it has
//! sent, so a room entering a window arrives whole (`initial`). Connections live in memory: a
//! `pos` from before a restart is answered `M_UNKNOWN_POS`, and the client starts over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::raw_json::Object;
use crate::rooms::MembershipRow;
use crate::rooms::read::Viewer;
use crate::server::{Homeserver, lock};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    pub required_state: Vec<(String, String)>,
    pub timeline_limit: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListFilters {
    pub is_dm: Option<bool>,
    pub is_encrypted: Option<bool>,
    pub is_invite: Option<bool>,
    pub room_types: Option<Vec<Option<String>>>,
    pub not_room_types: Option<Vec<Option<String>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListRequest {
    pub ranges: Vec<(u64, u64)>,
    #[serde(flatten)]
    pub room: RoomConfig,
    pub filters: Option<ListFilters>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlidingRequest {
    pub conn_id: Option<String>,
    pub txn_id: Option<String>,
    pub lists: BTreeMap<String, ListRequest>,
    pub room_subscriptions: BTreeMap<String, RoomConfig>,
    pub extensions: Map<String, Value>,
}

/// What the server has told one connection.
#[derive(Default)]
struct Connection {
    /// The `pos` handed out last, and the one before it (a client may retry a request).
    positions: Vec<String>,
    sent: BTreeSet<String>,
    to_device_since: u64,
}

#[derive(Default)]
pub(crate) struct Connections {
    by_key: Mutex<HashMap<(String, String, String), Connection>>,
}

/// The parts of a `pos`: the global stream position and the typing serial.
fn parse_pos(pos: &str) -> Option<(u64, u64)> {
    let (a, b) = pos.split_once('_')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn state_wanted(config: &RoomConfig, kind: &str, state_key: &str, user_id: &str, lazy: &BTreeSet<String>) -> bool {
    config.required_state.iter().any(|(t, k)| {
        (t == "*" || t == kind)
            && match k.as_str() {
                "*" => true,
                "$ME" => state_key == user_id,
                "$LAZY" => kind == "m.room.member" && lazy.contains(state_key),
                k => k == state_key,
            }
    })
}

impl Homeserver {
    /// One pass of sliding sync; `Ok((response, has_updates))`.
    pub fn sliding_sync(
        &self,
        user_id: &str,
        device_id: &str,
        pos: Option<&str>,
        req: &SlidingRequest,
    ) -> Result<(String, bool)> {
        let conn_key = (user_id.to_owned(), device_id.to_owned(), req.conn_id.clone().unwrap_or_default());
        let now = (self.stream_pos(), self.ephemeral_serial());
        let since = match pos {
            Some(p) => {
                let known =
                    lock(&self.sliding.by_key).get(&conn_key).is_some_and(|c| c.positions.iter().any(|x| x == p));
                match parse_pos(p) {
                    Some(parsed) if known => Some(parsed),
                    _ => return Err(Error::new(crate::ErrorKind::UnknownPos, "Unknown position")),
                }
            }
            None => None,
        };
        let mut sent = match since {
            Some(_) => lock(&self.sliding.by_key).get(&conn_key).map(|c| c.sent.clone()).unwrap_or_default(),
            None => BTreeSet::new(),
        };

        // The room list: every room the user is in or invited to, most recently active first.
        let memberships: Vec<(String, MembershipRow)> = self
            .memberships(user_id)?
            .into_iter()
            .filter(|(_, r)| matches!(r.membership.as_str(), "join" | "invite" | "knock") && r.pos <= now.0)
            .collect();
        let direct: BTreeSet<String> = self
            .account_data(user_id, None, "m.direct")
            .ok()
            .and_then(|d| d.as_object().cloned())
            .map(|m| {
                m.values().filter_map(Value::as_array).flatten().filter_map(|r| r.as_str().map(str::to_owned)).collect()
            })
            .unwrap_or_default();
        let mut ordered: Vec<(u64, String, MembershipRow)> = Vec::new();
        for (room_id, row) in memberships {
            let bump = if row.membership == "join" {
                self.room_info(&room_id)?.map_or(row.pos, |i| i.last_pos.min(now.0))
            } else {
                row.pos
            };
            ordered.push((bump, room_id, row));
        }
        ordered.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));

        let mut wanted: BTreeMap<String, RoomConfig> = BTreeMap::new();
        let mut lists = Map::new();
        for (name, list) in &req.lists {
            let mut rooms = Vec::new();
            for (_, room_id, row) in &ordered {
                if let Some(f) = &list.filters
                    && !self.passes_filters(room_id, row, f, &direct)?
                {
                    continue;
                }
                rooms.push(room_id.clone());
            }
            for (start, end) in &list.ranges {
                for room_id in rooms.iter().skip(*start as usize).take((end.saturating_sub(*start) + 1) as usize) {
                    merge_config(wanted.entry(room_id.clone()).or_default(), &list.room);
                }
            }
            lists.insert(name.clone(), json!({ "count": rooms.len() }));
        }
        for (room_id, config) in &req.room_subscriptions {
            if ordered.iter().any(|(_, r, _)| r == room_id) {
                merge_config(wanted.entry(room_id.clone()).or_default(), config);
            }
        }

        let viewer = Viewer { user_id, device_id: Some(device_id) };
        let mut rooms = Object::new();
        for (room_id, config) in &wanted {
            let Some((bump, _, row)) = ordered.iter().find(|(_, r, _)| r == room_id) else { continue };
            let initial = !sent.contains(room_id);
            let changed_since = if initial { None } else { since.map(|s| s.0) };
            if let Some(room) = self.sliding_room(viewer, room_id, row, config, changed_since, now.0, *bump)? {
                rooms.raw(room_id, &room)?;
                sent.insert(room_id.clone());
            }
        }

        let extensions =
            self.sliding_extensions(user_id, device_id, &req.extensions, since, now, &wanted, &conn_key)?;
        let any = !rooms.is_empty() || extensions.as_object().is_some_and(|e| e.values().any(has_content));
        if let (false, Some(p)) = (any, pos) {
            // Nothing to say: the client asks again from where it was, so the connection's
            // bookkeeping stays as it is (a long poll may pass here many times).
            let body = json!({ "pos": p, "lists": lists, "rooms": {}, "extensions": extensions });
            return Ok((body.to_string(), false));
        }
        let new_pos = format!("{}_{}", now.0, now.1);
        {
            let mut conns = lock(&self.sliding.by_key);
            if conns.len() > 10_000 {
                conns.clear();
            }
            let conn = conns.entry(conn_key).or_default();
            conn.sent = sent;
            conn.positions.push(new_pos.clone());
            if conn.positions.len() > 4 {
                conn.positions.remove(0);
            }
        }
        let mut out = Object::new();
        out.field("pos", &new_pos)?
            .field("lists", &lists)?
            .raw("rooms", &rooms.finish())?
            .field("extensions", &extensions)?;
        if let Some(t) = &req.txn_id {
            out.field("txn_id", t)?;
        }
        Ok((out.finish(), any || since.is_none()))
    }

    fn passes_filters(
        &self,
        room_id: &str,
        row: &MembershipRow,
        f: &ListFilters,
        direct: &BTreeSet<String>,
    ) -> Result<bool> {
        if f.is_invite.is_some_and(|want| want != (row.membership == "invite")) {
            return Ok(false);
        }
        if f.is_dm.is_some_and(|want| want != direct.contains(room_id)) {
            return Ok(false);
        }
        if let Some(want) = f.is_encrypted {
            let encrypted = self.current_state_id(room_id, "m.room.encryption", "")?.is_some();
            if want != encrypted {
                return Ok(false);
            }
        }
        if f.room_types.is_some() || f.not_room_types.is_some() {
            let kind = self
                .current_state_id(room_id, "m.room.create", "")?
                .and_then(|id| self.pdu(&id).ok().flatten())
                .and_then(|p| p["content"]["type"].as_str().map(str::to_owned));
            if f.room_types.as_ref().is_some_and(|t| !t.contains(&kind))
                || f.not_room_types.as_ref().is_some_and(|t| t.contains(&kind))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One room of the response; `None` when nothing changed since `changed_since`.
    #[allow(clippy::too_many_arguments)]
    fn sliding_room(
        &self,
        viewer: Viewer<'_>,
        room_id: &str,
        row: &MembershipRow,
        config: &RoomConfig,
        changed_since: Option<u64>,
        to: u64,
        bump: u64,
    ) -> Result<Option<String>> {
        let user_id = viewer.user_id;
        if row.membership != "join" {
            if changed_since.is_some_and(|s| row.pos <= s) {
                return Ok(None);
            }
            let mut out = json!({ "initial": changed_since.is_none(), "bump_stamp": bump });
            let stripped = self.stripped_state(room_id, &row.event_id)?;
            if let Some(name) =
                stripped.iter().find(|e| e["type"] == "m.room.name").and_then(|e| e["content"]["name"].as_str())
            {
                out["name"] = name.into();
            }
            out[if row.membership == "invite" { "invite_state" } else { "knock_state" }] = stripped.into();
            return Ok(Some(out.to_string()));
        }
        let info = self.room_info(room_id)?.ok_or_else(|| Error::internal("room without info"))?;
        let joined_after = changed_since.is_some_and(|s| row.pos > s);
        // A room comes down again when it has new events, or when the user's own read receipt
        // moved (its notification and highlight counts changed).
        if let Some(s) = changed_since
            && info.last_pos <= s
            && !joined_after
            && self.own_receipt_pos(room_id, user_id)?.is_none_or(|r| r <= s)
        {
            return Ok(None);
        }
        let lower = if joined_after { 0 } else { changed_since.unwrap_or(0) };
        let limit = config.timeline_limit.clamp(0, 1000) as usize;
        let (mut events, limited) = if limit > 0 {
            self.timeline_slice(room_id, to, true, Some(lower), |id| self.may_see(user_id, id), limit)?
        } else {
            (Vec::new(), lower < info.last_pos)
        };
        events.reverse();
        let mut senders = BTreeSet::new();
        let mut timeline = Vec::new();
        for (_, id) in &events {
            if let Some((e, rendered)) = self.client_event_text(id, Some(viewer))? {
                if let Some(s) = rendered.sender() {
                    senders.insert(s.to_owned());
                }
                // `$LAZY` also covers whom a membership event in the timeline is about (the
                // invitee of an invite, the kicked, the banned), as Synapse sends: clients read
                // `required_state` as the state after the timeline and need those members too.
                if rendered.kind() == Some("m.room.member")
                    && let Some(target) = rendered.state_key()
                {
                    senders.insert(target.to_owned());
                }
                timeline.push(e);
            }
        }
        let state = self.state_at_pos(room_id, to)?;
        let previous = match changed_since {
            Some(s) if !joined_after => Some(self.state_at_pos(room_id, s)?),
            _ => None,
        };
        // What changed since the previous response, compared by nid before any name is read.
        let changed: Vec<_> = match &previous {
            Some(p) => state.entries().iter().filter(|(k, e)| p.get(*k) != Some(*e)).copied().collect(),
            None => state.entries().to_vec(),
        };
        let mut required_state = Vec::new();
        for ((kind, state_key), id) in self.named_entries(None, &changed)? {
            if !state_wanted(config, &kind, &state_key, user_id, &senders) {
                continue;
            }
            if let Some((e, _)) = self.client_event_text(&id, None)? {
                required_state.push(e);
            }
        }
        let content = |kind: &str, field: &str| -> Option<Value> {
            self.state_id_in(&state, kind, "")
                .ok()
                .flatten()
                .and_then(|id| self.pdu(&id).ok().flatten())
                .and_then(|p| p["content"].get(field).cloned())
        };
        let joined = self.members_with(room_id, "join")?;
        let invited = self.members_with(room_id, "invite")?;
        // Sliding sync has no thread counts: every thread is in the room's.
        let unread = self.unread_counts(room_id, user_id, row.pos, to)?.total();
        let (notes, lights) = (unread.notifications, unread.highlights);
        let size = timeline.iter().chain(&required_state).map(String::len).sum::<usize>() + 512;
        let mut out = Object::with_capacity(size);
        out.field("initial", &(changed_since.is_none() || joined_after))?
            .raw_array("timeline", timeline.iter().map(String::as_str))?
            .raw_array("required_state", required_state.iter().map(String::as_str))?
            .field("limited", &limited)?
            .field("prev_batch", &format!("t{}", events.first().map_or(to, |(p, _)| p - 1)))?
            .number("joined_count", joined.len() as u64)?
            .number("invited_count", invited.len() as u64)?
            .number("notification_count", notes)?
            .number("highlight_count", lights)?
            .number("bump_stamp", bump)?
            .number("num_live", 0)?;
        if let Some(name) = content("m.room.name", "name").filter(|n| n.as_str().is_some_and(|s| !s.is_empty())) {
            out.field("name", &name)?;
        } else {
            let mut heroes = Vec::new();
            for (member, event_id) in Self::heroes(&joined, &invited, user_id) {
                let c = self.pdu(event_id)?.and_then(|mut p| p.remove("content")).unwrap_or_default();
                let mut hero = json!({ "user_id": member });
                for (from, to) in [("displayname", "displayname"), ("avatar_url", "avatar_url")] {
                    if let Some(v) = c.get(from).filter(|v| v.is_string()) {
                        hero[to] = v.clone();
                    }
                }
                heroes.push(hero);
            }
            out.field("heroes", &heroes)?;
        }
        if let Some(avatar) = content("m.room.avatar", "url") {
            out.field("avatar", &avatar)?;
        }
        Ok(Some(out.finish()))
    }

    #[allow(clippy::too_many_arguments)]
    fn sliding_extensions(
        &self,
        user_id: &str,
        device_id: &str,
        ext: &Map<String, Value>,
        since: Option<(u64, u64)>,
        now: (u64, u64),
        rooms: &BTreeMap<String, RoomConfig>,
        conn_key: &(String, String, String),
    ) -> Result<Value> {
        let enabled = |name: &str| ext.get(name).is_some_and(|e| e["enabled"] == true);
        let mut out = Map::new();
        if enabled("to_device") {
            let from = ext["to_device"]["since"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| lock(&self.sliding.by_key).get(conn_key).map(|c| c.to_device_since))
                .unwrap_or(0);
            let events = self.to_device_since(user_id, device_id, from, now.0)?;
            if let Some(c) = lock(&self.sliding.by_key).get_mut(conn_key) {
                c.to_device_since = now.0;
            }
            out.insert("to_device".into(), json!({ "next_batch": now.0.to_string(), "events": events }));
        }
        if enabled("e2ee") {
            let (changed, left) = match since {
                Some((s, _)) => self.key_changes(user_id, s, now.0)?,
                None => Default::default(),
            };
            out.insert(
                "e2ee".into(),
                json!({
                    "device_lists": { "changed": changed, "left": left },
                    "device_one_time_keys_count": self.one_time_key_counts(user_id, device_id)?,
                    "device_unused_fallback_key_types": self.unused_fallback_key_types(user_id, device_id)?,
                }),
            );
        }
        if enabled("account_data") {
            let mut global = Vec::new();
            let mut per_room = Map::new();
            for (room, kind, content) in self.account_data_since(user_id, since.map_or(0, |s| s.0))? {
                let event = json!({ "type": kind, "content": content });
                if room.is_empty() {
                    global.push(event);
                } else if rooms.contains_key(&room) {
                    per_room.entry(room).or_insert_with(|| json!([])).as_array_mut().expect("array").push(event);
                }
            }
            if since.is_none() && !global.iter().any(|e| e["type"] == "m.push_rules") {
                global.push(json!({ "type": "m.push_rules", "content": { "global": self.push_rules(user_id)? } }));
            }
            out.insert("account_data".into(), json!({ "global": global, "rooms": per_room }));
        }
        if enabled("receipts") {
            let mut per_room = Map::new();
            for room_id in rooms.keys() {
                if let Some(content) = self.receipts_since(room_id, user_id, since.map_or(0, |s| s.0))? {
                    per_room.insert(room_id.clone(), json!({ "type": "m.receipt", "content": content }));
                }
            }
            out.insert("receipts".into(), json!({ "rooms": per_room }));
        }
        if enabled("typing") {
            let mut per_room = Map::new();
            for room_id in rooms.keys() {
                if let Some(users) = self.typing_since(room_id, since.map(|s| s.1)) {
                    per_room.insert(room_id.clone(), json!({ "type": "m.typing", "content": { "user_ids": users } }));
                }
            }
            out.insert("typing".into(), json!({ "rooms": per_room }));
        }
        Ok(Value::Object(out))
    }
}

fn merge_config(into: &mut RoomConfig, from: &RoomConfig) {
    into.timeline_limit = into.timeline_limit.max(from.timeline_limit);
    for pair in &from.required_state {
        if !into.required_state.contains(pair) {
            into.required_state.push(pair.clone());
        }
    }
}

/// Whether an extension's answer carries anything a waiting client should get now.
fn has_content(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            k != "next_batch"
                && k != "device_one_time_keys_count"
                && k != "device_unused_fallback_key_types"
                && has_content(v)
        }),
        Value::Array(a) => !a.is_empty(),
        Value::Null => false,
        _ => true,
    }
}
