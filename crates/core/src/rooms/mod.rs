//! Rooms: what is stored about each room and event, and the in-memory view of one room that a
//! write works on. Events are made in [`build`], rooms in [`create`], memberships changed in
//! [`membership`], and read back for clients in [`read`], [`messages`] and [`relations`].

pub mod backfill;
pub mod build;
pub mod create;
pub mod handshake;
pub mod history;
pub(crate) mod levels;
pub mod membership;
pub mod messages;
pub(crate) mod nids;
mod outliers;
pub mod read;
pub mod relations;
pub mod remote;
pub(crate) mod render;
mod resolve;
pub mod send;
pub mod state;
pub mod timestamp;
pub mod upgrade;

use std::collections::HashMap;
use std::sync::Arc;

use ruma::room_version_rules::RoomVersionRules;
use serde::{Deserialize, Serialize};
use tandem_state_res::{AuthEvent, Power, RoomVersion};

use crate::error::{Error, Result};
use crate::server::{Homeserver, Txn, lock};
use crate::tables::{self, events};

/// The room versions this server creates and joins.
pub const SUPPORTED_VERSIONS: &[&str] = &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];
pub const DEFAULT_VERSION: &str = "12";

/// What is stored about a room.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomInfo {
    pub version: String,
    pub create_event: String,
    /// The forward extremities: the next local event's `prev_events`.
    pub extremities: Vec<String>,
    pub depth: i64,
    /// The stream position of the room's latest event.
    pub last_pos: u64,
    /// The state after the latest event.
    pub state_group: u64,
    /// How many deltas lie between `state_group` and a full snapshot.
    #[serde(default)]
    pub group_depth: u32,
    /// The stream position of the room's latest receipt, so that a sync can skip a room
    /// without reading its receipts.
    #[serde(default)]
    pub last_receipt_pos: u64,
}

impl RoomInfo {
    /// A room with no events yet.
    pub fn new(version: &str, create_event: &str) -> Self {
        RoomInfo {
            version: version.to_owned(),
            create_event: create_event.to_owned(),
            extremities: Vec::new(),
            depth: 0,
            last_pos: 0,
            state_group: 0,
            group_depth: 0,
            last_receipt_pos: 0,
        }
    }
}

/// What is stored about an event beside its PDU.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventMeta {
    pub room_id: String,
    pub pos: u64,
    /// The state before and after the event (state groups; 0 is the empty state).
    pub before: u64,
    pub after: u64,
    /// For a state event: the event it replaced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_state: Option<String>,
    /// The device and transaction id of a local client's send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_id: Option<String>,
    /// The redaction that applies to this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_by: Option<String>,
    /// Some event relates to this one (so reads look for bundled aggregations).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub related: bool,
    /// Stored without a place in the room's graph: an auth or state event fetched from another
    /// server. It has no timeline position and no state of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outlier: bool,
    /// Why the authorization rules rejected this event on receipt; a rejected event is never
    /// shown, never used as an auth event, and never part of any state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// Allowed by the state before it but not by the room's current state when it arrived: kept
    /// in the graph, not shown to clients, not a forward extremity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft_failed: bool,
    /// History from before this server joined, got by `/backfill`: in the room's backfill
    /// region (not its timeline, so no sync ever shows it as new), with the state this server
    /// first knew of the room standing in for the state at it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfilled: bool,
}

/// One of a user's rooms.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MembershipRow {
    pub membership: String,
    pub event_id: String,
    pub pos: u64,
    #[serde(default)]
    pub forgotten: bool,
}

/// A room during one write: its stored info plus what this write has changed so far.
pub(crate) struct Room {
    pub id: String,
    pub info: RoomInfo,
    pub version: RoomVersion,
    pub rules: RoomVersionRules,
    changed_state: HashMap<(String, String), String>,
    pub(crate) pending_events: HashMap<String, Arc<AuthEvent>>,
    pending_groups: HashMap<u64, Arc<state::StateMap>>,
    /// Groups this write made by one state event over a parent: `group → (parent, type,
    /// state_key, event_id)`, so what follows from the parent's can be derived from it.
    pending_steps: HashMap<u64, (u64, String, String, String)>,
}

pub(crate) fn version_rules(version: &str) -> Result<(RoomVersion, RoomVersionRules)> {
    let unsupported = || {
        Error::new(
            crate::ErrorKind::UnsupportedRoomVersion,
            format!("Your homeserver does not support room version {version}"),
        )
    };
    let v = RoomVersion::known(version).ok_or_else(unsupported)?;
    let rules = ruma::RoomVersionId::try_from(version).ok().and_then(|id| id.rules()).ok_or_else(unsupported)?;
    Ok((v, rules))
}

impl Room {
    pub fn new(id: String, info: RoomInfo) -> Result<Self> {
        let (version, rules) = version_rules(&info.version)?;
        Ok(Room {
            id,
            info,
            version,
            rules,
            changed_state: HashMap::new(),
            pending_events: HashMap::new(),
            pending_groups: HashMap::new(),
            pending_steps: HashMap::new(),
        })
    }

    /// The event id at `(kind, state_key)` in the current state.
    pub fn state_id(&self, hs: &Homeserver, kind: &str, state_key: &str) -> Result<Option<String>> {
        if let Some(id) = self.changed_state.get(&(kind.to_owned(), state_key.to_owned())) {
            return Ok(Some(id.clone()));
        }
        tables::rooms::current(&hs.db, &self.id, kind, state_key)
    }

    pub fn state_event(&self, hs: &Homeserver, kind: &str, state_key: &str) -> Result<Option<Arc<AuthEvent>>> {
        match self.state_id(hs, kind, state_key)? {
            Some(id) => self.auth_event(hs, &id).map(Some),
            None => Ok(None),
        }
    }

    pub fn auth_event(&self, hs: &Homeserver, event_id: &str) -> Result<Arc<AuthEvent>> {
        if let Some(e) = self.pending_events.get(event_id) {
            return Ok(e.clone());
        }
        hs.auth_event(&self.version, event_id)
    }

    /// Whether this server holds the event (stored, or staged by this write).
    pub fn has_event(&self, hs: &Homeserver, event_id: &str) -> Result<bool> {
        Ok(self.pending_events.contains_key(event_id) || hs.event_meta(event_id)?.is_some())
    }

    /// Makes an event staged by this write visible to the rest of it, with its nid. Its auth
    /// events' nids were looked up when it was parsed or drafted, within this write (they are
    /// held before it, or it is rejected).
    pub(crate) fn add_pending(&mut self, hs: &Homeserver, txn: &mut Txn, mut event: AuthEvent) -> Result<()> {
        event.nid = txn.event_nid(hs, &event.event_id)?;
        events::put_auth_edges(&mut txn.batch, event.nid, &event.auth_events);
        self.pending_events.insert(event.event_id.to_string(), Arc::new(event));
        Ok(())
    }

    pub fn membership(&self, hs: &Homeserver, user_id: &str) -> Result<Option<String>> {
        Ok(self.state_event(hs, "m.room.member", user_id)?.and_then(|e| e.membership()).map(|m| m.as_str().to_owned()))
    }

    /// A user's power level, and the level needed to send `kind` (state or not).
    pub fn power(&self, hs: &Homeserver, user_id: &str) -> Result<Power> {
        let create = self.state_event(hs, "m.room.create", "")?;
        let pl = self.state_event(hs, "m.room.power_levels", "")?;
        Ok(tandem_state_res::user_power(
            &self.version,
            create.as_deref(),
            pl.as_deref().and_then(|e| e.power_levels()),
            user_id,
        ))
    }

    pub fn required_power(
        &self,
        hs: &Homeserver,
        pick: impl Fn(&tandem_state_res::PowerLevels) -> Power,
        default: Power,
    ) -> Result<Power> {
        let pl = self.state_event(hs, "m.room.power_levels", "")?;
        Ok(pl.as_deref().and_then(|e| e.power_levels()).map_or(default, pick))
    }
}

impl Txn {
    /// Stores a PDU, giving its event a nid and, for a state event, its `(type, state_key)`:
    /// whatever state or auth chain names it later, resolution reaches it by nid.
    pub(crate) fn store_pdu(
        &mut self,
        hs: &Homeserver,
        event_id: &str,
        state_key: Option<(&str, &str)>,
        pdu: Vec<u8>,
    ) -> Result<()> {
        self.event_nid(hs, event_id)?;
        if let Some((kind, state_key)) = state_key {
            self.key_nid(hs, kind, state_key)?;
        }
        events::put_pdu(&mut self.batch, event_id, pdu);
        Ok(())
    }
}

impl Homeserver {
    /// Loads a room for a write. `Ok(None)` if this server does not know it.
    pub(crate) fn load_room(&self, room_id: &str) -> Result<Option<Room>> {
        let Some(info) = self.room_info(room_id)? else { return Ok(None) };
        Room::new(room_id.to_owned(), info).map(Some)
    }

    pub(crate) fn room(&self, room_id: &str) -> Result<Room> {
        self.load_room(room_id)?.ok_or_else(|| Error::not_found(format!("Unknown room {room_id}")))
    }

    pub fn room_info(&self, room_id: &str) -> Result<Option<RoomInfo>> {
        tables::rooms::info(&self.db, room_id)
    }

    pub fn room_version(&self, room_id: &str) -> Result<String> {
        if let Some(v) = lock(&self.versions).get(room_id) {
            return Ok(v.clone());
        }
        let version = self.room_info(room_id)?.ok_or_else(|| Error::not_found("Unknown room"))?.version;
        let mut versions = lock(&self.versions);
        if versions.len() > 100_000 {
            versions.clear();
        }
        versions.insert(room_id.to_owned(), version.clone());
        Ok(version)
    }

    pub fn event_meta(&self, event_id: &str) -> Result<Option<EventMeta>> {
        events::meta(&self.db, event_id)
    }

    /// The stored PDU of an event.
    pub fn pdu(&self, event_id: &str) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        match self.pdu_bytes(event_id)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The stored PDU of an event, its JSON as stored.
    pub(crate) fn pdu_bytes(&self, event_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(events::pdu(&self.db, event_id)?)
    }

    /// The authorization view of a stored event, cached.
    pub(crate) fn auth_event(&self, version: &RoomVersion, event_id: &str) -> Result<Arc<AuthEvent>> {
        if let Some(e) = lock(&self.auth_cache).get(event_id) {
            return Ok(e.clone());
        }
        let pdu: serde_json::Value = self
            .pdu_bytes(event_id)?
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()?
            .ok_or_else(|| Error::internal(format!("missing event {event_id}")))?;
        // Every stored event has a nid (given when its PDU was stored), and so do the auth
        // events it cites: resolution walks chains by these.
        let nid_of = self.nid_of(None);
        let mut event = AuthEvent::from_json(version, event_id, &pdu, &nid_of)
            .map_err(|e| Error::internal(format!("stored event {event_id}: {e}")))?;
        event.nid = nid_of(event_id);
        event.rejected = self.event_meta(event_id)?.is_some_and(|m| m.rejected.is_some());
        if event.nid != nids::UNKNOWN_EVENT {
            lock(&self.auth_edges).put(event.nid, event.auth_events.clone());
        }
        let event = Arc::new(event);
        lock(&self.auth_cache).put(event_id.to_owned(), event.clone());
        Ok(event)
    }

    /// The rooms a user is in, was invited to, knocked on or left, with the membership.
    pub fn memberships(&self, user_id: &str) -> Result<Vec<(String, MembershipRow)>> {
        tables::rooms::memberships(&self.db, user_id)
    }

    pub fn membership_of(&self, user_id: &str, room_id: &str) -> Result<Option<MembershipRow>> {
        tables::rooms::membership(&self.db, user_id, room_id)
    }

    pub fn joined_rooms(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(self.memberships(user_id)?.into_iter().filter(|(_, r)| r.membership == "join").map(|(id, _)| id).collect())
    }

    /// The current state event id at `(kind, state_key)`.
    pub fn current_state_id(&self, room_id: &str, kind: &str, state_key: &str) -> Result<Option<String>> {
        tables::rooms::current(&self.db, room_id, kind, state_key)
    }

    /// The current membership of `user_id` in the room, from its state.
    pub fn current_membership(&self, room_id: &str, user_id: &str) -> Result<Option<String>> {
        let Some(id) = self.current_state_id(room_id, "m.room.member", user_id)? else { return Ok(None) };
        let version = self.room_version(room_id)?;
        let (v, _) = version_rules(&version)?;
        Ok(self.auth_event(&v, &id)?.membership().map(|m| m.as_str().to_owned()))
    }
}
