//! Room state at each event, as state groups: a group is a delta over its parent group, with a
//! full snapshot when the chain of deltas grows long for the state's size ([`delta_limit`]),
//! so a large room neither copies its whole state per event nor writes it every few events.
//! Group 0 is the empty state. Full states read are kept in a cache bounded by the number of
//! state entries it holds, not by groups (one group of a big room is a big map).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{MembershipRow, Room};
use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn, lock};
use crate::tables::{CURRENT_STATE, MEMBERSHIPS, REMOTE_MEMBERS, STATE_GROUPS, key, key_pos};

/// `(type, state_key) → event_id`.
pub type StateMap = BTreeMap<(String, String), String>;

/// How many deltas may follow a snapshot before the next one, for a state of `entries`:
/// a sixteenth of the state, so that a room growing by joins writes a snapshot only every
/// `entries / 16` joins (its total snapshot writes stay linear in its size, not quadratic),
/// at least 32 and at most 1,024, the most deltas one read of an uncached group walks.
fn delta_limit(entries: usize) -> u32 {
    (entries / 16).clamp(32, 1024) as u32
}

/// After a merge the next state event starts a new chain with a snapshot.
const NEW_CHAIN: u32 = u32::MAX;

/// State entries the group cache may hold, all groups together (about 100 MB).
const CACHED_STATE_ENTRIES: usize = 500_000;

/// Full states of groups read lately, least recently used out, bounded by their entries.
pub(crate) struct GroupCache(std::sync::Mutex<(lru::LruCache<u64, Arc<StateMap>>, usize)>);

impl Default for GroupCache {
    fn default() -> Self {
        GroupCache(std::sync::Mutex::new((lru::LruCache::unbounded(), 0)))
    }
}

impl GroupCache {
    fn get(&self, group: u64) -> Option<Arc<StateMap>> {
        lock(&self.0).0.get(&group).cloned()
    }

    fn insert(&self, group: u64, map: Arc<StateMap>) {
        let mut guard = lock(&self.0);
        let (cache, entries) = &mut *guard;
        *entries += map.len();
        if let Some(old) = cache.put(group, map) {
            *entries -= old.len();
        }
        // The newest stays even if it alone is over the budget.
        while *entries > CACHED_STATE_ENTRIES && cache.len() > 1 {
            if let Some((_, old)) = cache.pop_lru() {
                *entries -= old.len();
            }
        }
    }
}

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
        if let Some(map) = self.group_cache.get(group) {
            return Ok(map);
        }
        // Up the chain to a cached group or the snapshot, then the deltas oldest first. Only
        // the group asked for and the chain's snapshot are cached: caching every group on the
        // way kept dozens of copies of a big room's state.
        let mut deltas = Vec::new();
        let mut at = group;
        let mut map = loop {
            if at == 0 {
                break StateMap::new();
            }
            if let Some(map) = self.group_cache.get(at) {
                break (*map).clone();
            }
            let stored: Group = self
                .get_json(STATE_GROUPS, &group_key(at))?
                .ok_or_else(|| Error::internal(format!("missing state group {at}")))?;
            match stored.parent {
                Some(parent) => {
                    deltas.push(stored.delta);
                    at = parent;
                }
                None => {
                    let snapshot: StateMap = stored.delta.into_iter().map(|(t, k, e)| ((t, k), e)).collect();
                    if at != group {
                        self.group_cache.insert(at, Arc::new(snapshot.clone()));
                    }
                    break snapshot;
                }
            }
        };
        for delta in deltas.into_iter().rev() {
            for (kind, state_key, event_id) in delta {
                map.insert((kind, state_key), event_id);
            }
        }
        let map = Arc::new(map);
        self.group_cache.insert(group, map.clone());
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
        // Whatever group this is, the next state event starts a new chain with a snapshot.
        self.info.group_depth = NEW_CHAIN;
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
        let group = if parent == 0 || self.info.group_depth >= delta_limit(full.len()) {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{CACHED_STATE_ENTRIES, GroupCache, StateMap, delta_limit};

    fn map(entries: usize) -> Arc<StateMap> {
        Arc::new((0..entries).map(|i| (("m.room.member".to_owned(), format!("@u{i}:x")), format!("$e{i}"))).collect())
    }

    /// The cache holds at most its budget of state entries, whatever the number of groups,
    /// dropping the least recently used; a single state over the budget is still kept.
    #[test]
    fn the_group_cache_is_bounded_by_entries() {
        let cache = GroupCache::default();
        let big = CACHED_STATE_ENTRIES / 4;
        for g in 1..=4 {
            cache.insert(g, map(big));
        }
        assert!(cache.get(1).is_some(), "four quarters fit");
        cache.insert(5, map(big));
        assert!(cache.get(2).is_none(), "the least recently used (2; 1 was just read) goes");
        assert!(cache.get(1).is_some() && cache.get(5).is_some());
        assert!(super::lock(&cache.0).1 <= CACHED_STATE_ENTRIES);
        cache.insert(6, map(CACHED_STATE_ENTRIES + 1));
        assert!(cache.get(6).is_some() && cache.get(1).is_none());
    }

    #[test]
    fn snapshots_grow_apart_with_the_state() {
        assert_eq!(delta_limit(10), 32);
        assert_eq!(delta_limit(4_000), 250);
        assert_eq!(delta_limit(1_000_000), 1024);
    }
}
