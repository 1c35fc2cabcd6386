//! Forks resolved before the write. State resolution is the expensive part of receiving an
//! event, and it needs only committed data: the states after the event's prev events (never
//! changed once stored) and after the room's other forward extremities. So the resolutions are
//! done first, outside the writer lock, for the room as it stood; the write then checks that the
//! room's extremities did not move in between and takes the results (or the receipt is
//! prepared again). A big merge in one room no longer holds up every other room's writes.

use std::sync::Arc;

use super::{Pdu, event_ids, parse};
use crate::error::Result;
use crate::rooms::Room;
use crate::rooms::nids::Pending;
use crate::rooms::state::StateMap;
use crate::server::Homeserver;

/// What was resolved ahead of a receipt, and for which room.
#[derive(Default)]
pub(crate) struct Prepared {
    /// The room's forward extremities and current state group when this was prepared; `None`
    /// if nothing was.
    seen: Option<(Vec<String>, u64)>,
    /// The state before the event, by the state groups after its prev events.
    before: Option<(Vec<u64>, Arc<StateMap>)>,
    /// The room's state once the event is accepted, if that takes a resolution.
    current: Option<StateMap>,
}

impl Prepared {
    /// Whether the room moved since this was prepared (its results would be wrong).
    pub(crate) fn outdated(&self, room: &Room) -> bool {
        self.seen.as_ref().is_some_and(|(extremities, group)| {
            room.info.extremities != *extremities || room.info.state_group != *group
        })
    }

    /// The state before the event, if it was resolved from exactly `groups`.
    pub(crate) fn before(&self, groups: &[u64]) -> Option<Arc<StateMap>> {
        self.before.as_ref().filter(|(g, _)| g == groups).map(|(_, map)| map.clone())
    }

    /// The room's resolved state with the event accepted.
    pub(crate) fn current(&self) -> Option<&StateMap> {
        self.current.as_ref()
    }
}

impl Homeserver {
    /// The state groups after `prevs`, each once, in order; `None` if one is not held with its
    /// state.
    pub(crate) fn prev_groups(&self, prevs: &[String]) -> Result<Option<Vec<u64>>> {
        let mut groups = Vec::new();
        for id in prevs {
            let Some(meta) = self.event_meta(id)?.filter(|m| !m.outlier) else { return Ok(None) };
            if !groups.contains(&meta.after) {
                groups.push(meta.after);
            }
        }
        Ok(Some(groups))
    }

    /// The state groups after a room's forward `extremities`, each once, in order. An
    /// extremity whose state is not held (which no accepted event should be) is left out, not
    /// taken as the empty state: that would put every key of the room in conflict.
    pub(crate) fn extremity_groups(&self, extremities: &[String]) -> Result<Vec<u64>> {
        let mut groups = Vec::new();
        for id in extremities {
            let Some(meta) = self.event_meta(id)?.filter(|m| !m.outlier) else {
                tracing::warn!(event_id = %id, "a forward extremity without state is left out of the room's state");
                continue;
            };
            if !groups.contains(&meta.after) {
                groups.push(meta.after);
            }
        }
        Ok(groups)
    }

    /// Resolves, outside any write, what receiving `pdu` into the room will need resolved,
    /// assuming the event is accepted. `state_before` is the state before it when another server
    /// reported it. Whatever cannot be prepared (an unknown prev event, a malformed event) is
    /// left to the write, which reports it.
    pub(crate) fn prepare_receipt(
        &self,
        room_id: &str,
        pdu: &Pdu,
        state_before: Option<&StateMap>,
    ) -> Result<Prepared> {
        if self.event_meta(&pdu.event_id)?.is_some_and(|m| !m.outlier) {
            return Ok(Prepared::default());
        }
        let mut room = self.room(room_id)?;
        let mut prepared =
            Prepared { seen: Some((room.info.extremities.clone(), room.info.state_group)), ..Default::default() };
        let prevs = event_ids(&pdu.json, "prev_events");
        // Most events follow the room's one extremity: nothing to resolve, no state to load.
        let groups = match state_before {
            Some(_) => None,
            None => match self.prev_groups(&prevs)? {
                Some(groups) => Some(groups),
                None => return Ok(prepared),
            },
        };
        let before_group = match groups.as_deref() {
            Some([only]) => Some(*only),
            _ => None,
        };
        let linear =
            before_group == Some(room.info.state_group) && room.info.extremities.iter().all(|e| prevs.contains(e));
        if linear {
            return Ok(prepared);
        }
        let before = match (state_before, groups) {
            (Some(map), _) => Arc::new(map.clone()),
            (None, None) => return Ok(prepared),
            (None, Some(groups)) => match groups.as_slice() {
                [only] => room.group_map(self, *only)?,
                _ => {
                    let maps: Vec<_> = groups.iter().map(|g| room.group_map(self, *g)).collect::<Result<_>>()?;
                    let map = Arc::new(self.resolve_states(&room, &Pending::default(), &maps)?);
                    prepared.before = Some((groups, map.clone()));
                    map
                }
            },
        };

        // The state after the event. A state event's own nids are handed out now (in a write of
        // their own) so that the resolution can name it; the write that stores it finds them.
        let Ok(mut event) = parse(self, None, &room, pdu) else { return Ok(prepared) };
        let others: Vec<String> = room.info.extremities.iter().filter(|e| !prevs.contains(e)).cloned().collect();
        let groups = self.extremity_groups(&others)?;
        let mut maps: Vec<_> = groups.iter().map(|g| room.group_map(self, *g)).collect::<Result<_>>()?;
        match (event.state_key().map(str::to_owned), before_group) {
            (None, Some(g)) if groups.contains(&g) => {}
            (None, _) => maps.push(before),
            (Some(state_key), _) => {
                let kind = event.kind.as_str().to_owned();
                let (key, nid) =
                    self.write(|txn| Ok((txn.key_nid(self, &kind, &state_key)?, txn.event_nid(self, &pdu.event_id)?)))?;
                event.nid = nid;
                let mut map = (*before).clone();
                map.insert(key, nid);
                maps.push(Arc::new(map));
            }
        }
        room.pending_events.insert(pdu.event_id.clone(), Arc::new(event));
        if maps.len() > 1 {
            prepared.current = Some(self.resolve_states(&room, &Pending::default(), &maps)?);
        }
        Ok(prepared)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::inbound::Received;
    use crate::inbound::persist::tests::{public_room, remote};

    /// A receipt prepared (its fork resolved outside the write) before the room moved is not
    /// taken as prepared: the write finds the extremities changed, writes nothing, and the
    /// receipt prepared again resolves the fork against the room as it now is.
    #[test]
    fn a_receipt_prepared_before_the_room_moved_is_prepared_again() {
        let (_dir, hs, alice, room_id, auth) = public_room();
        let bob = "@bob:remote.org";
        let info = hs.room_info(&room_id).unwrap().unwrap();
        let member = |content: Value, auth: &[String], prevs: &[String], depth: i64, ts: i64| {
            remote(json!({
                "type": "m.room.member", "state_key": bob, "sender": bob, "room_id": room_id, "content": content,
                "auth_events": auth, "prev_events": prevs, "depth": depth, "origin_server_ts": ts,
                "hashes": { "sha256": "x" }, "signatures": {},
            }))
        };
        let join = member(json!({"membership": "join"}), &auth, &info.extremities, info.depth + 1, 1);
        assert_eq!(hs.receive_pdu(&room_id, &join, None).unwrap(), Received::Accepted);
        let mut with_join = auth.clone();
        with_join.push(join.event_id.clone());
        let fork = |name: &str, ts: i64| {
            let content = json!({"membership": "join", "displayname": name});
            member(content, &with_join, std::slice::from_ref(&join.event_id), info.depth + 2, ts)
        };
        let (a, b) = (fork("a", 9), fork("b", 5));
        assert_eq!(hs.receive_pdu(&room_id, &a, None).unwrap(), Received::Accepted);

        let prepared = hs.prepare_receipt(&room_id, &b, None).unwrap();
        assert!(prepared.current().is_some(), "b forks the room: its current state takes a resolution");
        let moved = hs.send_message(&alice, "D", &room_id, "m.room.message", "t1", json!({"body": "hi"})).unwrap();
        let taken = hs.write(|txn| {
            let mut room = hs.room(&room_id)?;
            hs.receive_prepared(txn, &mut room, &b, None, &prepared)
        });
        assert_eq!(taken.unwrap(), None, "the room moved: nothing taken");
        assert!(hs.event_meta(&b.event_id).unwrap().is_none(), "nothing written");

        assert_eq!(hs.receive_pdu(&room_id, &b, None).unwrap(), Received::Accepted);
        let info = hs.room_info(&room_id).unwrap().unwrap();
        let mut extremities = info.extremities.clone();
        extremities.sort();
        let mut expected = vec![moved, b.event_id.clone()];
        expected.sort();
        assert_eq!(extremities, expected);
        let current = hs.current_state_id(&room_id, "m.room.member", bob).unwrap();
        assert_eq!(current.as_deref(), Some(a.event_id.as_str()), "the later of two equal members wins");
    }

    /// A forward extremity whose state is not held is left out of the room's state instead of
    /// counting as the empty state: the room's state after the next event is that event's own.
    #[test]
    fn an_extremity_without_state_is_not_the_empty_state() {
        let (_dir, hs, _, room_id, auth) = public_room();
        let bob = "@bob:remote.org";
        let info = hs.room_info(&room_id).unwrap().unwrap();
        let join = remote(json!({
            "type": "m.room.member", "state_key": bob, "sender": bob, "room_id": room_id,
            "content": { "membership": "join" }, "auth_events": auth, "prev_events": info.extremities,
            "depth": info.depth + 1, "origin_server_ts": 1, "hashes": { "sha256": "x" }, "signatures": {},
        }));
        hs.write(|txn| {
            let mut info = hs.room_info(&room_id)?.unwrap();
            info.extremities.push("$held-nowhere".into());
            crate::tables::rooms::put_info(&mut txn.batch, &room_id, &info);
            Ok(())
        })
        .unwrap();
        assert_eq!(hs.receive_pdu(&room_id, &join, None).unwrap(), Received::Accepted);
        let after = hs.event_meta(&join.event_id).unwrap().unwrap().after;
        assert_eq!(hs.room_info(&room_id).unwrap().unwrap().state_group, after, "no resolution against nothing");
    }
}
