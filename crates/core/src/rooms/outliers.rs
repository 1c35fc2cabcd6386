//! Outliers: events with no place in the timeline (a room's state and auth chain as another
//! server sent them, the auth events a received event cites), each checked against its own
//! auth events only. Whether an outlier is allowed depends on nothing but events that never
//! change once stored, so a large set (a big room's whole state, on joining it) is stored in
//! several writes in auth order, and other rooms' writes go in between.

use std::collections::{HashMap, HashSet};

use super::{EventMeta, Room};
use crate::error::Result;
use crate::inbound::{Pdu, event_ids, parse};
use crate::server::{Homeserver, Txn};

/// At most this many outliers are stored in one write.
const OUTLIERS_PER_WRITE: usize = 1000;

/// Why an event that cites auth events nobody gave us (or a cycle of them) is rejected.
const MISSING_AUTH: &str = "missing auth events";

impl Homeserver {
    /// Stores events that have no place in the timeline, each checked against its own auth
    /// events. Events whose auth events are neither held nor among `pdus` are rejected.
    pub fn store_outliers(&self, room_id: &str, pdus: &[Pdu]) -> Result<()> {
        let room = self.room(room_id)?;
        self.store_outliers_of(&room, pdus)
    }

    /// [`Homeserver::store_outliers`] for `room` as it stands outside any write (possibly a
    /// room this server is only joining), in writes of at most [`OUTLIERS_PER_WRITE`] events.
    pub(crate) fn store_outliers_of(&self, room: &Room, pdus: &[Pdu]) -> Result<()> {
        let (ordered, unplaceable) = self.auth_order(room, pdus)?;
        let batches = ordered.chunks(OUTLIERS_PER_WRITE).map(|b| (b, None));
        let last = (!unplaceable.is_empty()).then_some((unplaceable.as_slice(), Some(MISSING_AUTH)));
        for (batch, rejected) in batches.chain(last) {
            self.write(|txn| {
                let mut room = Room::new(room.id.clone(), room.info.clone())?;
                for pdu in batch {
                    self.store_outlier(txn, &mut room, pdu, rejected)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Stores `pdus` as outliers within the write `txn`.
    pub(crate) fn outliers_in(&self, txn: &mut Txn, room: &mut Room, pdus: &[Pdu]) -> Result<()> {
        let (ordered, unplaceable) = self.auth_order(room, pdus)?;
        for pdu in ordered {
            self.store_outlier(txn, room, pdu, None)?;
        }
        for pdu in unplaceable {
            self.store_outlier(txn, room, pdu, Some(MISSING_AUTH))?;
        }
        Ok(())
    }

    /// The events of `pdus` not held yet, each once: those that can be checked, each after
    /// the auth events it cites within the set (a topological order, linear in the events and
    /// their citations whatever order they came in), and those that cannot.
    fn auth_order<'p>(&self, room: &Room, pdus: &'p [Pdu]) -> Result<(Vec<&'p Pdu>, Vec<&'p Pdu>)> {
        let mut seen = HashSet::new();
        let mut todo: Vec<&Pdu> = Vec::new();
        for pdu in pdus {
            if seen.insert(pdu.event_id.as_str()) && !room.has_event(self, &pdu.event_id)? {
                todo.push(pdu);
            }
        }
        // From v12 the create event is no auth event but is needed by every check.
        let index: HashMap<&str, usize> = todo.iter().enumerate().map(|(i, p)| (p.event_id.as_str(), i)).collect();
        let mut waiting = vec![0usize; todo.len()];
        let mut missing = vec![false; todo.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); todo.len()];
        for (i, pdu) in todo.iter().enumerate() {
            let mut cited = event_ids(&pdu.json, "auth_events");
            if room.version.room_id_is_create_event_id && pdu.event_id != room.info.create_event {
                cited.push(room.info.create_event.clone());
            }
            for id in cited {
                match index.get(id.as_str()) {
                    Some(&j) if j == i => {}
                    Some(&j) => {
                        waiting[i] += 1;
                        dependents[j].push(i);
                    }
                    None => missing[i] |= !room.has_event(self, &id)?,
                }
            }
        }
        let mut ready: Vec<usize> = (0..todo.len()).filter(|&i| waiting[i] == 0 && !missing[i]).collect();
        let mut ordered = Vec::with_capacity(todo.len());
        let mut placed = vec![false; todo.len()];
        while let Some(i) = ready.pop() {
            ordered.push(todo[i]);
            placed[i] = true;
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 && !missing[d] {
                    ready.push(d);
                }
            }
        }
        let unplaceable = todo.iter().zip(placed).filter(|(_, p)| !p).map(|(pdu, _)| *pdu).collect();
        Ok((ordered, unplaceable))
    }

    /// Stores one outlier, checked against its auth events unless it is `rejected` already;
    /// nothing if it is held (stored by another write since it was ordered).
    fn store_outlier(&self, txn: &mut Txn, room: &mut Room, pdu: &Pdu, rejected: Option<&str>) -> Result<()> {
        if room.has_event(self, &pdu.event_id)? {
            return Ok(());
        }
        let mut event = parse(self, Some(&txn.nids), room, pdu)?;
        let rejected = match rejected {
            Some(why) => Some(why.to_owned()),
            None => self.check_against_auth_events(room, &event, &pdu.json)?,
        };
        event.rejected = rejected.is_some();
        let meta = EventMeta { outlier: true, rejected, ..EventMeta::new(&room.id, 0, 0, 0) };
        self.index_event(txn, room, &pdu.event_id, pdu.json.to_string(), &event, &meta, None)?;
        room.add_pending(self, txn, event)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::OUTLIERS_PER_WRITE;
    use crate::inbound::Pdu;
    use crate::inbound::persist::tests::{public_room, remote};

    /// An auth chain given newest first (as a hostile server may, to make the ordering
    /// quadratic), longer than one write takes, is taken whole: each event after the ones it
    /// cites, even when those go in a later write than the order they came in would put them.
    #[test]
    fn outliers_in_any_order_are_taken() {
        let (_dir, hs, _, room_id, base) = public_room();
        let mallory = "@mallory:remote.org";
        let mut chain: Vec<Pdu> = Vec::new();
        for n in 0..OUTLIERS_PER_WRITE * 2 + 100 {
            let mut auth = base.clone();
            auth.extend(chain.last().map(|p| p.event_id.clone()));
            chain.push(remote(json!({
                "type": "m.room.member", "state_key": mallory, "sender": mallory, "room_id": room_id,
                "content": { "membership": "join", "displayname": format!("m{n}") }, "auth_events": auth,
                "prev_events": [], "depth": 1, "origin_server_ts": 1, "hashes": { "sha256": "x" }, "signatures": {},
            })));
        }
        chain.reverse();
        let orphan = remote(json!({
            "type": "m.room.member", "state_key": mallory, "sender": mallory, "room_id": room_id,
            "content": { "membership": "join", "displayname": "orphan" }, "auth_events": ["$held-nowhere"],
            "prev_events": [], "depth": 1, "origin_server_ts": 1, "hashes": { "sha256": "x" }, "signatures": {},
        }));
        chain.insert(OUTLIERS_PER_WRITE / 2, orphan.clone());
        hs.store_outliers(&room_id, &chain).unwrap();
        for pdu in chain.iter().filter(|p| p.event_id != orphan.event_id) {
            let meta = hs.event_meta(&pdu.event_id).unwrap().unwrap();
            assert!(meta.outlier && meta.rejected.is_none(), "{}: {:?}", pdu.event_id, meta.rejected);
        }
        let meta = hs.event_meta(&orphan.event_id).unwrap().unwrap();
        assert_eq!(meta.rejected.as_deref(), Some("missing auth events"));
    }
}
