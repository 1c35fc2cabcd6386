//! Events other servers send, from their transaction to the room: the spec's "Checks performed
//! on receipt of a PDU", one module per step, in the order they run.
//!
//! 1. [`format`]: a well-formed event of a room this server is in, of a version it supports,
//!    from a server the room's ACL ([`acl`]) admits;
//! 2. [`signatures`]: signed by every server that must sign it, its content hash matching (else
//!    it is kept redacted);
//! 3. [`auth_events`]: its auth events fetched when missing, and the event checked against them;
//! 4. [`prev_events`]: the gap before it filled (missing prev events fetched, or the state
//!    before it as its sender reports it);
//! 5. [`state_before`]: checked against the state before it (forks resolved, ahead of the
//!    write by [`prepare`]);
//! 6. [`soft_fail`]: checked against the room's current state;
//! 7. [`persist`]: stored with its place in the graph; the room's state follows its forward
//!    extremities.
//!
//! [`transaction`] takes a whole transaction: rooms in parallel, each room's PDUs in order, one
//! transaction per origin at a time, then the EDUs ([`edus`]). [`budget`] bounds what one PDU
//! and one transaction may cost: requests to other servers, events verified, time.

pub mod acl;
pub(crate) mod auth_events;
pub(crate) mod budget;
pub mod edus;
pub(crate) mod format;
pub(crate) mod persist;
pub(crate) mod prepare;
pub(crate) mod prev_events;
pub mod signatures;
pub(crate) mod soft_fail;
pub(crate) mod state_before;
pub mod transaction;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tandem_state_res::{AuthEvent, EventType};

use crate::error::{Error, Result};
use crate::rooms::Room;
use crate::rooms::nids::Pending;
use crate::server::{Homeserver, lock};
use budget::Budget;

/// A PDU whose signatures and hashes have been checked (and which was redacted if its content
/// hash did not match), with its event id.
#[derive(Clone, Debug)]
pub struct Pdu {
    pub event_id: String,
    pub json: Value,
}

/// What became of a received PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    Accepted,
    /// Stored and part of the graph, but not shown: the current state does not allow it.
    SoftFailed,
    Rejected(String),
    AlreadyKnown,
}

/// The event ids a PDU lists under `field` (`prev_events`, `auth_events`).
pub fn event_ids(pdu: &Value, field: &str) -> Vec<String> {
    pdu.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().or_else(|| item.get(0).and_then(Value::as_str)).map(str::to_owned))
        .collect()
}

/// The event as the authorization rules see it, refused if it is not of `room`.
pub(crate) fn parse(hs: &Homeserver, pending: Option<&Pending>, room: &Room, pdu: &Pdu) -> Result<AuthEvent> {
    let event = AuthEvent::from_json(&room.version, &pdu.event_id, &pdu.json, hs.nid_of(pending))
        .map_err(|e| Error::bad_json(e.to_string()))?;
    let in_room = match event.room_id.as_deref() {
        Some(r) => r == room.id,
        // v12 create events carry no room id: theirs is derived from their own id.
        None => event.is(&EventType::Create) && room.id.get(1..) == pdu.event_id.get(1..),
    };
    if !in_room {
        return Err(Error::bad_json(format!("event {} is not in room {}", pdu.event_id, room.id)));
    }
    Ok(event)
}

/// The pipeline's own state: who waits for whom.
#[derive(Default)]
pub(crate) struct Inbound {
    /// One room's graph changed by one receipt at a time ([`Homeserver::room_lock`]).
    rooms: Locks,
    /// One inbound transaction per origin at a time (as Synapse): a server flooding us with
    /// parallel transactions gets no more of our time than one sending them in turn.
    origins: Locks,
}

/// Async locks by name, made on first use; unused ones are dropped once there are many.
#[derive(Default)]
pub(crate) struct Locks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    pub(crate) fn get(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.0);
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(name.to_owned()).or_default().clone()
    }
}

impl Homeserver {
    /// Those of `ids` this server holds no event for.
    pub fn missing_events(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in ids {
            if self.event_meta(id)?.is_none() {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    /// Those of `ids` whose state this server does not know: missing, or held only as outliers.
    pub fn events_without_state(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in ids {
            if self.event_meta(id)?.is_none_or(|m| m.outlier) {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    /// Held while a room's graph changes by what another server sent or answered (a received
    /// PDU with the gap before it, a join's state, an invite coming back): one at a time per
    /// room, so that a gap is fetched once.
    pub(crate) fn room_lock(&self, room_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.inbound.rooms.get(room_id)
    }

    /// One PDU `origin` sent: every step of the pipeline, within `budget`. Its event id (once
    /// known) and what became of it; a refusal is an error of this PDU, not of its transaction.
    pub(crate) async fn receive_from(
        self: &Arc<Self>,
        origin: &str,
        pdu: Value,
        budget: &Budget,
    ) -> (Option<String>, Result<Received>) {
        let target = match self.pdu_target(origin, &pdu).await {
            Ok(target) => target,
            Err(e) => return (None, Err(e)),
        };
        let format = match format::check(&target.rules, &pdu) {
            Ok(format) => format,
            Err(e) => return (None, Err(e)),
        };
        let event_id = format.event_id.clone();
        if !target.acl_admits {
            let e = Error::forbidden(format!("{origin} is banned from this room by its server ACL"));
            return (Some(event_id), Err(e));
        }
        let pdu = match self.verify_format(&target.rules, format).await {
            Ok(pdu) => pdu,
            Err(e) => return (Some(event_id), Err(Error::forbidden(e))),
        };
        let room_lock = self.room_lock(&target.room_id);
        let _turn = room_lock.lock().await;
        let received = self.take_verified(origin, &target, pdu, true, budget).await;
        (Some(event_id), received)
    }

    /// Steps 3 to 7 for a verified PDU: its missing auth events, the gap before it, then the
    /// room's checks and the write. `fill_gap` is false for the events fetched to fill a gap,
    /// so that a gap never recurses.
    async fn take_verified(
        self: &Arc<Self>,
        origin: &str,
        target: &format::Target,
        pdu: Pdu,
        fill_gap: bool,
        budget: &Budget,
    ) -> Result<Received> {
        let room_id = target.room_id.clone();
        let (auth_ids, prevs) = (event_ids(&pdu.json, "auth_events"), event_ids(&pdu.json, "prev_events"));
        let p = prevs.clone();
        let (missing_auth, mut gaps) =
            self.blocking(move |hs| Ok((hs.missing_events(&auth_ids)?, hs.events_without_state(&p)?))).await?;
        if !missing_auth.is_empty() {
            self.fetch_auth_chain(origin, &room_id, &target.rules, &pdu.event_id, budget).await?;
        }
        if !gaps.is_empty() && fill_gap {
            self.fill_gap(origin, target, &pdu.event_id, budget).await;
            let p = prevs.clone();
            gaps = self.blocking(move |hs| hs.events_without_state(&p)).await?;
        }
        let state_before = if gaps.is_empty() {
            None
        } else {
            Some(self.state_before_from(origin, &room_id, &target.rules, &prevs, &gaps, budget).await?)
        };
        self.blocking(move |hs| hs.receive_pdu(&room_id, &pdu, state_before)).await
    }
}
