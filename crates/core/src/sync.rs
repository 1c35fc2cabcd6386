//! `/sync`: everything that changed for one device between two tokens. A token
//! `s<pos>_<serial>` is a global stream position (timeline, state, receipts, account data,
//! presence, to-device, key changes) and an ephemeral serial (typing).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use tandem_storage::Direction;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::raw_json::Object;
use crate::rooms::MembershipRow;
use crate::rooms::read::Viewer;
use crate::rooms::state::StateMap;
use crate::server::Homeserver;
use crate::tables::events;

/// The most threads one sync's rooms are shared out over.
const SYNC_THREADS: usize = 4;
/// Below this many rooms a thread, one thread does it all.
const ROOMS_PER_THREAD: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncToken {
    pub pos: u64,
    pub serial: u64,
}

impl SyncToken {
    pub fn parse(s: &str) -> Option<Self> {
        let (pos, serial) = s.strip_prefix('s')?.split_once('_')?;
        Some(SyncToken { pos: pos.parse().ok()?, serial: serial.parse().ok()? })
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}_{}", self.pos, self.serial)
    }
}

pub struct SyncRequest<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub since: Option<SyncToken>,
    pub full_state: bool,
    pub filter: &'a Filter,
}

impl Homeserver {
    /// One pass of `/sync`: the response as JSON text, and whether it carries anything
    /// (long-polling waits while it does not).
    pub fn sync_once(&self, req: &SyncRequest<'_>) -> Result<(String, bool)> {
        let to = SyncToken { pos: self.stream_pos(), serial: self.ephemeral_serial() };
        let since_pos = req.since.map(|s| s.pos);
        if let Some(s) = req.since
            && s.pos > to.pos
        {
            return Err(Error::invalid_param("since token is from the future"));
        }
        let mut any = false;
        let mut join = Object::new();
        let mut invite = Map::new();
        let mut leave = Map::new();
        let mut knock = Map::new();
        let account_data = self.account_data_since(req.user_id, since_pos.unwrap_or(0))?;
        let memberships: Vec<(String, MembershipRow)> = self
            .memberships(req.user_id)?
            .into_iter()
            .filter(|(room_id, row)| row.pos <= to.pos && req.filter.room.room_allowed(room_id))
            .collect();
        let joined: Vec<&(String, MembershipRow)> =
            memberships.iter().filter(|(_, r)| r.membership == "join").collect();
        for ((room_id, _), v) in joined.iter().zip(self.sync_rooms(req, &joined, to, &account_data)?) {
            if let Some(v) = v {
                join.raw(room_id, &v)?;
            }
        }
        for (room_id, row) in memberships {
            let changed = since_pos.is_none_or(|s| row.pos > s);
            match row.membership.as_str() {
                "join" => {}
                "invite" if changed => {
                    let events = self.stripped_state(&room_id, &row.event_id)?;
                    invite.insert(room_id, json!({ "invite_state": { "events": events } }));
                }
                "knock" if changed => {
                    let events = self.stripped_state(&room_id, &row.event_id)?;
                    knock.insert(room_id, json!({ "knock_state": { "events": events } }));
                }
                // A leave inside the window is always delivered, forgotten or not (clients
                // forget right after leaving and still need the leave and its `prev_batch`).
                "leave" | "ban"
                    if changed && req.since.is_some() || req.filter.room.include_leave && !row.forgotten =>
                {
                    if let Some(v) = self.sync_left(req, &room_id, &row)? {
                        leave.insert(room_id, v);
                    }
                }
                _ => {}
            }
        }
        any |= !join.is_empty() || !invite.is_empty() || !leave.is_empty() || !knock.is_empty();

        let mut global: Vec<Value> = account_data
            .iter()
            .filter(|(room, kind, _)| room.is_empty() && req.filter.account_data.matches(kind, None))
            .map(|(_, kind, content)| json!({ "type": kind, "content": content }))
            .collect();
        // Clients read their push rules from an initial sync, stored or not.
        if req.since.is_none() && !global.iter().any(|e| e["type"] == "m.push_rules") {
            global.push(json!({ "type": "m.push_rules", "content": { "global": self.push_rules(req.user_id)? } }));
        }
        any |= !global.is_empty();
        let to_device = self.to_device_since(req.user_id, req.device_id, since_pos.unwrap_or(0), to.pos)?;
        any |= !to_device.is_empty();
        let presence = self.presence_since(req.user_id, since_pos, req.filter)?;
        any |= !presence.is_empty();
        let (changed, left) = match since_pos {
            Some(s) => self.key_changes(req.user_id, s, to.pos)?,
            None => Default::default(),
        };
        any |= !changed.is_empty() || !left.is_empty();

        let mut rooms = Object::new();
        if !join.is_empty() {
            rooms.raw("join", &join.finish())?;
        }
        for (name, map) in [("invite", invite), ("leave", leave), ("knock", knock)] {
            if !map.is_empty() {
                rooms.field(name, &map)?;
            }
        }
        let mut body = Object::new();
        body.field("next_batch", &to.to_string())?
            .raw("rooms", &rooms.finish())?
            .field("account_data", &json!({ "events": global }))?
            .field("presence", &json!({ "events": presence }))?
            .field("to_device", &json!({ "events": to_device }))?
            .field("device_lists", &json!({ "changed": changed, "left": left }))?
            .field("device_one_time_keys_count", &self.one_time_key_counts(req.user_id, req.device_id)?)?
            .field("device_unused_fallback_key_types", &self.unused_fallback_key_types(req.user_id, req.device_id)?)?;
        Ok((body.finish(), any || req.since.is_none()))
    }

    /// The joined rooms' parts of a sync, in order. Rooms are independent: many of them (an
    /// initial sync) are shared out over the machine's cores.
    fn sync_rooms(
        &self,
        req: &SyncRequest<'_>,
        rooms: &[&(String, MembershipRow)],
        to: SyncToken,
        account_data: &[(String, String, Value)],
    ) -> Result<Vec<Option<String>>> {
        let one = |(room_id, row): &(String, MembershipRow)| self.sync_joined(req, room_id, row, to, account_data);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(SYNC_THREADS);
        if threads < 2 || rooms.len() < ROOMS_PER_THREAD * 2 {
            return rooms.iter().map(|r| one(r)).collect();
        }
        let chunk = rooms.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = rooms
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|r| one(r)).collect::<Result<Vec<_>>>()))
                .collect();
            let mut out = Vec::with_capacity(rooms.len());
            for part in parts {
                out.extend(part.join().map_err(|_| Error::internal("a sync thread panicked"))??);
            }
            Ok(out)
        })
    }

    /// The state after the last event at or before `pos` in a room.
    pub(crate) fn state_at_pos(&self, room_id: &str, pos: u64) -> Result<std::sync::Arc<StateMap>> {
        let mut iter = events::TIMELINE.scan(&self.db, room_id, pos, Direction::Backward)?;
        match iter.next() {
            Some(entry) => {
                let (_, event_id) = entry?;
                self.state_at_event(&event_id, true)
            }
            None => Ok(std::sync::Arc::default()),
        }
    }

    fn sync_joined(
        &self,
        req: &SyncRequest<'_>,
        room_id: &str,
        row: &MembershipRow,
        to: SyncToken,
        account_data: &[(String, String, Value)],
    ) -> Result<Option<String>> {
        let since = req.since.map(|s| s.pos);
        let newly_joined = since.is_some_and(|s| row.pos > s);
        let lower = if newly_joined { 0 } else { since.unwrap_or(0) };
        let room_info = self.room_info(room_id)?.ok_or_else(|| Error::internal("room without info"))?;
        let room_changed = since.is_none_or(|s| room_info.last_pos > s) || req.full_state;

        let mut ephemeral = Vec::new();
        if let Some(users) = self.typing_since(room_id, req.since.map(|s| s.serial)) {
            ephemeral.push(json!({ "type": "m.typing", "content": { "user_ids": users } }));
        }
        if since.is_none_or(|s| room_info.last_receipt_pos > s || newly_joined)
            && let Some(content) = self.receipts_since(room_id, req.user_id, since.unwrap_or(0))?
        {
            ephemeral.push(json!({ "type": "m.receipt", "content": content }));
        }
        let room_account_data: Vec<Value> = account_data
            .iter()
            .filter(|(room, _, _)| room == room_id)
            .map(|(_, kind, content)| json!({ "type": kind, "content": content }))
            .collect();

        // Most rooms have nothing new for most syncs: answer those without loading any state.
        if !room_changed && !newly_joined && ephemeral.is_empty() && room_account_data.is_empty() {
            return Ok(None);
        }

        let viewer = Viewer { user_id: req.user_id, device_id: Some(req.device_id) };
        let tl_filter = &req.filter.room.timeline;
        let limit = tl_filter.limit.unwrap_or(10).clamp(1, 1000) as usize;
        let (mut events, limited) = if room_changed {
            let keep = |id: &str| -> Result<bool> {
                if tl_filter.is_restrictive() {
                    let Some(pdu) = self.pdu(id)? else { return Ok(false) };
                    if !tl_filter.matches(&Value::Object(pdu)) {
                        return Ok(false);
                    }
                }
                self.may_see(req.user_id, id)
            };
            self.timeline_slice(room_id, to.pos, true, Some(lower), keep, limit)?
        } else {
            (Vec::new(), false)
        };
        events.reverse();

        let full = since.is_none() || newly_joined || req.full_state;
        let state_start = match events.first() {
            Some((_, id)) => self.state_at_event(id, false)?,
            None => self.state_at_pos(room_id, to.pos)?,
        };
        let mut senders: BTreeSet<String> = BTreeSet::from([req.user_id.to_owned()]);
        let mut timeline = Vec::with_capacity(events.len());
        let mut in_timeline = BTreeSet::new();
        for (_, id) in &events {
            if let Some((e, rendered)) = self.client_event_text(id, Some(viewer))? {
                if let Some(s) = rendered.sender() {
                    senders.insert(s.to_owned());
                }
                in_timeline.insert(id.clone());
                timeline.push(e);
            }
        }
        // What the state part carries, compared by nid before any name is read.
        let carried = if full {
            state_start.entries().to_vec()
        } else if limited {
            let before = self.state_at_pos(room_id, since.unwrap_or(0))?;
            state_start.entries().iter().filter(|(k, e)| before.get(*k) != Some(*e)).copied().collect()
        } else {
            Vec::new()
        };
        let carried = self.named_entries(None, &carried)?;
        let lazy = req.filter.room.state.lazy_load_members;
        let state_filter = &req.filter.room.state;
        let mut state = Vec::new();
        for ((kind, state_key), id) in carried.iter() {
            if in_timeline.contains(id) {
                continue;
            }
            if lazy && kind == "m.room.member" && !senders.contains(state_key) {
                continue;
            }
            if let Some((e, rendered)) = self.client_event_text(id, None)?
                && (!state_filter.is_restrictive() || state_filter.matches(&Value::Object(rendered.fields.clone())))
            {
                state.push(e);
            }
        }
        if lazy && !full {
            // Members of this batch's senders that the state part did not carry.
            for user in &senders {
                if let Some(id) = self.state_id_in(&state_start, "m.room.member", user)?
                    && carried.get(&("m.room.member".to_owned(), user.clone())) != Some(&id)
                    && !in_timeline.contains(&id)
                    && since.is_some_and(|s| self.event_meta(&id).ok().flatten().is_some_and(|m| m.pos > s))
                    && let Some((e, _)) = self.client_event_text(&id, None)?
                {
                    state.push(e);
                }
            }
        }

        if since.is_some()
            && !newly_joined
            && !req.full_state
            && timeline.is_empty()
            && state.is_empty()
            && ephemeral.is_empty()
            && room_account_data.is_empty()
        {
            return Ok(None);
        }
        let prev_batch = match events.first() {
            Some((pos, _)) => format!("t{}", pos - 1),
            None => format!("t{}", to.pos),
        };
        let unread = self.unread_counts(room_id, req.user_id, row.pos, to.pos)?;
        let mut timeline_part = Object::new();
        timeline_part
            .raw_array("events", timeline.iter().map(String::as_str))?
            .field("limited", &limited)?
            .field("prev_batch", &prev_batch)?;
        let size = timeline.iter().chain(&state).map(String::len).sum::<usize>() + 512;
        let mut out = Object::with_capacity(size);
        out.raw("timeline", &timeline_part.finish())?
            .raw_events("state", state.iter().map(String::as_str))?
            .field("ephemeral", &json!({ "events": ephemeral }))?
            .field("account_data", &json!({ "events": room_account_data }))?
            .field("summary", &self.room_summary(room_id, req.user_id)?)?;
        // Threads counted apart only for clients that ask (MSC3773, spec v1.4); otherwise
        // every thread is folded into the room's counts.
        if tl_filter.unread_thread_notifications {
            out.field("unread_notifications", &unread.main.to_json())?;
            let threads: Map<String, Value> =
                unread.threads.iter().map(|(root, c)| (root.clone(), c.to_json())).collect();
            if !threads.is_empty() {
                out.field("unread_thread_notifications", &threads)?;
            }
        } else {
            out.field("unread_notifications", &unread.total().to_json())?;
        }
        Ok(Some(out.finish()))
    }

    fn sync_left(&self, req: &SyncRequest<'_>, room_id: &str, row: &MembershipRow) -> Result<Option<Value>> {
        let viewer = Viewer { user_id: req.user_id, device_id: Some(req.device_id) };
        let lower = req.since.map_or(0, |s| s.pos);
        let limit = req.filter.room.timeline.limit.unwrap_or(10).clamp(1, 1000) as usize;
        let (mut events, limited) =
            self.timeline_slice(room_id, row.pos, true, Some(lower), |id| self.may_see(req.user_id, id), limit)?;
        events.reverse();
        let mut timeline = Vec::new();
        for (_, id) in &events {
            if let Some(e) = self.client_event(id, Some(viewer))? {
                timeline.push(e);
            }
        }
        // A leave outside the room's timeline (an invite declined out of band, in a room this
        // server does not hold) is still the room's last event for this user.
        if !events.iter().any(|(_, id)| *id == row.event_id)
            && self.event_meta(&row.event_id)?.is_some_and(|m| m.outlier)
            && let Some(e) = self.client_event(&row.event_id, Some(viewer))?
        {
            timeline.push(e);
        }
        let prev_batch = events.first().map_or(row.pos, |(p, _)| p - 1);
        Ok(Some(json!({
            "timeline": { "events": timeline, "limited": limited, "prev_batch": format!("t{prev_batch}") },
            "state": { "events": [] },
            "account_data": { "events": [] },
        })))
    }

    /// Stripped state for invites and knocks: the room's name, avatar, rules, encryption, and
    /// the membership event itself.
    pub fn stripped_state(&self, room_id: &str, membership_event: &str) -> Result<Vec<Value>> {
        let Some(info) = self.room_info(room_id)?.filter(|_| self.is_resident(room_id).unwrap_or(false)) else {
            // A room this server is not in: what the inviting server sent, and the invite.
            let mut out = self.stored_stripped_state(membership_event)?.unwrap_or_default();
            if let Some(pdu) = self.pdu(membership_event)? {
                out.push(json!({
                    "type": pdu["type"], "state_key": pdu["state_key"], "sender": pdu["sender"], "content": pdu["content"],
                }));
            }
            return Ok(out);
        };
        let state = self.state_map(info.state_group)?;
        let mut ids: Vec<String> = [
            "m.room.create",
            "m.room.name",
            "m.room.avatar",
            "m.room.topic",
            "m.room.join_rules",
            "m.room.canonical_alias",
            "m.room.encryption",
        ]
        .iter()
        .map(|kind| self.state_id_in(&state, kind, ""))
        .filter_map(Result::transpose)
        .collect::<Result<_>>()?;
        if let Some(sender) =
            self.pdu(membership_event)?.and_then(|p| p.get("sender").and_then(Value::as_str).map(str::to_owned))
            && let Some(id) = self.state_id_in(&state, "m.room.member", &sender)?
        {
            ids.push(id);
        }
        ids.push(membership_event.to_owned());
        let mut out = Vec::new();
        for id in ids {
            if let Some(pdu) = self.pdu(&id)? {
                out.push(json!({
                    "type": pdu["type"], "state_key": pdu["state_key"], "sender": pdu["sender"], "content": pdu["content"],
                }));
            }
        }
        Ok(out)
    }

    fn room_summary(&self, room_id: &str, user_id: &str) -> Result<Value> {
        let joined = self.members_with(room_id, "join")?;
        let invited = self.members_with(room_id, "invite")?;
        let heroes: Vec<&String> = Self::heroes(&joined, &invited, user_id).map(|(u, _)| u).collect();
        Ok(json!({
            "m.heroes": heroes,
            "m.joined_member_count": joined.len(),
            "m.invited_member_count": invited.len(),
        }))
    }

    fn presence_since(&self, user_id: &str, since: Option<u64>, filter: &Filter) -> Result<Vec<Value>> {
        if !filter.presence.matches("m.presence", None) || filter.presence.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut shared: Option<BTreeSet<String>> = None;
        let mut out = Vec::new();
        for other in self.presence_changed_since(since)? {
            let shared = match &mut shared {
                Some(s) => s,
                None => {
                    let mut set = BTreeSet::from([user_id.to_owned()]);
                    for room in self.joined_rooms(user_id)? {
                        set.extend(self.members_with(&room, "join")?.into_iter().map(|(u, _)| u));
                    }
                    shared.insert(set)
                }
            };
            if !shared.contains(&other) {
                continue;
            }
            if let Some((content, _)) = self.presence(&other)? {
                out.push(json!({ "type": "m.presence", "sender": other, "content": content }));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SyncRequest;
    use crate::filter::Filter;

    /// Enough rooms that an initial sync shares them out over threads: every room is there,
    /// each with its own timeline, the same as room by room.
    #[test]
    fn an_initial_sync_of_many_rooms_has_each_room_whole() {
        let (_dir, hs) = crate::server::test_server();
        let alice = hs.create_account("alice", None, false).unwrap();
        let mut sent = Vec::new();
        for n in 0..40 {
            let room = hs.create_room(&alice, Default::default()).unwrap();
            let id =
                hs.send_message(&alice, "D", &room, "m.room.message", &format!("t{n}"), json!({"body": n})).unwrap();
            sent.push((room, id));
        }
        let filter = Filter::default();
        let req = SyncRequest { user_id: &alice, device_id: "D", since: None, full_state: false, filter: &filter };
        let (body, _) = hs.sync_once(&req).unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let join = body["rooms"]["join"].as_object().unwrap();
        assert_eq!(join.len(), 40);
        for (room, id) in &sent {
            let timeline = join[room]["timeline"]["events"].as_array().unwrap();
            assert_eq!(timeline.last().unwrap()["event_id"], id.as_str(), "{room}");
            let state = join[room]["state"]["events"].as_array().unwrap();
            let create = |e: &&serde_json::Value| e["type"] == "m.room.create";
            assert!(timeline.iter().chain(state).any(|e| create(&e)), "{room} without its create event");
        }
    }
}
