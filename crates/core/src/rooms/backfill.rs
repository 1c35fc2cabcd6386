//! History from before this server's first event in a room (it joined later), as other servers
//! give it through `/backfill`. Such events live in a region of their own below the timeline
//! (`BACKFILL`), newest first, so that `/messages` pages on from the timeline into them while
//! no `/sync` ever reports them as new.

use std::collections::HashMap;

use serde_json::Value;
use tandem_state_res::{EventType, authorize};
use tandem_storage::Direction;

use super::EventMeta;
use super::state::NamedState;
use crate::error::Result;
use crate::inbound::{Pdu, event_ids};
use crate::server::Homeserver;
use crate::tables::events;

/// How many of the oldest events held are looked at for unknown `prev_events`.
const FRONTIER_WINDOW: usize = 20;

impl Homeserver {
    /// The room's oldest events held in its history (backfill region, else timeline), oldest
    /// first, at most `n`.
    fn oldest_history(&self, room_id: &str, n: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in events::BACKFILL.scan(&self.db, room_id, u64::MAX, Direction::Backward)?.take(n) {
            out.push(entry?.1);
        }
        if out.is_empty() {
            for entry in events::TIMELINE.scan(&self.db, room_id, 0, Direction::Forward)?.take(n) {
                out.push(entry?.1);
            }
        }
        Ok(out)
    }

    /// Whether the event is part of the room's history as this server holds it (timeline or
    /// backfill region), not merely stored as an outlier.
    fn in_history(&self, event_id: &str) -> Result<bool> {
        Ok(self.event_meta(event_id)?.is_some_and(|m| !m.outlier))
    }

    /// Whether the event is held and cites no `prev_events`: a room's create event, the only
    /// event whose state after it is known without asking (itself).
    fn is_root(&self, event_id: &str) -> Result<bool> {
        let Some(pdu) = self.pdu(event_id)? else { return Ok(false) };
        Ok(pdu.get("type").and_then(Value::as_str) == Some("m.room.create")
            && pdu.get("prev_events").and_then(Value::as_array).is_none_or(Vec::is_empty))
    }

    /// Those of `ids` (prev events of backfilled events) whose state after them this server
    /// must ask another server for: neither in the room's history nor a held create event.
    pub fn backfill_gaps(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in self.events_without_state(ids)? {
            if !self.is_root(&id)? {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Where history this server lacks begins: the `prev_events` of its oldest events that it
    /// does not hold. Empty once the room's creation is reached.
    pub fn backfill_frontier(&self, room_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in self.oldest_history(room_id, FRONTIER_WINDOW)? {
            let Some(pdu) = self.pdu(&id)? else { continue };
            for prev in event_ids(&Value::Object(pdu), "prev_events") {
                if !out.contains(&prev) && !self.in_history(&prev)? {
                    out.push(prev);
                }
            }
        }
        Ok(out)
    }

    /// Takes events another server gave by `/backfill` (signatures and hashes checked): each
    /// is checked against its auth events, then, oldest first, against the state before it,
    /// which is resolved from the states after its `prev_events`: held in the history, taken
    /// earlier in this batch, or in `states_after` (the state after a prev event this server
    /// lacks, as another server reported it). An event whose state cannot be known that way is
    /// set aside (left out of the history) rather than given a state it did not have. Those
    /// taken are added to the backfill region, newest first. Returns how many were added.
    pub fn take_backfill(
        &self,
        room_id: &str,
        pdus: &[Pdu],
        states_after: &HashMap<String, NamedState>,
    ) -> Result<usize> {
        let mut pdus = pdus.to_vec();
        pdus.sort_by_key(|p| p.json.get("depth").and_then(Value::as_i64).unwrap_or(0));
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            self.outliers_in(txn, &mut room, &pdus)?;
            let mut supplied = HashMap::new();
            for (prev, named) in states_after {
                let map = room.intern_state(self, txn, named)?;
                supplied.insert(prev.clone(), room.full_group(txn, map));
            }
            // The state after each event taken, oldest first.
            let mut placed: HashMap<&str, u64> = HashMap::new();
            let mut taken: Vec<(&Pdu, u64, u64)> = Vec::new();
            'events: for pdu in &pdus {
                if self.in_history(&pdu.event_id)? || room.auth_event(self, &pdu.event_id)?.rejected {
                    continue;
                }
                let mut groups = Vec::new();
                for prev in event_ids(&pdu.json, "prev_events") {
                    let group = match placed.get(prev.as_str()) {
                        Some(g) => *g,
                        None => match self.event_meta(&prev)?.filter(|m| !m.outlier) {
                            Some(meta) => meta.after,
                            None => match supplied.get(prev.as_str()) {
                                Some(g) => *g,
                                None if self.is_root(&prev)? => {
                                    let root = room.derive_group(self, txn, 0, "m.room.create", "", &prev, true)?;
                                    supplied.insert(prev.clone(), root);
                                    root
                                }
                                None => continue 'events,
                            },
                        },
                    };
                    if !groups.contains(&group) {
                        groups.push(group);
                    }
                }
                let before = match groups.as_slice() {
                    [] => 0,
                    [only] => *only,
                    _ => {
                        let maps: Vec<_> = groups.iter().map(|g| room.group_map(self, *g)).collect::<Result<_>>()?;
                        let resolved = self.resolve_states(&room, &txn.nids, &maps)?;
                        room.full_group(txn, resolved)
                    }
                };
                let event = room.auth_event(self, &pdu.event_id)?;
                let before_map = room.group_map(self, before)?;
                let lookup = |kind: &EventType, state_key: &str| {
                    let id = self.state_id_pending(Some(&txn.nids), &before_map, kind.as_str(), state_key).ok()??;
                    room.auth_event(self, &id).ok()
                };
                if let Err(reason) = authorize(&room.version, &event, &lookup) {
                    let meta = EventMeta {
                        outlier: true,
                        rejected: Some(reason.0.to_owned()),
                        ..EventMeta::new(room_id, 0, 0, 0)
                    };
                    events::put_meta(&mut txn.batch, &pdu.event_id, &meta);
                    txn.reindexed.push(pdu.event_id.clone());
                    continue;
                }
                let after = match event.state_key() {
                    Some(state_key) => {
                        let kind = event.kind.as_str().to_owned();
                        // A delta: the chain is no longer than one batch.
                        room.derive_group(self, txn, before, &kind, state_key, &pdu.event_id, before == 0)?
                    }
                    None => before,
                };
                placed.insert(&pdu.event_id, after);
                taken.push((pdu, before, after));
            }

            let last = events::BACKFILL.scan(&self.db, room_id, u64::MAX, Direction::Backward)?.next().transpose()?;
            let first = last.map_or(1, |(n, _)| n + 1);
            for (next, (pdu, before, after)) in (first..).zip(taken.iter().rev()) {
                // `pos` holds the event's place in the backfill region, not a stream position.
                let meta = EventMeta { backfilled: true, ..EventMeta::new(room_id, next, *before, *after) };
                events::put_meta(&mut txn.batch, &pdu.event_id, &meta);
                events::BACKFILL.put(&mut txn.batch, room_id, next, &pdu.event_id);
                let ts = pdu.json.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
                events::put_timestamp(&mut txn.batch, room_id, ts, &pdu.event_id);
            }
            Ok(taken.len())
        })
    }

    /// Up to `limit` `(n, event_id)` of the backfill region: older than `n` (`backward`), or
    /// from `n` down to the newest (forward). The `bool` says whether more were left.
    pub(crate) fn backfill_slice(
        &self,
        room_id: &str,
        n: u64,
        backward: bool,
        mut keep: impl FnMut(&str) -> Result<bool>,
        limit: usize,
    ) -> Result<(Vec<(u64, String)>, bool)> {
        let (start, dir) = if backward { (n.saturating_add(1), Direction::Forward) } else { (n, Direction::Backward) };
        let mut out = Vec::new();
        for entry in events::BACKFILL.scan(&self.db, room_id, start, dir)? {
            let (n, event_id) = entry?;
            if !keep(&event_id)? {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((n, event_id));
        }
        Ok((out, false))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use crate::inbound::persist::tests::{public_room, remote};

    /// A backfilled event is given the state after its prev events as another server reported
    /// it, is rejected if that state does not allow it, and is set aside (kept out of the
    /// history) if nobody reported it: never given a state it did not have.
    #[test]
    fn backfilled_events_take_their_own_state_or_are_set_aside() {
        let (_dir, hs, alice, room_id, auth) = public_room();
        let alice_member = hs.current_state_id(&room_id, "m.room.member", &alice).unwrap().unwrap();
        let message = |sender: &str, auth: Vec<String>, body: &str| {
            remote(json!({
                "type": "m.room.message", "sender": sender, "room_id": room_id, "content": { "body": body },
                "auth_events": auth, "prev_events": ["$history-this-server-lacks"], "depth": 1,
                "origin_server_ts": 1, "hashes": { "sha256": "x" }, "signatures": {},
            }))
        };
        let said = message(&alice, vec![auth[0].clone(), auth[1].clone(), alice_member], "said");
        let in_history = |id: &str| hs.event_meta(id).unwrap().is_some_and(|m| !m.outlier);

        assert_eq!(hs.take_backfill(&room_id, std::slice::from_ref(&said), &HashMap::new()).unwrap(), 0);
        assert!(!in_history(&said.event_id), "no state known for its prev event: set aside");

        let info = hs.room_info(&room_id).unwrap().unwrap();
        let state = hs.named_state(&hs.state_map(info.state_group).unwrap()).unwrap();
        let reported = HashMap::from([("$history-this-server-lacks".to_owned(), state.clone())]);
        // A join and a message of another server's user, both right after the history this
        // server lacks: each allowed by its own auth events, but the message's state before is
        // the reported one, in which that user never joined.
        let mallory = "@mallory:remote.org";
        let join = remote(json!({
            "type": "m.room.member", "state_key": mallory, "sender": mallory, "room_id": room_id,
            "content": { "membership": "join" }, "auth_events": auth, "prev_events": ["$history-this-server-lacks"],
            "depth": 1, "origin_server_ts": 1, "hashes": { "sha256": "x" }, "signatures": {},
        }));
        let sneaked = message(mallory, vec![auth[0].clone(), auth[1].clone(), join.event_id.clone()], "sneaked");
        let batch = [said.clone(), join.clone(), sneaked.clone()];
        assert_eq!(hs.take_backfill(&room_id, &batch, &reported).unwrap(), 2);
        assert!(in_history(&said.event_id) && in_history(&join.event_id));
        let before = hs.state_at_event(&said.event_id, false).unwrap();
        assert_eq!(hs.named_state(&before).unwrap(), state, "the state reported for its prev event");
        let after = hs.state_at_event(&join.event_id, true).unwrap();
        assert_eq!(hs.state_id_in(&after, "m.room.member", mallory).unwrap(), Some(join.event_id.clone()));
        let meta = hs.event_meta(&sneaked.event_id).unwrap().unwrap();
        assert!(meta.outlier && meta.rejected.is_some(), "a sender the state before does not allow");
    }
}
