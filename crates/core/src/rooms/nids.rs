//! Interning: the dense integers (nids) that stand for event ids and `(type, state_key)` pairs
//! in state groups and in state resolution, so that a room's state is a sorted vector of
//! integer pairs (16 bytes an entry) instead of a map of strings.
//!
//! Every stored event gets an event nid when its PDU is stored, and every stored state event a
//! state key nid, so resolution can walk any auth chain by nids. A state key nid carries its
//! event type's nid in its top 24 bits: a state's entries of one type are one run of the sorted
//! vector (the members of a room, its space children) without a lookup per entry.
//!
//! Nids are handed out inside a write ([`Pending`]) and become visible to readers when the
//! write commits, like everything else a write does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tandem_state_res::{EventNid, StateKeyNid};
use tandem_storage::codec::get_u64;
use tandem_storage::{Batch, Db};

use crate::cache::Weighted;
use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{NAMES, NIDS, meta};

/// What a nid stands for: the first byte of its keys in [`NIDS`] and [`NAMES`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(usize)]
enum Space {
    Event = 0,
    Type = 1,
    Key = 2,
}

const SPACES: [(u8, &[u8]); 3] = [(b'e', b"nid/event"), (b't', b"nid/type"), (b'k', b"nid/key")];

/// Where an id that has no nid points (an event this server does not hold): no provider has it.
pub(crate) const UNKNOWN_EVENT: EventNid = EventNid(u64::MAX);

/// The bits of a state key nid below its type's nid.
const TYPE_SHIFT: u32 = 40;

/// Bytes each of the six caches may hold (names of both directions of three spaces).
const CACHE_BYTES: usize = 16 << 20;

fn nid_key(space: u8, nid: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(space);
    k.extend_from_slice(&nid.to_be_bytes());
    k
}

fn name_key(space: u8, name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(space);
    k.extend_from_slice(name);
    k
}

/// One space: name ↔ nid, with the most used of both directions cached.
struct Dict {
    space: u8,
    counter: &'static [u8],
    next: AtomicU64,
    by_name: Weighted<Box<[u8]>, u64>,
    by_nid: Weighted<u64, Arc<[u8]>>,
}

impl Dict {
    fn open(db: &Db, (space, counter): (u8, &'static [u8])) -> tandem_storage::Result<Self> {
        let next = meta::counter(db, counter)?;
        Ok(Dict {
            space,
            counter,
            next: AtomicU64::new(next),
            by_name: Weighted::new(CACHE_BYTES, |k, _| k.len() + 64),
            by_nid: Weighted::new(CACHE_BYTES, |_, v| v.len() + 64),
        })
    }

    fn nid(&self, db: &Db, name: &[u8]) -> Result<Option<u64>> {
        if let Some(nid) = self.by_name.get(name) {
            return Ok(Some(nid));
        }
        let Some(v) = db.get(NIDS, &name_key(self.space, name))? else { return Ok(None) };
        let nid = get_u64(&v, 0).ok_or_else(|| Error::internal("a nid is not 8 bytes"))?;
        self.by_name.insert(name.into(), nid);
        Ok(Some(nid))
    }

    fn name(&self, db: &Db, nid: u64) -> Result<Option<Arc<[u8]>>> {
        if let Some(name) = self.by_nid.get(&nid) {
            return Ok(Some(name));
        }
        let Some(v) = db.get(NAMES, &nid_key(self.space, nid))? else { return Ok(None) };
        let name: Arc<[u8]> = v.into();
        self.by_nid.insert(nid, name.clone());
        Ok(Some(name))
    }
}

/// The interning tables and their caches.
pub(crate) struct Nids {
    db: Db,
    dicts: [Dict; 3],
}

/// Nids a write handed out, visible to the rest of it.
#[derive(Default)]
pub(crate) struct Pending {
    dicts: [PendingDict; 3],
}

#[derive(Default)]
struct PendingDict {
    by_name: HashMap<Box<[u8]>, u64>,
    by_nid: HashMap<u64, Arc<[u8]>>,
    /// The next nid to hand out; `None` until the first is.
    next: Option<u64>,
}

impl Nids {
    pub fn open(db: &Db) -> tandem_storage::Result<Self> {
        Ok(Nids {
            db: db.clone(),
            dicts: [Dict::open(db, SPACES[0])?, Dict::open(db, SPACES[1])?, Dict::open(db, SPACES[2])?],
        })
    }

    /// Adds to a write the counters of the spaces it handed nids out of (once each, however
    /// many it handed out).
    pub fn put_counters(&self, pending: &Pending, batch: &mut Batch) {
        for (dict, p) in self.dicts.iter().zip(&pending.dicts) {
            if let Some(next) = p.next {
                meta::put_counter(batch, dict.counter, next);
            }
        }
    }

    /// Publishes what a committed write handed out.
    pub fn commit(&self, pending: Pending) {
        for (dict, p) in self.dicts.iter().zip(pending.dicts) {
            if let Some(next) = p.next {
                dict.next.store(next, Ordering::Release);
            }
            for (name, nid) in p.by_name {
                dict.by_name.insert(name, nid);
            }
        }
    }

    fn lookup(&self, pending: Option<&Pending>, space: Space, name: &[u8]) -> Result<Option<u64>> {
        if let Some(&nid) = pending.and_then(|p| p.dicts[space as usize].by_name.get(name)) {
            return Ok(Some(nid));
        }
        self.dicts[space as usize].nid(&self.db, name)
    }

    fn name(&self, pending: Option<&Pending>, space: Space, nid: u64) -> Result<Option<Arc<[u8]>>> {
        if let Some(name) = pending.and_then(|p| p.dicts[space as usize].by_nid.get(&nid)) {
            return Ok(Some(name.clone()));
        }
        self.dicts[space as usize].name(&self.db, nid)
    }

    /// The nid of `name`, handed out now if it has none.
    fn assign(&self, pending: &mut Pending, batch: &mut Batch, space: Space, name: &[u8]) -> Result<u64> {
        if let Some(nid) = self.lookup(Some(pending), space, name)? {
            return Ok(nid);
        }
        let dict = &self.dicts[space as usize];
        let p = &mut pending.dicts[space as usize];
        let nid = p.next.unwrap_or_else(|| dict.next.load(Ordering::Acquire));
        if space == Space::Type && nid >= 1 << (64 - TYPE_SHIFT) {
            return Err(Error::internal("out of event type nids"));
        }
        p.next = Some(nid + 1);
        batch.put(NIDS, name_key(dict.space, name), nid.to_be_bytes().to_vec());
        batch.put(NAMES, nid_key(dict.space, nid), name.to_vec());
        p.by_name.insert(name.into(), nid);
        p.by_nid.insert(nid, name.into());
        Ok(nid)
    }

    fn key_name_bytes(kind_nid: u64, state_key: &str) -> Vec<u8> {
        let mut name = Vec::with_capacity(4 + state_key.len());
        name.extend_from_slice(&(kind_nid as u32).to_be_bytes());
        name.extend_from_slice(state_key.as_bytes());
        name
    }

    pub fn event_nid(&self, pending: Option<&Pending>, event_id: &str) -> Result<Option<EventNid>> {
        Ok(self.lookup(pending, Space::Event, event_id.as_bytes())?.map(EventNid))
    }

    pub fn event_id(&self, pending: Option<&Pending>, nid: EventNid) -> Result<Option<String>> {
        Ok(self.name(pending, Space::Event, nid.0)?.map(|n| String::from_utf8_lossy(&n).into_owned()))
    }

    /// The nid of an event type, if any event of it was stored.
    pub fn type_nid(&self, pending: Option<&Pending>, kind: &str) -> Result<Option<u64>> {
        self.lookup(pending, Space::Type, kind.as_bytes())
    }

    pub fn key_nid(&self, pending: Option<&Pending>, kind: &str, state_key: &str) -> Result<Option<StateKeyNid>> {
        let Some(t) = self.type_nid(pending, kind)? else { return Ok(None) };
        let seq = self.lookup(pending, Space::Key, &Self::key_name_bytes(t, state_key))?;
        Ok(seq.map(|s| StateKeyNid(t << TYPE_SHIFT | s)))
    }

    /// `(type, state_key)` of a state key nid.
    pub fn key_name(&self, pending: Option<&Pending>, nid: StateKeyNid) -> Result<Option<(String, String)>> {
        let Some(name) = self.name(pending, Space::Key, nid.0 & ((1 << TYPE_SHIFT) - 1))? else { return Ok(None) };
        let Some(kind) = self.name(pending, Space::Type, nid.0 >> TYPE_SHIFT)? else { return Ok(None) };
        let state_key = name.get(4..).unwrap_or_default();
        Ok(Some((String::from_utf8_lossy(&kind).into_owned(), String::from_utf8_lossy(state_key).into_owned())))
    }

    pub fn intern_event(&self, pending: &mut Pending, batch: &mut Batch, event_id: &str) -> Result<EventNid> {
        self.assign(pending, batch, Space::Event, event_id.as_bytes()).map(EventNid)
    }

    pub fn intern_key(
        &self,
        pending: &mut Pending,
        batch: &mut Batch,
        kind: &str,
        state_key: &str,
    ) -> Result<StateKeyNid> {
        let t = self.assign(pending, batch, Space::Type, kind.as_bytes())?;
        let seq = self.assign(pending, batch, Space::Key, &Self::key_name_bytes(t, state_key))?;
        if seq >= 1 << TYPE_SHIFT {
            return Err(Error::internal("out of state key nids"));
        }
        Ok(StateKeyNid(t << TYPE_SHIFT | seq))
    }
}

/// The range of state key nids of one event type, for [`tandem_state_res::StateMap`] scans.
pub(crate) fn type_range(type_nid: u64) -> std::ops::Range<StateKeyNid> {
    StateKeyNid(type_nid << TYPE_SHIFT)..StateKeyNid((type_nid + 1) << TYPE_SHIFT)
}

impl Homeserver {
    /// The lookup [`tandem_state_res::AuthEvent::from_json`] takes: an id of an event this
    /// server does not hold points nowhere ([`UNKNOWN_EVENT`]).
    pub(crate) fn nid_of<'a>(&'a self, pending: Option<&'a Pending>) -> impl Fn(&str) -> EventNid + 'a {
        move |id| self.nids.event_nid(pending, id).ok().flatten().unwrap_or(UNKNOWN_EVENT)
    }
}

impl Txn {
    /// The nid of an event id, handed out by this write if it has none.
    pub(crate) fn event_nid(&mut self, hs: &Homeserver, event_id: &str) -> Result<EventNid> {
        hs.nids.intern_event(&mut self.nids, &mut self.batch, event_id)
    }

    /// The nid of `(kind, state_key)`, handed out by this write if it has none.
    pub(crate) fn key_nid(&mut self, hs: &Homeserver, kind: &str, state_key: &str) -> Result<StateKeyNid> {
        hs.nids.intern_key(&mut self.nids, &mut self.batch, kind, state_key)
    }
}

#[cfg(test)]
mod tests {
    use tandem_storage::Batch;

    use super::{Nids, Pending, type_range};

    /// Nids handed out by a write are seen by the rest of it, survive a reopen once written,
    /// and state keys of one type fall in that type's range.
    #[test]
    fn interned_names_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = tandem_storage::Db::open(dir.path(), crate::tables::ALL).unwrap();
        let nids = Nids::open(&db).unwrap();
        let mut pending = Pending::default();
        let mut batch = Batch::new();
        let e1 = nids.intern_event(&mut pending, &mut batch, "$a").unwrap();
        let e2 = nids.intern_event(&mut pending, &mut batch, "$b").unwrap();
        assert_ne!(e1, e2);
        assert_eq!(nids.intern_event(&mut pending, &mut batch, "$a").unwrap(), e1);
        let alice = nids.intern_key(&mut pending, &mut batch, "m.room.member", "@alice:x").unwrap();
        let topic = nids.intern_key(&mut pending, &mut batch, "m.room.topic", "").unwrap();
        let bob = nids.intern_key(&mut pending, &mut batch, "m.room.member", "@bob:x").unwrap();
        let members = type_range(nids.type_nid(Some(&pending), "m.room.member").unwrap().unwrap());
        assert!(members.contains(&alice) && members.contains(&bob) && !members.contains(&topic));
        assert_eq!(nids.event_nid(None, "$a").unwrap(), None, "not committed yet");
        nids.put_counters(&pending, &mut batch);
        db.write(batch).unwrap();
        nids.commit(pending);
        drop(nids);

        let nids = Nids::open(&db).unwrap();
        assert_eq!(nids.event_nid(None, "$b").unwrap(), Some(e2));
        assert_eq!(nids.event_id(None, e1).unwrap().as_deref(), Some("$a"));
        assert_eq!(nids.key_nid(None, "m.room.member", "@bob:x").unwrap(), Some(bob));
        assert_eq!(nids.key_name(None, topic).unwrap(), Some(("m.room.topic".into(), String::new())));
        let mut pending = Pending::default();
        let mut batch = Batch::new();
        let e3 = nids.intern_event(&mut pending, &mut batch, "$c").unwrap();
        assert!(e3 > e2, "the counter survives a reopen");
    }
}
