//! Iterative auth checks: apply sorted state events to a state, each if the rules allow it.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::arena::{Arena, Idx};
use crate::auth::{AuthInputs, AuthKey, check};
use crate::event::{AuthEvent, EventNid, EventType, StateKeyNid};
use crate::{Error, EventProvider, RoomVersion};

/// A state under construction: changes over an optional sorted base, so the base (for v2.0,
/// the unconflicted state map, often almost the whole room) is never copied.
pub(crate) struct WorkingState<'a> {
    pub base: Option<&'a [(StateKeyNid, EventNid)]>,
    pub changes: FxHashMap<StateKeyNid, EventNid>,
}

impl WorkingState<'_> {
    pub fn get(&self, key: StateKeyNid) -> Option<EventNid> {
        self.changes.get(&key).copied().or_else(|| {
            let base = self.base?;
            base.binary_search_by_key(&key, |e| e.0).ok().map(|i| base[i].1)
        })
    }
}

pub(crate) fn iterative_auth_checks<P: EventProvider>(
    v: &RoomVersion,
    arena: &mut Arena<'_, P>,
    events: &[Idx],
    state: &mut WorkingState<'_>,
    create: Option<Idx>,
) -> Result<(), Error> {
    for &idx in events {
        let event = arena.arc(idx).clone();
        if !event.is_state() {
            continue;
        }
        let inputs = AuthInputs::gather(v, &event, |key| lookup(v, arena, state, &event, create, key));
        if check(v, &event, &inputs.view()).is_ok() {
            state.changes.insert(arena.key_of(idx)?, event.nid);
        }
    }
    Ok(())
}

/// The state's event at `key` unless it is rejected, else the event's own auth event for
/// that key unless rejected; for v12 the create event is the one the room id names.
fn lookup<P: EventProvider>(
    v: &RoomVersion,
    arena: &mut Arena<'_, P>,
    state: &WorkingState<'_>,
    event: &AuthEvent,
    create: Option<Idx>,
    key: AuthKey<'_>,
) -> Option<Arc<AuthEvent>> {
    let kind = key.kind();
    let sk = key.state_key();
    let from_state = arena
        .provider
        .state_key_nid(&kind, sk)
        .and_then(|k| state.get(k))
        .and_then(|nid| arena.load(nid))
        .filter(|&i| !arena.ev(i).rejected);
    if let Some(i) = from_state {
        return Some(arena.arc(i).clone());
    }
    for &a in event.auth_events.iter() {
        if let Some(i) = arena.load(a) {
            let ev = arena.ev(i);
            if !ev.rejected && ev.kind == kind && ev.state_key() == Some(sk) {
                return Some(arena.arc(i).clone());
            }
        }
    }
    if v.room_id_is_create_event_id && kind == EventType::Create {
        return create.map(|c| arena.arc(c).clone());
    }
    None
}
