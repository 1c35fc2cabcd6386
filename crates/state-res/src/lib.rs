//! Matrix event authorization and state resolution, as a pure library: no I/O, no global
//! state, no panics on any input.
//!
//! - [`authorize`] checks one event against a room state with the authorization rules of room
//!   versions 1–12; [`check_auth_events`] checks the event's `auth_events` list.
//! - [`resolve`] merges the states of a room's forks: state resolution v1 (room version 1),
//!   v2 (2–11) and v2.1 (12).
//!
//! Events are read through [`EventProvider`] as [`AuthEvent`]s, a compact view parsed once;
//! event ids and `(type, state_key)` pairs are the caller's integers ([`EventNid`],
//! [`StateKeyNid`]), and state sets are sorted vectors of those ([`StateMap`]). [`MemoryStore`]
//! does the interning for callers that hold events as JSON, and [`resolve_strings`] accepts
//! string-keyed maps.

#![forbid(unsafe_code)]

mod auth;
mod error;
mod event;
mod memory;
mod resolve;
mod room_version;
mod state_map;

pub use auth::{
    AuthKey, AuthState, Rejection, auth_types_for_event, authorize, check_auth_events, is_creator, user_power,
};
pub use error::Error;
pub use event::{
    AuthEvent, Content, CreateContent, EventNid, EventType, INFINITE_POWER, JoinRule, MemberContent, Membership, Power,
    PowerLevels, StateKeyNid, ThirdPartySigned,
};
pub use memory::{MemoryStore, StringStateMap, resolve_strings};
pub use resolve::resolve;
pub use room_version::{RoomVersion, StateResAlgorithm};
pub use state_map::StateMap;

use std::sync::Arc;

/// Where resolution reads events and state keys from: storage, a cache, or [`MemoryStore`].
pub trait EventProvider {
    /// The event with this id, if the provider has it.
    fn event(&self, nid: EventNid) -> Option<Arc<AuthEvent>>;

    /// The caller's id of `(kind, state_key)`, if any event has that key.
    fn state_key_nid(&self, kind: &EventType, state_key: &str) -> Option<StateKeyNid>;

    /// Calls `f` with the auth events of `nid` and returns true, or returns false if the
    /// provider does not have the event. Walking the auth chains of a large unconflicted state
    /// needs nothing else of its events: a provider that keeps these edges apart from whole
    /// events (far smaller, so far more of them stay cached) can answer without loading any.
    fn with_auth_events(&self, nid: EventNid, f: &mut dyn FnMut(&[EventNid])) -> bool {
        self.event(nid).map(|e| f(&e.auth_events)).is_some()
    }
}
