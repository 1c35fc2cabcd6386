//! Room state at each event, as state groups: a group is a delta over its parent group, and
//! every `MAX_DELTA_DEPTH` deltas a full snapshot, so a large room does not copy its whole
//! state per event and no read walks a long chain. Group 0 is the empty state.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Room;
use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn, lock};
use crate::tables::{STATE_GROUPS, key_pos};

/// `(type, state_key) → event_id`.
pub type StateMap = BTreeMap<(String, String), String>;

const MAX_DELTA_DEPTH: u32 = 32;

#[derive(Serialize, Deserialize)]
pub(crate) struct Group {
    /// `None`: `delta` is the whole state.
    parent: Option<u64>,
    delta: Vec<(String, String, String)>,
}

fn group_key(id: u64) -> Vec<u8> {
    key_pos(&[], id)
}

impl Homeserver {
    /// The full state of a group.
    pub fn state_map(&self, group: u64) -> Result<Arc<StateMap>> {
        if group == 0 {
            return Ok(Arc::default());
        }
        if let Some(map) = lock(&self.group_cache).get(&group) {
            return Ok(map.clone());
        }
        let stored: Group = self
            .get_json(STATE_GROUPS, &group_key(group))?
            .ok_or_else(|| Error::internal(format!("missing state group {group}")))?;
        let mut map = match stored.parent {
            Some(parent) => (*self.state_map(parent)?).clone(),
            None => StateMap::new(),
        };
        for (kind, state_key, event_id) in stored.delta {
            map.insert((kind, state_key), event_id);
        }
        let map = Arc::new(map);
        let mut cache = lock(&self.group_cache);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(group, map.clone());
        Ok(map)
    }

    /// The state before an event (`after == false`) or after it.
    pub fn state_at_event(&self, event_id: &str, after: bool) -> Result<Arc<StateMap>> {
        let meta = self.event_meta(event_id)?.ok_or_else(|| Error::not_found("Unknown event"))?;
        self.state_map(if after { meta.after } else { meta.before })
    }
}

impl Room {
    fn group_map(&self, hs: &Homeserver, group: u64) -> Result<Arc<StateMap>> {
        match self.pending_groups.get(&group) {
            Some(map) => Ok(map.clone()),
            None => hs.state_map(group),
        }
    }

    /// Records the room's state after `event_id` replaces `(kind, state_key)`: a new group
    /// becomes the room's current group.
    pub(crate) fn push_state(
        &mut self,
        hs: &Homeserver,
        txn: &mut Txn,
        kind: &str,
        state_key: &str,
        event_id: &str,
    ) -> Result<u64> {
        let parent = self.info.state_group;
        let mut full = (*self.group_map(hs, parent)?).clone();
        full.insert((kind.to_owned(), state_key.to_owned()), event_id.to_owned());
        let id = txn.new_group();
        let group = if parent == 0 || self.info.group_depth >= MAX_DELTA_DEPTH {
            self.info.group_depth = 0;
            Group { parent: None, delta: full.iter().map(|((t, k), e)| (t.clone(), k.clone(), e.clone())).collect() }
        } else {
            self.info.group_depth += 1;
            Group { parent: Some(parent), delta: vec![(kind.to_owned(), state_key.to_owned(), event_id.to_owned())] }
        };
        txn.put_json(STATE_GROUPS, group_key(id), &group);
        self.pending_groups.insert(id, Arc::new(full));
        self.changed_state.insert((kind.to_owned(), state_key.to_owned()), event_id.to_owned());
        self.info.state_group = id;
        Ok(id)
    }
}
