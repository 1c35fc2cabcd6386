//! Step 5b: the event against the state before it. That state is the state after its one prev
//! event, or the resolution of the states after several (resolved ahead of the write by
//! [`super::prepare`] when the room did not move meanwhile), or what the sending server reported
//! when the gap before it could not be filled ([`super::prev_events`]).

use std::sync::Arc;

use tandem_state_res::{AuthEvent, EventType, authorize};

use crate::error::{Error, Result};
use crate::inbound::prepare::Prepared;
use crate::rooms::Room;
use crate::rooms::state::StateMap;
use crate::server::{Homeserver, Txn};

impl Homeserver {
    /// The state before an event with `prevs`, and its group when it is one already stored
    /// (the state after its only prev event). `given` is the state another server reported.
    pub(crate) fn state_before_in(
        &self,
        txn: &Txn,
        room: &Room,
        prevs: &[String],
        given: Option<StateMap>,
        prepared: &Prepared,
    ) -> Result<(Option<u64>, Arc<StateMap>)> {
        if let Some(map) = given {
            return Ok((None, Arc::new(map)));
        }
        let Some(groups) = self.prev_groups(prevs)? else {
            let id = self.events_without_state(prevs)?.join(", ");
            return Err(Error::not_found(format!("prev event {id} is unknown")));
        };
        Ok(match groups.as_slice() {
            [only] => (Some(*only), room.group_map(self, *only)?),
            _ => match prepared.before(&groups) {
                Some(map) => (None, map),
                None => {
                    let maps: Vec<_> = groups.iter().map(|g| room.group_map(self, *g)).collect::<Result<_>>()?;
                    (None, Arc::new(self.resolve_states(room, &txn.nids, &maps)?))
                }
            },
        })
    }

    /// The spec's check against the state before the event: `Some(reason)` if rejected.
    pub(crate) fn check_against_state_before(
        &self,
        txn: &Txn,
        room: &Room,
        event: &AuthEvent,
        before: &StateMap,
    ) -> Option<String> {
        let lookup = |kind: &EventType, state_key: &str| {
            let id = self.state_id_pending(Some(&txn.nids), before, kind.as_str(), state_key).ok()??;
            room.auth_event(self, &id).ok()
        };
        authorize(&room.version, event, &lookup).err().map(|r| r.0.to_owned())
    }
}
