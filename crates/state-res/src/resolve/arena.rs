//! The events one resolution touches, under dense local indices.
//!
//! Events come from the provider once and are then addressed by `u32` indices, so the set
//! algebra of the algorithm runs on bitsets and integer vectors.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::event::{AuthEvent, EventNid, EventType, StateKeyNid};
use crate::{Error, EventProvider};

pub(crate) type Idx = u32;

pub(crate) struct Arena<'p, P> {
    pub provider: &'p P,
    index: FxHashMap<EventNid, Option<Idx>>,
    events: Vec<Arc<AuthEvent>>,
}

impl<'p, P: EventProvider> Arena<'p, P> {
    pub fn new(provider: &'p P) -> Self {
        Arena { provider, index: FxHashMap::default(), events: Vec::new() }
    }

    /// The local index of `nid`, fetching the event on first use; `None` if the provider
    /// does not have it.
    pub fn load(&mut self, nid: EventNid) -> Option<Idx> {
        if let Some(idx) = self.index.get(&nid) {
            return *idx;
        }
        let idx = self.provider.event(nid).map(|ev| {
            self.events.push(ev);
            (self.events.len() - 1) as Idx
        });
        self.index.insert(nid, idx);
        idx
    }

    pub fn require(&mut self, nid: EventNid) -> Result<Idx, Error> {
        self.load(nid).ok_or(Error::MissingEvent(nid))
    }

    pub fn ev(&self, idx: Idx) -> &AuthEvent {
        &self.events[idx as usize]
    }

    pub fn arc(&self, idx: Idx) -> &Arc<AuthEvent> {
        &self.events[idx as usize]
    }

    /// The `(type, state_key)` id of a state event.
    pub fn key_of(&self, idx: Idx) -> Result<StateKeyNid, Error> {
        let ev = self.ev(idx);
        let sk = ev.state_key().ok_or(Error::UnknownStateKey(ev.nid))?;
        self.provider.state_key_nid(&ev.kind, sk).ok_or(Error::UnknownStateKey(ev.nid))
    }

    /// The power levels event among an event's auth events.
    pub fn auth_power_levels(&mut self, idx: Idx) -> Option<Idx> {
        let auth: Vec<EventNid> = self.ev(idx).auth_events.to_vec();
        for a in auth {
            if let Some(a) = self.load(a)
                && self.ev(a).is(&EventType::PowerLevels)
            {
                return Some(a);
            }
        }
        None
    }
}

/// A growable bitset over local indices.
#[derive(Default, Clone)]
pub(crate) struct BitSet(Vec<u64>);

impl BitSet {
    pub fn contains(&self, i: Idx) -> bool {
        self.0.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Inserts `i`; true if it was not there.
    pub fn insert(&mut self, i: Idx) -> bool {
        let w = (i / 64) as usize;
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let bit = 1 << (i % 64);
        let new = self.0[w] & bit == 0;
        self.0[w] |= bit;
        new
    }
}
