//! Merging forks: the state of a room whose graph has several forward extremities, or of an
//! event with several `prev_events`, by `tandem_state_res`'s integer entry point, reading
//! events from storage by nid as the algorithm reaches them (only the conflicted events and
//! the auth chains it walks are loaded, each parsed once and then cached).

use std::sync::Arc;

use tandem_state_res::{AuthEvent, EventNid, EventProvider, EventType, StateKeyNid};

use super::Room;
use super::nids::Pending;
use super::state::{NamedState, StateMap};
use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::server::lock;
use crate::tables::events;

/// A room's events by nid, as stored or staged by the current write.
struct StoredEvents<'a> {
    hs: &'a Homeserver,
    room: &'a Room,
    pending: &'a Pending,
}

impl EventProvider for StoredEvents<'_> {
    fn event(&self, nid: EventNid) -> Option<Arc<AuthEvent>> {
        let id = self.hs.nids.event_id(Some(self.pending), nid).ok()??;
        let event = self.room.auth_event(self.hs, &id).ok()?;
        // A view parsed before its event had a nid would point nowhere.
        (event.nid == nid).then_some(event)
    }

    fn state_key_nid(&self, kind: &EventType, state_key: &str) -> Option<StateKeyNid> {
        self.hs.nids.key_nid(Some(self.pending), kind.as_str(), state_key).ok()?
    }

    fn with_auth_events(&self, nid: EventNid, f: &mut dyn FnMut(&[EventNid])) -> bool {
        // Only stored events' edges are cached or read (a nid staged by a write that then
        // fails may be handed out again), and an event's auth events never change. Events
        // stored before edges were kept, and those of the current write, are read whole.
        if let Some(edges) = lock(&self.hs.auth_edges).get(&nid) {
            f(edges);
            return true;
        }
        if let Ok(Some(edges)) = events::auth_edges(&self.hs.db, nid) {
            f(&edges);
            lock(&self.hs.auth_edges).put(nid, edges);
            return true;
        }
        self.event(nid).map(|e| f(&e.auth_events)).is_some()
    }
}

impl Homeserver {
    /// The resolved state of `maps`, each the state of one fork.
    pub(crate) fn resolve_states(&self, room: &Room, pending: &Pending, maps: &[Arc<StateMap>]) -> Result<StateMap> {
        match maps {
            [] => return Ok(StateMap::default()),
            [only] => return Ok((**only).clone()),
            [first, rest @ ..] if rest.iter().all(|m| m == first) => return Ok((**first).clone()),
            _ => {}
        }
        let provider = StoredEvents { hs: self, room, pending };
        let sets: Vec<&StateMap> = maps.iter().map(Arc::as_ref).collect();
        tandem_state_res::resolve(&room.version, &sets, None, &provider)
            .map_err(|e| Error::internal(format!("state resolution in {}: {e}", room.id)))
    }

    /// Resolves several states of a room, given by name, into one (outside any write: every
    /// event named must be stored).
    pub fn resolve_room_states(&self, room_id: &str, maps: Vec<NamedState>) -> Result<NamedState> {
        let room = self.room(room_id)?;
        let mut sets = Vec::with_capacity(maps.len());
        for named in &maps {
            let mut entries = Vec::with_capacity(named.len());
            for ((kind, state_key), id) in named {
                let (Some(k), Some(e)) = (self.nids.key_nid(None, kind, state_key)?, self.nids.event_nid(None, id)?)
                else {
                    return Err(Error::internal(format!("{id} is not a stored state event")));
                };
                entries.push((k, e));
            }
            sets.push(Arc::new(StateMap::new(entries)));
        }
        let resolved = self.resolve_states(&room, &Pending::default(), &sets)?;
        self.named_state(&resolved)
    }
}

#[cfg(test)]
mod tests {
    use tandem_state_res::EventProvider;

    use super::StoredEvents;
    use crate::inbound::persist::tests::public_room;
    use crate::rooms::nids::Pending;
    use crate::server::lock;
    use crate::tables::events;

    /// Every stored event's auth edges are kept as its auth events' nids, and resolution's
    /// walk reads them from storage when they are not cached, as after a restart.
    #[test]
    fn stored_events_keep_their_auth_edges() {
        let (_dir, hs, _, room_id, auth) = public_room();
        let room = hs.room(&room_id).unwrap();
        lock(&hs.auth_edges).clear();
        let pending = Pending::default();
        let stored = StoredEvents { hs: &hs, room: &room, pending: &pending };
        for id in &auth {
            let nid = hs.nids.event_nid(None, id).unwrap().unwrap();
            let whole = room.auth_event(&hs, id).unwrap();
            lock(&hs.auth_edges).clear();
            let kept = events::auth_edges(&hs.db, nid).unwrap().expect("edges stored");
            assert_eq!(kept.to_vec(), whole.auth_events.to_vec(), "{id}");
            let mut walked = Vec::new();
            assert!(stored.with_auth_events(nid, &mut |a| walked.extend_from_slice(a)));
            assert_eq!(walked, kept.to_vec(), "{id}");
            assert!(lock(&hs.auth_edges).contains(&nid), "read once, then cached");
        }
        assert!(auth.iter().any(|id| !room.auth_event(&hs, id).unwrap().auth_events.is_empty()));
    }
}
