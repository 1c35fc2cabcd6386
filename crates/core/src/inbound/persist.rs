//! Step 7, with steps 4 to 6 run inside it: a received PDU stored with its place in the graph.
//! Within one write, the event is checked against its auth events ([`super::auth_events`]), the
//! state before it ([`super::state_before`]) and the current state ([`super::soft_fail`]); it
//! is stored whatever the outcome (a rejected event is kept, marked, so that it is never used
//! for auth and never asked for again); an accepted one becomes a forward extremity and the
//! room's current state follows its forward extremities, resolved when they fork.

use tandem_state_res::AuthEvent;

use super::{Pdu, Received, event_ids, parse};
use crate::error::{Error, Result};
use crate::inbound::prepare::Prepared;
use crate::rooms::build::relation_target;
use crate::rooms::state::{NamedState, StateMap};
use crate::rooms::{EventMeta, Room};
use crate::server::{Homeserver, Txn};
use crate::tables;

/// How many times a receipt is prepared again when the room moved before its write.
const PREPARE_TRIES: usize = 3;

impl Homeserver {
    /// Takes one PDU into a room this server knows. Its auth events must be held already; its
    /// `prev_events` too, unless `state_before` gives the state before it (as another server
    /// reported it, when the gap could not be filled). Forks are resolved before the write
    /// ([`super::prepare`]); if the room moves meanwhile the receipt is prepared again, and after
    /// a few tries resolved within the write.
    pub fn receive_pdu(&self, room_id: &str, pdu: &Pdu, state_before: Option<NamedState>) -> Result<Received> {
        let state_before = match &state_before {
            Some(named) => Some(self.write(|txn| self.room(room_id)?.intern_state(self, txn, named))?),
            None => None,
        };
        for _ in 0..PREPARE_TRIES {
            // A receipt that cannot be prepared is done wholly in the write, which reports why.
            let prepared = self.prepare_receipt(room_id, pdu, state_before.as_ref()).unwrap_or_default();
            let received = self.write(|txn| {
                let mut room = self.room(room_id)?;
                self.receive_prepared(txn, &mut room, pdu, state_before.clone(), &prepared)
            })?;
            if let Some(received) = received {
                return Ok(received);
            }
        }
        self.write(|txn| self.receive_in(txn, &mut self.room(room_id)?, pdu, state_before))
    }

    pub(crate) fn receive_in(
        &self,
        txn: &mut Txn,
        room: &mut Room,
        pdu: &Pdu,
        state_before: Option<StateMap>,
    ) -> Result<Received> {
        self.receive_prepared(txn, room, pdu, state_before, &Prepared::default())?
            .ok_or_else(|| Error::internal("a receipt with nothing prepared found the room moved"))
    }

    /// Takes one PDU with what was resolved ahead of the write; `None` (and nothing written) if
    /// the room moved since.
    pub(crate) fn receive_prepared(
        &self,
        txn: &mut Txn,
        room: &mut Room,
        pdu: &Pdu,
        state_before: Option<StateMap>,
        prepared: &Prepared,
    ) -> Result<Option<Received>> {
        if let Some(meta) = self.event_meta(&pdu.event_id)?
            && !meta.outlier
        {
            return Ok(Some(Received::AlreadyKnown));
        }
        if prepared.outdated(room) {
            return Ok(None);
        }
        let mut event = parse(self, Some(&txn.nids), room, pdu)?;
        let mut rejected = self.check_against_auth_events(room, &event, &pdu.json)?;

        let prevs = event_ids(&pdu.json, "prev_events");
        let (before_group, before_map) = self.state_before_in(txn, room, &prevs, state_before, prepared)?;
        if rejected.is_none() {
            rejected = self.check_against_state_before(txn, room, &event, &before_map);
        }
        let soft_failed = rejected.is_none() && self.soft_fails(room, &event);
        event.rejected = rejected.is_some();

        let pos = txn.pos();
        let state_key = event.state_key().map(str::to_owned).filter(|_| rejected.is_none());
        let kind = event.kind.as_str().to_owned();
        let linear = !soft_failed
            && before_group == Some(room.info.state_group)
            && room.info.extremities.iter().all(|e| prevs.contains(e));
        let before = match before_group {
            Some(g) => g,
            None => room.full_group(txn, (*before_map).clone()),
        };
        let prev_state = match &state_key {
            Some(sk) => self.state_id_pending(Some(&txn.nids), &before_map, &kind, sk)?,
            None => None,
        };
        let after = match &state_key {
            Some(sk) if linear => {
                room.put_current(self, txn, &kind, sk, &pdu.event_id, event.membership().map(|m| m.as_str()));
                let group = room.push_state(self, txn, &kind, sk, &pdu.event_id)?;
                if kind == "m.room.member" && self.is_local(sk) {
                    self.set_local_membership(txn, room, sk, &event, &pdu.event_id, pos);
                }
                group
            }
            Some(sk) => {
                let mut map = (*before_map).clone();
                map.insert(txn.key_nid(self, &kind, sk)?, txn.event_nid(self, &pdu.event_id)?);
                room.full_group(txn, map)
            }
            None => before,
        };
        let meta = EventMeta {
            prev_state,
            soft_failed,
            rejected: rejected.clone(),
            ..EventMeta::new(&room.id, pos, before, after)
        };
        let relates_to = pdu.json.get("content").and_then(relation_target);
        self.index_event(txn, room, &pdu.event_id, pdu.json.to_string(), &event, &meta, relates_to)?;
        let depth = event.depth;
        room.add_pending(self, txn, event)?;
        if let Some(reason) = rejected {
            return Ok(Some(Received::Rejected(reason)));
        }
        if soft_failed {
            return Ok(Some(Received::SoftFailed));
        }

        let mut extremities: Vec<String> =
            room.info.extremities.iter().filter(|e| !prevs.contains(e)).cloned().collect();
        extremities.push(pdu.event_id.clone());
        if !linear {
            let mut groups = self.extremity_groups(&extremities[..extremities.len() - 1])?;
            if !groups.contains(&after) {
                groups.push(after);
            }
            let current = match groups.as_slice() {
                [only] => *only,
                _ => {
                    let resolved = match prepared.current() {
                        Some(map) => map.clone(),
                        None => {
                            let maps: Vec<_> =
                                groups.iter().map(|g| room.group_map(self, *g)).collect::<Result<_>>()?;
                            self.resolve_states(room, &txn.nids, &maps)?
                        }
                    };
                    room.full_group(txn, resolved)
                }
            };
            room.set_current(self, txn, current, pos)?;
        }
        room.info.extremities = extremities;
        room.info.depth = room.info.depth.max(depth);
        room.info.last_pos = pos;
        tables::rooms::put_info(&mut txn.batch, &room.id, &room.info);
        Ok(Some(Received::Accepted))
    }

    fn set_local_membership(
        &self,
        txn: &mut Txn,
        room: &Room,
        user: &str,
        event: &AuthEvent,
        event_id: &str,
        pos: u64,
    ) {
        let row = crate::rooms::MembershipRow {
            membership: event.membership().map_or("leave", |m| m.as_str()).to_owned(),
            event_id: event_id.to_owned(),
            pos,
            forgotten: false,
        };
        tables::rooms::put_membership(&mut txn.batch, user, &room.id, &row);
    }
}

impl EventMeta {
    /// Metadata of an event at `pos` with the state groups before and after it.
    pub(crate) fn new(room_id: &str, pos: u64, before: u64, after: u64) -> Self {
        EventMeta {
            room_id: room_id.to_owned(),
            pos,
            before,
            after,
            prev_state: None,
            device_id: None,
            txn_id: None,
            redacted_by: None,
            related: false,
            outlier: false,
            rejected: None,
            soft_failed: false,
            backfilled: false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use std::sync::Arc;

    use crate::inbound::{Pdu, Received};
    use crate::rooms::create::CreateRoom;
    use crate::server::Homeserver;

    /// A server with alice's public v11 room: the directory guard, the server, alice, the
    /// room and the ids of its create, power levels and join rules events.
    pub(crate) fn public_room() -> (tempfile::TempDir, Arc<Homeserver>, String, String, Vec<String>) {
        let (dir, hs) = crate::server::test_server();
        let alice = hs.create_account("alice", None, false).unwrap();
        let public =
            CreateRoom { preset: Some("public_chat".into()), room_version: Some("11".into()), ..Default::default() };
        let room_id = hs.create_room(&alice, public).unwrap();
        let id = |kind: &str| hs.current_state_id(&room_id, kind, "").unwrap().unwrap();
        let auth = vec![id("m.room.create"), id("m.room.power_levels"), id("m.room.join_rules")];
        (dir, hs, alice, room_id, auth)
    }

    /// A PDU of another server, as the engine takes it after federation checked it.
    pub(crate) fn remote(event: Value) -> Pdu {
        let rules = ruma::RoomVersionId::V11.rules().unwrap();
        let obj = ruma::canonical_json::try_from_json_map(event.as_object().unwrap().clone()).unwrap();
        Pdu { event_id: crate::pdu::event_id(&rules, &obj).unwrap(), json: event }
    }

    /// An event first stored as an outlier (its auth events allowed it) and then rejected when
    /// it arrives in the room (the state before it does not) is seen as rejected from then on,
    /// by every later check that cites it: its cached view is dropped with the write.
    #[test]
    fn an_outlier_found_rejected_stays_rejected() {
        let (_dir, hs, alice, room_id, auth) = public_room();
        let mallory = "@mallory:remote.org";
        let join = |auth: &[String]| {
            let info = hs.room_info(&room_id).unwrap().unwrap();
            remote(json!({
                "type": "m.room.member", "state_key": mallory, "sender": mallory, "room_id": room_id,
                "content": { "membership": "join" }, "auth_events": auth, "prev_events": info.extremities,
                "depth": info.depth + 1, "origin_server_ts": 1, "hashes": { "sha256": "x" }, "signatures": {},
            }))
        };
        let first = join(&auth);
        assert!(matches!(hs.receive_pdu(&room_id, &first, None).unwrap(), Received::Accepted));
        hs.set_membership(&alice, &room_id, mallory, "ban", None, None).unwrap();

        let mut again_auth = auth.clone();
        again_auth.push(first.event_id.clone());
        let again = join(&again_auth);
        hs.store_outliers(&room_id, std::slice::from_ref(&again)).unwrap();
        let version = hs.room(&room_id).unwrap().version;
        assert!(!hs.auth_event(&version, &again.event_id).unwrap().rejected, "its auth events allow it");
        assert!(matches!(hs.receive_pdu(&room_id, &again, None).unwrap(), Received::Rejected(_)));
        assert!(hs.auth_event(&version, &again.event_id).unwrap().rejected, "still seen as allowed");
    }

    /// Two branches from one event that set the same key merge by state resolution, whatever
    /// order they arrive in (the later `origin_server_ts` wins a conflict between equal
    /// members), and an event citing both sees the resolved state before it.
    #[test]
    fn forks_merge_by_state_resolution() {
        for a_first in [true, false] {
            let (_dir, hs, _, room_id, auth) = public_room();
            let bob = "@bob:remote.org";
            let info = hs.room_info(&room_id).unwrap().unwrap();
            let event = |kind: &str, content: Value, auth: &[String], prevs: &[String], depth: i64, ts: i64| {
                let mut e = json!({
                    "type": kind, "sender": bob, "room_id": room_id, "content": content, "auth_events": auth,
                    "prev_events": prevs, "depth": depth, "origin_server_ts": ts, "hashes": { "sha256": "x" },
                    "signatures": {},
                });
                if kind == "m.room.member" {
                    e["state_key"] = bob.into();
                }
                remote(e)
            };
            let join =
                event("m.room.member", json!({"membership": "join"}), &auth, &info.extremities, info.depth + 1, 1);
            assert_eq!(hs.receive_pdu(&room_id, &join, None).unwrap(), Received::Accepted);
            let mut with_join = auth.clone();
            with_join.push(join.event_id.clone());
            let fork = |name: &str, ts: i64| {
                let content = json!({"membership": "join", "displayname": name});
                event("m.room.member", content, &with_join, std::slice::from_ref(&join.event_id), info.depth + 2, ts)
            };
            let (a, b) = (fork("a", 9), fork("b", 5));
            let order = if a_first { [&a, &b] } else { [&b, &a] };
            for pdu in order {
                assert_eq!(hs.receive_pdu(&room_id, pdu, None).unwrap(), Received::Accepted);
            }
            let current = hs.current_state_id(&room_id, "m.room.member", bob).unwrap();
            assert_eq!(current.as_deref(), Some(a.event_id.as_str()), "a_first: {a_first}");
            let info = hs.room_info(&room_id).unwrap().unwrap();
            assert_eq!(info.extremities.len(), 2);

            // A message's auth events: create, power levels and the sender's member event.
            let with_a = vec![auth[0].clone(), auth[1].clone(), a.event_id.clone()];
            let merge = event(
                "m.room.message",
                json!({"msgtype": "m.text", "body": "both"}),
                &with_a,
                &[a.event_id.clone(), b.event_id.clone()],
                info.depth + 1,
                10,
            );
            assert_eq!(hs.receive_pdu(&room_id, &merge, None).unwrap(), Received::Accepted);
            let before = hs.state_at_event(&merge.event_id, false).unwrap();
            assert_eq!(hs.state_id_in(&before, "m.room.member", bob).unwrap(), Some(a.event_id.clone()));
            assert_eq!(hs.room_info(&room_id).unwrap().unwrap().extremities, vec![merge.event_id.clone()]);
        }
    }
}
