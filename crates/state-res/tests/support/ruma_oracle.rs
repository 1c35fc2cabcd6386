//! ruma's `state-res`, the oracle: the same events and state sets resolved by ruma.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::state_res::{self, Event, utils::event_id_set::EventIdSet};
use ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId,
};
use serde_json::Value;
use serde_json::value::RawValue;

pub type RumaStateMap = state_res::StateMap<OwnedEventId>;

#[derive(Clone)]
pub struct Pdu {
    event_id: OwnedEventId,
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    ts: MilliSecondsSinceUnixEpoch,
    kind: TimelineEventType,
    content: Box<RawValue>,
    state_key: Option<String>,
    prev_events: Vec<OwnedEventId>,
    auth_events: Vec<OwnedEventId>,
}

impl Pdu {
    pub fn from_json(v: &Value) -> Pdu {
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let ids = |k: &str| -> Vec<OwnedEventId> {
            v[k].as_array().unwrap().iter().map(|i| EventId::parse(i.as_str().unwrap()).unwrap()).collect()
        };
        Pdu {
            event_id: EventId::parse(s("event_id")).unwrap(),
            room_id: v["room_id"].as_str().map(|r| RoomId::parse(r).unwrap()),
            sender: UserId::parse(s("sender")).unwrap(),
            ts: MilliSecondsSinceUnixEpoch(ruma::UInt::new(v["origin_server_ts"].as_u64().unwrap()).unwrap()),
            kind: s("type").into(),
            content: RawValue::from_string(v["content"].to_string()).unwrap(),
            state_key: v["state_key"].as_str().map(Into::into),
            prev_events: ids("prev_events"),
            auth_events: ids("auth_events"),
        }
    }
}

impl Event for Pdu {
    type Id = OwnedEventId;
    fn event_id(&self) -> &OwnedEventId {
        &self.event_id
    }
    fn room_id(&self) -> Option<&RoomId> {
        self.room_id.as_deref()
    }
    fn sender(&self) -> &UserId {
        &self.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }
    fn content(&self) -> &RawValue {
        &self.content
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.prev_events.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.auth_events.iter())
    }
    fn redacts(&self) -> Option<&OwnedEventId> {
        None
    }
    fn rejected(&self) -> bool {
        false
    }
}

/// The events of one room, as ruma reads them.
#[derive(Default, Clone)]
pub struct RumaRoom {
    pub pdus: HashMap<OwnedEventId, Arc<Pdu>>,
}

impl RumaRoom {
    pub fn add(&mut self, v: &Value) {
        let pdu = Pdu::from_json(v);
        self.pdus.insert(pdu.event_id.clone(), Arc::new(pdu));
    }

    fn rules(version: &str) -> ruma::room_version_rules::RoomVersionRules {
        RoomVersionId::try_from(version).unwrap().rules().unwrap()
    }

    pub fn to_ruma(map: &HashMap<(String, String), String>) -> RumaStateMap {
        map.iter()
            .map(|((t, sk), id)| ((StateEventType::from(t.as_str()), sk.clone()), EventId::parse(id).unwrap()))
            .collect()
    }

    pub fn from_ruma(map: &RumaStateMap) -> HashMap<(String, String), String> {
        map.iter().map(|((t, sk), id)| ((t.to_string(), sk.clone()), id.to_string())).collect()
    }

    /// Every event reachable from the set's events through `auth_events`, the events included
    /// (the auth chain as Synapse computes it for the auth difference).
    pub fn full_auth_chain(&self, set: &RumaStateMap) -> HashSet<OwnedEventId> {
        let mut seen = HashSet::new();
        let mut stack: Vec<OwnedEventId> = set.values().cloned().collect();
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone())
                && let Some(p) = self.pdus.get(&id)
            {
                stack.extend(p.auth_events.iter().cloned());
            }
        }
        seen
    }

    /// Strict ancestors of an event through `auth_events`.
    fn ancestors(&self, id: &OwnedEventId) -> HashSet<OwnedEventId> {
        let mut seen = HashSet::new();
        let mut stack: Vec<OwnedEventId> = self.pdus.get(id).map(|p| p.auth_events.clone()).unwrap_or_default();
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone())
                && let Some(p) = self.pdus.get(&id)
            {
                stack.extend(p.auth_events.iter().cloned());
            }
        }
        seen
    }

    /// The conflicted state subgraph by its definition: x lies on an `auth_events` path of at
    /// least one step from one conflicted event to another.
    pub fn conflicted_subgraph(&self, conflicted: &HashSet<OwnedEventId>) -> HashSet<OwnedEventId> {
        let anc: HashMap<&OwnedEventId, HashSet<OwnedEventId>> =
            conflicted.iter().map(|c| (c, self.ancestors(c))).collect();
        let below: HashSet<&OwnedEventId> = anc.values().flatten().collect();
        let mut out = HashSet::new();
        for x in below.iter().copied().chain(conflicted.iter()) {
            let x_anc = self.ancestors(x);
            let reaches = x_anc.iter().any(|a| conflicted.contains(a));
            let is_c = conflicted.contains(x);
            let is_below = below.contains(x);
            if (is_below && is_c) || ((is_below || is_c) && reaches) {
                out.insert(x.clone());
            }
        }
        out
    }

    pub fn resolve(
        &self,
        version: &str,
        sets: &[HashMap<(String, String), String>],
    ) -> Result<HashMap<(String, String), String>, String> {
        let rules = Self::rules(version);
        let sets: Vec<RumaStateMap> = sets.iter().map(Self::to_ruma).collect();
        let chains: Vec<EventIdSet<OwnedEventId>> =
            sets.iter().map(|s| self.full_auth_chain(s).into_iter().collect()).collect();
        let resolved = state_res::resolve(
            &rules.authorization,
            rules.state_res.v2_rules().unwrap(),
            &sets,
            chains,
            |id| self.pdus.get(id).cloned(),
            |conflicted| {
                let c: HashSet<OwnedEventId> = conflicted.values().flatten().cloned().collect();
                Some(self.conflicted_subgraph(&c).into_iter().collect())
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Self::from_ruma(&resolved))
    }

    /// ruma's verdict on an event (not a create event) against a state.
    pub fn allows(&self, version: &str, event: &Value, state: &HashMap<(String, String), String>) -> bool {
        let rules = Self::rules(version);
        let pdu = Pdu::from_json(event);
        state_res::check_state_dependent_auth_rules(&rules.authorization, &pdu, |t, sk| {
            let id = state.get(&(t.to_string(), sk.to_owned()))?;
            self.pdus.get(id.as_str()).cloned()
        })
        .is_ok()
    }
}
