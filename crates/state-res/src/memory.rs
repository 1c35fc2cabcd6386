//! An in-memory [`EventProvider`] that interns ids itself, and resolution on string-keyed maps.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::event::{AuthEvent, EventNid, EventType, StateKeyNid};
use crate::{Error, EventProvider, RoomVersion, StateMap};

/// A room state keyed by strings: `(type, state_key)` to event id.
pub type StringStateMap = HashMap<(String, String), String>;

/// Events held in memory, with the interning of event ids and state keys.
#[derive(Default, Clone)]
pub struct MemoryStore {
    event_nids: FxHashMap<Box<str>, EventNid>,
    event_ids: Vec<Box<str>>,
    events: Vec<Option<Arc<AuthEvent>>>,
    /// The state key id of each stored state event, by event id.
    event_keys: Vec<Option<StateKeyNid>>,
    /// type → state_key → id, so lookups by `&str` need no allocation.
    key_nids: FxHashMap<Box<str>, FxHashMap<Box<str>, StateKeyNid>>,
    keys: Vec<(Box<str>, Box<str>)>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of an event id string, assigned on first sight.
    pub fn intern_event(&mut self, event_id: &str) -> EventNid {
        if let Some(&nid) = self.event_nids.get(event_id) {
            return nid;
        }
        let nid = EventNid(self.event_ids.len() as u64);
        self.event_ids.push(event_id.into());
        self.events.push(None);
        self.event_keys.push(None);
        self.event_nids.insert(event_id.into(), nid);
        nid
    }

    /// The id of a `(type, state_key)` pair, assigned on first sight.
    pub fn intern_state_key(&mut self, kind: &str, state_key: &str) -> StateKeyNid {
        if let Some(&nid) = self.key_nids.get(kind).and_then(|m| m.get(state_key)) {
            return nid;
        }
        let nid = StateKeyNid(self.keys.len() as u64);
        self.keys.push((kind.into(), state_key.into()));
        self.key_nids.entry(kind.into()).or_default().insert(state_key.into(), nid);
        nid
    }

    /// Parses and stores a PDU; returns its id.
    pub fn insert_json(&mut self, version: &RoomVersion, event_id: &str, pdu: &Value) -> Result<EventNid, Error> {
        let event = AuthEvent::from_json(version, event_id, pdu, |id| self.intern_event(id))?;
        Ok(self.insert(event))
    }

    /// Stores an event built by the caller with ids from [`Self::intern_event`].
    pub fn insert(&mut self, event: AuthEvent) -> EventNid {
        let nid = self.intern_event(&event.event_id);
        if let Some(sk) = event.state_key() {
            let kind = event.kind.as_str().to_owned();
            self.event_keys[nid.0 as usize] = Some(self.intern_state_key(&kind, sk));
        }
        let mut event = event;
        event.nid = nid;
        self.events[nid.0 as usize] = Some(Arc::new(event));
        nid
    }

    /// Marks an event as rejected (or not).
    pub fn set_rejected(&mut self, nid: EventNid, rejected: bool) {
        if let Some(Some(ev)) = self.events.get_mut(nid.0 as usize) {
            Arc::make_mut(ev).rejected = rejected;
        }
    }

    pub fn event_nid(&self, event_id: &str) -> Option<EventNid> {
        self.event_nids.get(event_id).copied()
    }

    pub fn event_id(&self, nid: EventNid) -> Option<&str> {
        self.event_ids.get(nid.0 as usize).map(|s| &**s)
    }

    pub fn by_id(&self, event_id: &str) -> Option<Arc<AuthEvent>> {
        self.event(self.event_nid(event_id)?)
    }

    pub fn state_key(&self, nid: StateKeyNid) -> Option<(&str, &str)> {
        self.keys.get(nid.0 as usize).map(|(t, s)| (&**t, &**s))
    }

    /// A string-keyed state as a [`StateMap`]: every event must be stored, at the key the
    /// map gives it.
    pub fn state_map(&self, map: &StringStateMap) -> Result<StateMap, Error> {
        let mut entries = Vec::with_capacity(map.len());
        for ((kind, sk), id) in map {
            // One lookup per entry: the key comes with the stored event.
            let nid = self.event_nid(id).ok_or_else(|| Error::MalformedEvent(format!("unknown event {id}")))?;
            let key = self.event_keys[nid.0 as usize]
                .filter(|&k| self.state_key(k) == Some((kind.as_str(), sk.as_str())))
                .ok_or_else(|| Error::MalformedEvent(format!("{id} is not the state event at ({kind}, {sk})")))?;
            entries.push((key, nid));
        }
        Ok(StateMap::new(entries))
    }

    /// A [`StateMap`] back as strings.
    pub fn string_map(&self, map: &StateMap) -> StringStateMap {
        let mut out = StringStateMap::with_capacity(map.len());
        for &(k, e) in map.entries() {
            if let (Some((kind, sk)), Some(id)) = (self.state_key(k), self.event_id(e)) {
                out.insert((kind.to_owned(), sk.to_owned()), id.to_owned());
            }
        }
        out
    }
}

impl EventProvider for MemoryStore {
    fn event(&self, nid: EventNid) -> Option<Arc<AuthEvent>> {
        self.events.get(nid.0 as usize)?.clone()
    }

    fn state_key_nid(&self, kind: &EventType, state_key: &str) -> Option<StateKeyNid> {
        self.key_nids.get(kind.as_str())?.get(state_key).copied()
    }
}

/// [`crate::resolve`] on string-keyed maps and auth chains, with events from `store`.
pub fn resolve_strings(
    version: &RoomVersion,
    state_maps: &[&StringStateMap],
    auth_chains: Option<&[&HashSet<String>]>,
    store: &MemoryStore,
) -> Result<StringStateMap, Error> {
    let sets: Vec<StateMap> = state_maps.iter().map(|m| store.state_map(m)).collect::<Result<_, _>>()?;
    let chains: Option<Vec<Vec<EventNid>>> = auth_chains.map(|chains| {
        chains
            .iter()
            .map(|c| {
                let mut v: Vec<EventNid> = c.iter().filter_map(|id| store.event_nid(id)).collect();
                v.sort_unstable();
                v
            })
            .collect()
    });
    let chain_refs: Option<Vec<&[EventNid]>> = chains.as_ref().map(|c| c.iter().map(Vec::as_slice).collect());
    let set_refs: Vec<&StateMap> = sets.iter().collect();
    let resolved = crate::resolve(version, &set_refs, chain_refs.as_deref(), store)?;
    Ok(store.string_map(&resolved))
}
