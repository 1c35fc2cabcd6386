//! Step 6: the event against the room's current state. An event its own auth events and the
//! state before it allow, but the current state does not (a ban since, a power level lowered),
//! is soft-failed: stored and part of the graph, so that the room's state stays the same on
//! every server, but never shown to clients nor sent on, and never a forward extremity.

use tandem_state_res::{AuthEvent, EventType, authorize};

use crate::rooms::Room;
use crate::server::Homeserver;

impl Homeserver {
    /// Whether the room's current state refuses an event the state before it allowed.
    pub(crate) fn soft_fails(&self, room: &Room, event: &AuthEvent) -> bool {
        // A room joined just now has no current state yet to hold the event against.
        if room.info.state_group == 0 {
            return false;
        }
        let current = |kind: &EventType, state_key: &str| room.state_event(self, kind.as_str(), state_key).ok()?;
        authorize(&room.version, event, &current).is_err()
    }
}
