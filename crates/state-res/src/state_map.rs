use crate::event::{EventNid, StateKeyNid};

/// A room state: `(type, state_key)` to event, as a vector sorted by key with each key once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMap(Vec<(StateKeyNid, EventNid)>);

impl StateMap {
    /// Sorts the entries; of two entries with one key the later wins.
    pub fn new(mut entries: Vec<(StateKeyNid, EventNid)>) -> Self {
        entries.reverse();
        entries.sort_by_key(|e| e.0);
        entries.dedup_by_key(|e| e.0);
        StateMap(entries)
    }

    /// Entries already sorted by key with each key once.
    pub(crate) fn from_sorted(entries: Vec<(StateKeyNid, EventNid)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        StateMap(entries)
    }

    pub fn entries(&self) -> &[(StateKeyNid, EventNid)] {
        &self.0
    }

    pub fn get(&self, key: StateKeyNid) -> Option<EventNid> {
        self.0.binary_search_by_key(&key, |e| e.0).ok().map(|i| self.0[i].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `key` to `event`.
    pub fn insert(&mut self, key: StateKeyNid, event: EventNid) {
        match self.0.binary_search_by_key(&key, |e| e.0) {
            Ok(i) => self.0[i].1 = event,
            Err(i) => self.0.insert(i, (key, event)),
        }
    }

    pub fn into_entries(self) -> Vec<(StateKeyNid, EventNid)> {
        self.0
    }
}
