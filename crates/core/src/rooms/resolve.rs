//! Merging forks: the state of a room whose graph has several forward extremities, or of an
//! event with several `prev_events`, by `tandem_state_res`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use tandem_state_res::{MemoryStore, StringStateMap, resolve_strings};

use super::Room;
use super::state::StateMap;
use crate::error::{Error, Result};
use crate::server::Homeserver;

impl Homeserver {
    /// The resolved state of `maps`, each the state of one fork.
    pub(crate) fn resolve_states(&self, room: &Room, maps: &[Arc<StateMap>]) -> Result<StateMap> {
        match maps {
            [] => return Ok(StateMap::new()),
            [only] => return Ok((**only).clone()),
            [first, rest @ ..] if rest.iter().all(|m| m == first) => return Ok((**first).clone()),
            _ => {}
        }
        // Every event of every fork's state and of its auth chain, so that resolution can walk
        // the chains itself. Rooms keep these sets small next to their timelines; a persisted
        // auth chain index is the step after this one for very large rooms.
        let mut store = MemoryStore::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<String> = maps.iter().flat_map(|m| m.values().cloned()).collect();
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(pdu) = room.pdu_json(self, &id)? else { continue };
            if let Some(auth) = pdu.get("auth_events").and_then(Value::as_array) {
                stack.extend(auth.iter().filter_map(|a| a.as_str().map(str::to_owned)));
            }
            let nid = store
                .insert_json(&room.version, &id, &pdu)
                .map_err(|e| Error::internal(format!("stored event {id}: {e}")))?;
            if room.auth_event(self, &id)?.rejected {
                store.set_rejected(nid, true);
            }
        }
        let string_maps: Vec<StringStateMap> =
            maps.iter().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).collect();
        let refs: Vec<&StringStateMap> = string_maps.iter().collect();
        let resolved = resolve_strings(&room.version, &refs, None, &store)
            .map_err(|e| Error::internal(format!("state resolution in {}: {e}", room.id)))?;
        Ok(resolved.into_iter().collect())
    }
}
