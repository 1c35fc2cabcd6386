//! Rules 2 and 3: the event's `auth_events` list itself.

use super::{Rejection, auth_types_for_event};
use crate::RoomVersion;
use crate::event::{AuthEvent, EventType};

/// Checks the `auth_events` an event cites: no duplicates, only what auth events selection
/// allows, none rejected, all in the same room, the create event among them (v1–v11); and for
/// v12 that the room id is the id of `room_create`, the accepted create event it names.
pub fn check_auth_events(
    v: &RoomVersion,
    event: &AuthEvent,
    auth_events: &[&AuthEvent],
    room_create: Option<&AuthEvent>,
) -> Result<(), Rejection> {
    if event.kind == EventType::Create {
        return if auth_events.is_empty() { Ok(()) } else { Err(Rejection("m.room.create has auth_events")) };
    }
    // v12 rule 2.
    if v.room_id_is_create_event_id {
        let create = room_create.ok_or(Rejection("the room's m.room.create is unknown"))?;
        let expected = create.event_id.strip_prefix('$');
        let actual = event.room_id.as_deref().and_then(|r| r.strip_prefix('!'));
        if !create.is(&EventType::Create) || create.rejected || expected.is_none() || expected != actual {
            return Err(Rejection("room_id is not the id of an accepted m.room.create"));
        }
    }
    let allowed = auth_types_for_event(v, event);
    let mut seen: Vec<(&EventType, &str)> = Vec::with_capacity(auth_events.len());
    for auth in auth_events {
        let key = (&auth.kind, auth.state_key().unwrap_or_default());
        // 3.1
        if seen.contains(&key) {
            return Err(Rejection("auth_events has two events for one (type, state_key)"));
        }
        seen.push(key);
        // 3.2
        if auth.state_key.is_none() || !allowed.iter().any(|(k, sk)| k == key.0 && &**sk == key.1) {
            return Err(Rejection("auth_events has an event auth events selection does not pick"));
        }
        // 3.3
        if auth.rejected {
            return Err(Rejection("auth_events has a rejected event"));
        }
        // 3.5
        if auth.room_id != event.room_id {
            return Err(Rejection("auth_events has an event of another room"));
        }
    }
    // 3.4 (v1–v11)
    if !v.room_id_is_create_event_id && !auth_events.iter().any(|a| a.is(&EventType::Create)) {
        return Err(Rejection("auth_events has no m.room.create"));
    }
    Ok(())
}
