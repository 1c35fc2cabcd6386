//! Room state at each event, as state groups: a group is a delta over its parent group, with a
//! full snapshot when the chain of deltas grows long for the state's size ([`delta_limit`]),
//! so a large room neither copies its whole state per event nor writes it every few events.
//! Group 0 is the empty state. States are sorted vectors of interned ids ([`super::nids`]);
//! full states read are kept in a cache bounded by their size, not by their number (one group
//! of a big room is a big map). Readers that need names ask for them ([`Homeserver::state_id_in`],
//! [`Homeserver::state_of_type`], [`Homeserver::named_state`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tandem_state_res::{EventNid, StateKeyNid};
use tandem_storage::codec::get_u64;

use super::nids::{Pending, type_range};
use super::{MembershipRow, Room};
use crate::cache::Weighted;
use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn};
use crate::tables;

/// A room state: `(type, state_key)` nid → event nid, sorted ([`super::nids`]).
pub type StateMap = tandem_state_res::StateMap;

/// A room state by name, as other servers send it: `(type, state_key) → event_id`.
pub type NamedState = BTreeMap<(String, String), String>;

/// One entry of a state: `(type, state_key)` nid and event nid.
pub type Entry = (StateKeyNid, EventNid);

/// A change between two states, by name: the key and its new event (`None`: removed).
pub(crate) type Change = ((String, String), Option<String>);

/// How many deltas may follow a snapshot before the next one, for a state of `entries`:
/// a sixteenth of the state, so that a room growing by joins writes a snapshot only every
/// `entries / 16` joins (its total snapshot writes stay linear in its size, not quadratic),
/// at least 32 and at most 1,024, the most deltas one read of an uncached group walks.
fn delta_limit(entries: usize) -> u32 {
    (entries / 16).clamp(32, 1024) as u32
}

/// After a merge the next state event starts a new chain with a snapshot.
const NEW_CHAIN: u32 = u32::MAX;

/// Bytes the group cache may hold, all states together (16 bytes an entry: two million).
const GROUP_CACHE_BYTES: usize = 32 << 20;

/// Full states of groups read lately, least recently used out, bounded by their size.
pub(crate) type GroupCache = Weighted<u64, Arc<StateMap>>;

pub(crate) fn group_cache() -> GroupCache {
    Weighted::new(GROUP_CACHE_BYTES, |_, map| map.len() * 16 + 64)
}

/// A stored group: `0` then the whole state, or `1`, the parent group and the entries that
/// differ from it; entries as big-endian `(state key nid, event nid)` pairs.
pub(crate) fn encode(parent: Option<u64>, entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + entries.len() * 16);
    match parent {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    for (k, e) in entries {
        out.extend_from_slice(&k.0.to_be_bytes());
        out.extend_from_slice(&e.0.to_be_bytes());
    }
    out
}

fn decode(id: u64, bytes: &[u8]) -> Result<(Option<u64>, Vec<Entry>)> {
    let corrupt = || Error::internal(format!("state group {id} is corrupt"));
    let (parent, rest) = match bytes.first() {
        Some(0) => (None, &bytes[1..]),
        Some(1) => (Some(get_u64(bytes, 1).ok_or_else(corrupt)?), &bytes[9.min(bytes.len())..]),
        _ => return Err(corrupt()),
    };
    if rest.len() % 16 != 0 {
        return Err(corrupt());
    }
    let entries = rest
        .chunks_exact(16)
        .map(|c| (StateKeyNid(get_u64(c, 0).unwrap_or(0)), EventNid(get_u64(c, 8).unwrap_or(0))))
        .collect();
    Ok((parent, entries))
}

pub(crate) fn put_group(txn: &mut Txn, id: u64, parent: Option<u64>, entries: &[Entry]) {
    tables::rooms::put_group(&mut txn.batch, id, encode(parent, entries));
}

impl Homeserver {
    /// The full state of a group.
    pub fn state_map(&self, group: u64) -> Result<Arc<StateMap>> {
        if group == 0 {
            return Ok(Arc::default());
        }
        if let Some(map) = self.group_cache.get(&group) {
            return Ok(map);
        }
        // Up the chain to a cached group or the snapshot, then the deltas oldest first. Only
        // the group asked for and the chain's snapshot are cached: caching every group on the
        // way kept dozens of copies of a big room's state.
        let mut deltas = Vec::new();
        let mut at = group;
        let mut map = loop {
            if at == 0 {
                break StateMap::default();
            }
            if let Some(map) = self.group_cache.get(&at) {
                break (*map).clone();
            }
            let bytes = tables::rooms::group(&self.db, at)?
                .ok_or_else(|| Error::internal(format!("missing state group {at}")))?;
            match decode(at, &bytes)? {
                (Some(parent), delta) => {
                    deltas.push(delta);
                    at = parent;
                }
                (None, entries) => {
                    let snapshot = StateMap::new(entries);
                    if at != group {
                        self.group_cache.insert(at, Arc::new(snapshot.clone()));
                    }
                    break snapshot;
                }
            }
        };
        for delta in deltas.into_iter().rev() {
            for (k, e) in delta {
                map.insert(k, e);
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

    /// The event at `(kind, state_key)` in a state.
    pub fn state_id_in(&self, map: &StateMap, kind: &str, state_key: &str) -> Result<Option<String>> {
        self.state_id_pending(None, map, kind, state_key)
    }

    pub(crate) fn state_id_pending(
        &self,
        pending: Option<&Pending>,
        map: &StateMap,
        kind: &str,
        state_key: &str,
    ) -> Result<Option<String>> {
        let Some(k) = self.nids.key_nid(pending, kind, state_key)? else { return Ok(None) };
        match map.get(k) {
            Some(e) => self.nids.event_id(pending, e),
            None => Ok(None),
        }
    }

    /// A state by name.
    pub fn named_state(&self, map: &StateMap) -> Result<NamedState> {
        self.named_entries(None, map.entries())
    }

    pub(crate) fn named_entries(&self, pending: Option<&Pending>, entries: &[Entry]) -> Result<NamedState> {
        let mut out = NamedState::new();
        for &(k, e) in entries {
            let (Some(name), Some(id)) = (self.nids.key_name(pending, k)?, self.nids.event_id(pending, e)?) else {
                return Err(Error::internal(format!("a state entry names unknown nids {k:?} {e:?}")));
            };
            out.insert(name, id);
        }
        Ok(out)
    }

    /// The event ids of a state.
    pub fn state_event_ids(&self, map: &StateMap) -> Result<Vec<String>> {
        map.entries()
            .iter()
            .map(|&(_, e)| {
                self.nids.event_id(None, e)?.ok_or_else(|| Error::internal(format!("unknown event nid {e:?}")))
            })
            .collect()
    }

    /// The entries of one event type in a state, by name: `(state_key, event_id)`.
    pub fn state_of_type(&self, map: &StateMap, kind: &str) -> Result<Vec<(String, String)>> {
        self.state_of_type_pending(None, map, kind)
    }

    pub(crate) fn state_of_type_pending(
        &self,
        pending: Option<&Pending>,
        map: &StateMap,
        kind: &str,
    ) -> Result<Vec<(String, String)>> {
        let Some(t) = self.nids.type_nid(pending, kind)? else { return Ok(Vec::new()) };
        let range = type_range(t);
        let entries = map.entries();
        let start = entries.partition_point(|e| e.0 < range.start);
        let end = entries.partition_point(|e| e.0 < range.end);
        Ok(self.named_entries(pending, &entries[start..end])?.into_iter().map(|((_, sk), id)| (sk, id)).collect())
    }

    /// The changes from state `old` to state `new`, by name: what `new` sets differently
    /// (`Some(event_id)`) and what it lacks (`None`).
    pub(crate) fn state_changes(
        &self,
        pending: Option<&Pending>,
        old: &StateMap,
        new: &StateMap,
    ) -> Result<Vec<Change>> {
        let (old, new) = (old.entries(), new.entries());
        let (mut i, mut j) = (0, 0);
        let mut changed = Vec::new();
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    if a.1 != b.1 {
                        changed.push((b.0, Some(b.1)));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    changed.push((a.0, None));
                    i += 1;
                }
                (Some(a), None) => {
                    changed.push((a.0, None));
                    i += 1;
                }
                (_, Some(b)) => {
                    changed.push((b.0, Some(b.1)));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        changed
            .into_iter()
            .map(|(k, e)| {
                let name =
                    self.nids.key_name(pending, k)?.ok_or_else(|| Error::internal(format!("unknown key {k:?}")))?;
                let id = match e {
                    Some(e) => Some(
                        self.nids
                            .event_id(pending, e)?
                            .ok_or_else(|| Error::internal(format!("unknown event {e:?}")))?,
                    ),
                    None => None,
                };
                Ok((name, id))
            })
            .collect()
    }
}

impl Room {
    /// For a group this write made from its parent by one state event: the parent and the
    /// event's `(type, state_key, event_id)`.
    pub(crate) fn pending_step(&self, group: u64) -> Option<&(u64, String, String, String)> {
        self.pending_steps.get(&group)
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
        put_group(txn, id, None, map.entries());
        self.pending_groups.insert(id, Arc::new(map));
        id
    }

    /// A state given by name as a state of nids, handing out the nids it lacks.
    pub(crate) fn intern_state(&self, hs: &Homeserver, txn: &mut Txn, named: &NamedState) -> Result<StateMap> {
        let mut entries = Vec::with_capacity(named.len());
        for ((kind, state_key), event_id) in named {
            entries.push((txn.key_nid(hs, kind, state_key)?, txn.event_nid(hs, event_id)?));
        }
        Ok(StateMap::new(entries))
    }

    /// Writes `(kind, state_key) → event_id` into the room's current state, and for a member
    /// event of another server's user whether they are joined now.
    pub(crate) fn put_current(
        &self,
        hs: &Homeserver,
        txn: &mut Txn,
        kind: &str,
        state_key: &str,
        event_id: &str,
        membership: Option<&str>,
    ) {
        tables::rooms::put_current(&mut txn.batch, &self.id, kind, state_key, event_id);
        if kind == "m.room.member" && !hs.is_local(state_key) {
            tables::rooms::set_remote_member(&mut txn.batch, state_key, &self.id, membership == Some("join"));
        }
    }

    /// Makes `group` the room's current state, writing only what differs from the state it
    /// replaces, and the memberships of local users it changes.
    pub(crate) fn set_current(&mut self, hs: &Homeserver, txn: &mut Txn, group: u64, pos: u64) -> Result<()> {
        let old = self.group_map(hs, self.info.state_group)?;
        let new = self.group_map(hs, group)?;
        for ((kind, state_key), event_id) in hs.state_changes(Some(&txn.nids), &old, &new)? {
            let Some(event_id) = event_id else {
                tables::rooms::delete_current(&mut txn.batch, &self.id, &kind, &state_key);
                if kind == "m.room.member" {
                    tables::rooms::set_remote_member(&mut txn.batch, &state_key, &self.id, false);
                }
                continue;
            };
            let membership = if kind == "m.room.member" { self.auth_event(hs, &event_id)?.membership() } else { None };
            self.put_current(hs, txn, &kind, &state_key, &event_id, membership.map(|m| m.as_str()));
            if kind == "m.room.member" && hs.is_local(&state_key) {
                let row = MembershipRow {
                    membership: membership.map_or("leave", |m| m.as_str()).to_owned(),
                    event_id: event_id.clone(),
                    pos,
                    forgotten: false,
                };
                tables::rooms::put_membership(&mut txn.batch, &state_key, &self.id, &row);
            }
            self.changed_state.insert((kind, state_key), event_id);
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
        let snapshot = parent == 0 || self.info.group_depth >= delta_limit(self.group_map(hs, parent)?.len());
        let id = self.derive_group(hs, txn, parent, kind, state_key, event_id, snapshot)?;
        self.info.group_depth = if snapshot { 0 } else { self.info.group_depth + 1 };
        self.changed_state.insert((kind.to_owned(), state_key.to_owned()), event_id.to_owned());
        self.info.state_group = id;
        Ok(id)
    }

    /// A new group: `parent`'s state with `event_id` at `(kind, state_key)`, stored whole
    /// (`snapshot`) or as a delta over `parent`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn derive_group(
        &mut self,
        hs: &Homeserver,
        txn: &mut Txn,
        parent: u64,
        kind: &str,
        state_key: &str,
        event_id: &str,
        snapshot: bool,
    ) -> Result<u64> {
        let entry = (txn.key_nid(hs, kind, state_key)?, txn.event_nid(hs, event_id)?);
        let mut full = (*self.group_map(hs, parent)?).clone();
        full.insert(entry.0, entry.1);
        let id = txn.new_group();
        if snapshot {
            put_group(txn, id, None, full.entries());
        } else {
            put_group(txn, id, Some(parent), &[entry]);
        }
        self.pending_groups.insert(id, Arc::new(full));
        self.pending_steps.insert(id, (parent, kind.to_owned(), state_key.to_owned(), event_id.to_owned()));
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use tandem_state_res::{EventNid, StateKeyNid};

    use super::{decode, delta_limit, encode};

    #[test]
    fn snapshots_grow_apart_with_the_state() {
        assert_eq!(delta_limit(10), 32);
        assert_eq!(delta_limit(4_000), 250);
        assert_eq!(delta_limit(1_000_000), 1024);
    }

    #[test]
    fn groups_round_trip_and_corruption_is_an_error() {
        let entries = vec![(StateKeyNid(1), EventNid(7)), (StateKeyNid(1 << 41), EventNid(u64::MAX - 1))];
        assert_eq!(decode(1, &encode(None, &entries)).unwrap(), (None, entries.clone()));
        assert_eq!(decode(1, &encode(Some(9), &entries)).unwrap(), (Some(9), entries));
        assert!(decode(1, &[]).is_err());
        assert!(decode(1, &[1, 0, 0]).is_err());
        assert!(decode(1, &[0, 1, 2]).is_err());
        assert!(decode(1, b"{\"parent\":null}").is_err());
    }
}
