//! Step 4: the event against its own `auth_events`. Those this server lacks are fetched first,
//! with the rest of the event's auth chain (`/event_auth`), from the server that sent it; each
//! fetched event is verified and stored as an outlier, itself checked against its own auth
//! events.

use std::sync::Arc;

use ruma::room_version_rules::RoomVersionRules;
use serde_json::Value;
use tandem_state_res::{AuthEvent, EventType, authorize, check_auth_events};

use super::budget::Budget;
use super::event_ids;
use crate::error::{Error, Result};
use crate::network::Request;
use crate::rooms::Room;
use crate::server::Homeserver;

/// The most events taken from one `/event_auth`, `/state` or `/state_ids` answer: far more than
/// any room's auth chain or state this server can hold today, far less than an answer of junk.
pub const MAX_FETCHED_EVENTS: usize = 50_000;

impl Homeserver {
    /// Fetches the auth chain of an event from `origin` and stores what we lack as outliers.
    pub(crate) async fn fetch_auth_chain(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        event_id: &str,
        budget: &Budget,
    ) -> Result<()> {
        let request = Request::EventAuth { room_id: room_id.to_owned(), event_id: event_id.to_owned() };
        let answer = self.fetch(budget, origin, request).await?;
        let pdus = self.verify_list(rules, answer.get("auth_chain"), MAX_FETCHED_EVENTS, budget).await;
        let room = room_id.to_owned();
        self.blocking(move |hs| hs.store_outliers(&room, &pdus)).await
    }

    /// The spec's check against the event's own `auth_events`: `Some(reason)` if rejected.
    pub(crate) fn check_against_auth_events(
        &self,
        room: &Room,
        event: &AuthEvent,
        pdu: &Value,
    ) -> Result<Option<String>> {
        let mut auth = Vec::new();
        for id in event_ids(pdu, "auth_events") {
            if !room.has_event(self, &id)? {
                return Err(Error::not_found(format!("auth event {id} is unknown")));
            }
            auth.push(room.auth_event(self, &id)?);
        }
        let create = if room.version.room_id_is_create_event_id && !event.is(&EventType::Create) {
            Some(room.auth_event(self, &room.info.create_event)?)
        } else {
            auth.iter().find(|e| e.is(&EventType::Create)).cloned()
        };
        let refs: Vec<&AuthEvent> = auth.iter().map(Arc::as_ref).collect();
        if let Err(r) = check_auth_events(&room.version, event, &refs, create.as_deref()) {
            return Ok(Some(r.0.to_owned()));
        }
        let lookup = |kind: &EventType, state_key: &str| {
            if *kind == EventType::Create {
                return create.clone();
            }
            auth.iter().find(|e| e.kind == *kind && e.state_key() == Some(state_key)).cloned()
        };
        Ok(authorize(&room.version, event, &lookup).err().map(|r| r.0.to_owned()))
    }
}
