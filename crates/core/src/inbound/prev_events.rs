//! Step 5a: the gap before an event whose `prev_events` this server does not hold with their
//! state. First the missing events themselves (`/get_missing_events`, between our forward
//! extremities and the event, taken oldest first and never filling a gap of their own); if the
//! gap remains, the state after each prev event still missing, as the sending server reports
//! it (`/state_ids`, the events we lack fetched one by one or, past a few, the whole `/state`),
//! resolved into the state before the event. Nothing is made up: a prev event that cannot be
//! fetched itself leaves the state after it unknown, and the PDU is refused.

use std::collections::HashSet;
use std::sync::Arc;

use ruma::room_version_rules::RoomVersionRules;
use serde_json::Value;

use super::auth_events::MAX_FETCHED_EVENTS;
use super::budget::Budget;
use super::event_ids;
use super::format::Target;
use crate::error::{Error, Result};
use crate::network::Request;
use crate::rooms::state::NamedState;
use crate::server::Homeserver;

/// How many events one `/get_missing_events` call asks for (and takes, whatever comes back).
pub const MISSING_EVENTS_LIMIT: usize = 20;
/// The most `prev_events` of one PDU whose state is fetched (each answer can be a room's whole
/// state); a PDU with more unknown ones is refused.
pub const MAX_STATE_FETCHES: usize = 3;
/// The most events of a state fetched one by one (`/event`); beyond it the whole state is
/// fetched at once (`/state`).
pub const MAX_SINGLE_FETCHES: usize = 50;

impl Homeserver {
    /// Asks `origin` for the events between our forward extremities and `event_id`, and takes
    /// them oldest first.
    pub(crate) async fn fill_gap(self: &Arc<Self>, origin: &str, target: &Target, event_id: &str, budget: &Budget) {
        let room = target.room_id.clone();
        let Ok(Some(info)) = self.blocking(move |hs| hs.room_info(&room)).await else { return };
        let request = Request::MissingEvents {
            room_id: target.room_id.clone(),
            earliest: info.extremities,
            latest: vec![event_id.to_owned()],
            limit: MISSING_EVENTS_LIMIT,
        };
        let Ok(answer) = self.fetch(budget, origin, request).await else { return };
        let mut events = self.verify_list(&target.rules, answer.get("events"), MISSING_EVENTS_LIMIT, budget).await;
        events.sort_by_key(|p| p.json.get("depth").and_then(Value::as_i64).unwrap_or(0));
        for pdu in events {
            let id = pdu.event_id.clone();
            if let Err(e) = Box::pin(self.take_verified(origin, target, pdu, false, budget)).await {
                tracing::info!(event_id = %id, "a missing event could not be taken: {e}");
            }
        }
    }

    /// The state before an event whose `prev_events` we cannot all place (`gaps`): the state
    /// after each of them, as we know it or as `origin` reports it, resolved.
    pub(crate) async fn state_before_from(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        prevs: &[String],
        gaps: &[String],
        budget: &Budget,
    ) -> Result<NamedState> {
        if gaps.len() > MAX_STATE_FETCHES {
            return Err(Error::bad_json(format!(
                "{} prev_events with unknown state (at most {MAX_STATE_FETCHES} are fetched)",
                gaps.len()
            )));
        }
        let mut maps = Vec::new();
        for prev in prevs {
            if gaps.contains(prev) {
                maps.push(self.state_after(origin, room_id, rules, prev, budget).await?);
            } else {
                let p = prev.clone();
                maps.push(self.blocking(move |hs| hs.named_state(&*hs.state_at_event(&p, true)?)).await?);
            }
        }
        let room = room_id.to_owned();
        self.blocking(move |hs| hs.resolve_room_states(&room, maps)).await
    }

    /// The state after an event this server does not hold in the room's graph, as `origin`
    /// reports it: the state before it and the event itself. What is fetched is stored as
    /// outliers, each checked against its own auth events.
    pub(crate) async fn state_after(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        event_id: &str,
        budget: &Budget,
    ) -> Result<NamedState> {
        let (room, event) = (room_id.to_owned(), event_id.to_owned());
        let ids_request = Request::StateIds { room_id: room.clone(), event_id: event.clone() };
        let answer = self.fetch(budget, origin, ids_request).await?;
        let (mut ids, chain) = (event_ids(&answer, "pdu_ids"), event_ids(&answer, "auth_chain_ids"));
        if ids.len() + chain.len() > MAX_FETCHED_EVENTS {
            return Err(Error::bad_json("the state answered is larger than this server takes"));
        }
        // The event first: it is fetched by itself whatever else is.
        let wanted: Vec<String> = [event.clone()].into_iter().chain(ids.iter().cloned()).chain(chain).collect();
        let lacking = self.blocking(move |hs| hs.missing_events(&wanted)).await?;
        let mut pdus = Vec::new();
        if lacking.len() > MAX_SINGLE_FETCHES {
            let answer =
                self.fetch(budget, origin, Request::State { room_id: room.clone(), event_id: event.clone() }).await?;
            pdus.extend(self.verify_list(rules, answer.get("auth_chain"), MAX_FETCHED_EVENTS, budget).await);
            pdus.extend(self.verify_list(rules, answer.get("pdus"), MAX_FETCHED_EVENTS, budget).await);
        }
        let have: HashSet<String> = pdus.iter().map(|p| p.event_id.clone()).collect();
        for id in lacking.iter().filter(|id| !have.contains(*id)).take(MAX_SINGLE_FETCHES + 1) {
            match self.fetch(budget, origin, Request::Event { event_id: id.clone() }).await {
                Ok(answer) => {
                    let fetched = self.verify_list(rules, answer.get("pdus"), 1, budget).await;
                    pdus.extend(fetched.into_iter().filter(|p| p.event_id == *id));
                }
                Err(e) => tracing::info!(%origin, event_id = %id, "fetching a state event: {e}"),
            }
        }
        // The event itself, which the state before it does not include: without it the state
        // after it is not known (its own change would be missing), and none is made up.
        ids.push(event.clone());
        self.blocking(move |hs| {
            hs.store_outliers(&room, &pdus)?;
            if !hs.missing_events(std::slice::from_ref(&event))?.is_empty() {
                return Err(Error::not_found(format!("{event} could not be fetched")));
            }
            hs.state_from_ids(&room, &ids)
        })
        .await
    }
}
