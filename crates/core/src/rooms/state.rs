//! Room state at each event, as state groups: a group is a delta over its parent group, and
//! every `MAX_DELTA_DEPTH` deltas a full snapshot, so a large room does not copy its whole
//! state per event and no read walks a long chain. Group 0 is the empty state.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{MembershipRow, Room};
use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn, lock};
use crate::tables::{CURRENT_STATE, MEMBERSHIPS, REMOTE_MEMBERS, STATE_GROUPS, key, key_pos};

/// `(type, state_key) → event_id`.
pub type StateMap = BTreeMap<(String, String), String>;

const MAX_DELTA_DEPTH: u32 = 32;

#[derive(Serialize, Deserialize)]
pub(crate) struct Group {
    /// `None`: `delta` is the whole state.
    parent: Option<u64>,
    delta: Vec<(String, String, String)>,
}

fn group_key(id: u64) -> Vec<u8> {
    key_pos(&[], id)
}

impl Homeserver {
    /// The full state of a group.
    pub fn state_map(&self, group: u64) -> Result<Arc<StateMap>> {
        if group == 0 {
            return Ok(Arc::default());
        }
        if let Some(map) = lock(&self.group_cache).get(&group) {
            return Ok(map.clone());
        }
        let stored: Group = self
            .get_json(STATE_GROUPS, &group_key(group))?
            .ok_or_else(|| Error::internal(format!("missing state group {group}")))?;
        let mut map = match stored.parent {
            Some(parent) => (*self.state_map(parent)?).clone(),
            None => StateMap::new(),
        };
        for (kind, state_key, event_id) in stored.delta {
            map.insert((kind, state_key), event_id);
        }
        let map = Arc::new(map);
        let mut cache = lock(&self.group_cache);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(group, map.clone());
        Ok(map)
    }

    /// The state before an event (`after == false`) or after it.
    pub fn state_at_event(&self, event_id: &str, after: bool) -> Result<Arc<StateMap>> {
        let meta = self.event_meta(event_id)?.ok_or_else(|| Error::not_found("Unknown event"))?;
        self.state_map(if after { meta.after } else { meta.before })
    }
}

impl Room {
    pub(crate) fn is_pending_group(&self, group: u64) -> bool {
        self.pending_groups.contains_key(&group)
    }

    /// The state of a group, including groups this write made.
    pub(crate) fn group_map(&self, hs: &Homeserver, group: u64) -> Result<Arc<StateMap>> {
        match self.pending_groups.get(&group) {
            Some(map) => Ok(map.clone()),
            None => hs.state_map(group),
        }
    }

    /// A new group holding all of `map`.
    pub(crate) fn full_group(&mut self, txn: &mut Txn, map: StateMap) -> u64 {
        let id = txn.new_group();
        let group =
            Group { parent: None, delta: map.iter().map(|((t, k), e)| (t.clone(), k.clone(), e.clone())).collect() };
        txn.put_json(STATE_GROUPS, group_key(id), &group);
        self.pending_groups.insert(id, Arc::new(map));
        id
    }

    /// Writes `(kind, state_key) → event_id` into the room's current state, and for a member
    /// event of another server's user whether they are joined now ([`REMOTE_MEMBERS`]).
    pub(crate) fn put_current(
        &self,
        hs: &Homeserver,
        txn: &mut Txn,
        kind: &str,
        state_key: &str,
        event_id: &str,
        membership: Option<&str>,
    ) {
        txn.batch.put(CURRENT_STATE, key(&[&self.id, kind, state_key]), event_id.as_bytes().to_vec());
        if kind == "m.room.member" && !hs.is_local(state_key) {
            let k = key(&[state_key, &self.id]);
            if membership == Some("join") {
                txn.batch.put(REMOTE_MEMBERS, k, Vec::new());
            } else {
                txn.batch.delete(REMOTE_MEMBERS, k);
            }
        }
    }

    /// Makes `group` (whose state is `map`) the room's current state, writing only what
    /// differs from the state it replaces, and the memberships of local users it changes.
    pub(crate) fn set_current(&mut self, hs: &Homeserver, txn: &mut Txn, group: u64, pos: u64) -> Result<()> {
        let old = self.group_map(hs, self.info.state_group)?;
        let new = self.group_map(hs, group)?;
        for ((kind, state_key), event_id) in new.iter() {
            if old.get(&(kind.clone(), state_key.clone())) == Some(event_id) {
                continue;
            }
            let membership = if kind == "m.room.member" { self.auth_event(hs, event_id)?.membership() } else { None };
            self.put_current(hs, txn, kind, state_key, event_id, membership.map(|m| m.as_str()));
            self.changed_state.insert((kind.clone(), state_key.clone()), event_id.clone());
            if kind == "m.room.member" && hs.is_local(state_key) {
                let row = MembershipRow {
                    membership: membership.map_or("leave", |m| m.as_str()).to_owned(),
                    event_id: event_id.clone(),
                    pos,
                    forgotten: false,
                };
                txn.put_json(MEMBERSHIPS, key(&[state_key, &self.id]), &row);
            }
        }
        for (kind, state_key) in old.keys() {
            if !new.contains_key(&(kind.clone(), state_key.clone())) {
                txn.batch.delete(CURRENT_STATE, key(&[&self.id, kind, state_key]));
                if kind == "m.room.member" {
                    txn.batch.delete(REMOTE_MEMBERS, key(&[state_key, &self.id]));
                }
            }
        }
        self.info.state_group = group;
        // A delta chain starts again from whatever group this is; the next local state event
        // writes a full snapshot if the chain would grow past its limit.
        self.info.group_depth = MAX_DELTA_DEPTH;
        Ok(())
    }

    /// Records the room's state after `event_id` replaces `(kind, state_key)`: a new group
    /// becomes the room's current group.
    pub(crate) fn push_state(
        &mut self,
        hs: &Homeserver,
        txn: &mut Txn,
        kind: &str,
        state_key: &str,
        event_id: &str,
    ) -> Result<u64> {
        let parent = self.info.state_group;
        let mut full = (*self.group_map(hs, parent)?).clone();
        full.insert((kind.to_owned(), state_key.to_owned()), event_id.to_owned());
        let id = txn.new_group();
        let group = if parent == 0 || self.info.group_depth >= MAX_DELTA_DEPTH {
            self.info.group_depth = 0;
            Group { parent: None, delta: full.iter().map(|((t, k), e)| (t.clone(), k.clone(), e.clone())).collect() }
        } else {
            self.info.group_depth += 1;
            Group { parent: Some(parent), delta: vec![(kind.to_owned(), state_key.to_owned(), event_id.to_owned())] }
        };
        txn.put_json(STATE_GROUPS, group_key(id), &group);
        self.pending_groups.insert(id, Arc::new(full));
        self.changed_state.insert((kind.to_owned(), state_key.to_owned()), event_id.to_owned());
        self.info.state_group = id;
        Ok(id)
    }
}
