//! Received PDUs, before the engine takes them: the checks of the spec's "Checks performed on
//! receipt of a PDU" that need the network — format, size, signatures, content hash (redacting
//! on mismatch) — and filling what is missing: auth events by `/event_auth`, a gap before the
//! event by `/get_missing_events`, and if the gap remains, the state before the event by
//! `/state`. The room's checks (auth, state before, soft failure) are the engine's.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::Method;
use ruma::room_version_rules::RoomVersionRules;
use serde_json::{Value, json};
use tandem_core::rooms::receive::{Pdu, Received, event_ids};
use tandem_core::rooms::state::NamedState;

use crate::{FedError, Federation, blocking};

/// How many events one `/get_missing_events` call asks for (and takes, whatever comes back).
const MISSING_EVENTS_LIMIT: usize = 20;
/// The most events taken from one `/event_auth` or `/state` answer: far more than any room's
/// auth chain or state this server can hold today, far less than an answer of junk.
const MAX_FETCHED_EVENTS: usize = 50_000;
/// The most `prev_events` of one PDU whose state is fetched with `/state` (each answer can be
/// a room's whole state); a PDU with more unknown ones is refused.
const MAX_STATE_FETCHES: usize = 3;
/// The most events of a state fetched one by one (`/event`); beyond it the whole state is
/// fetched at once (`/state`).
const MAX_SINGLE_FETCHES: usize = 50;

pub(crate) fn rules_of(version: &str) -> Option<RoomVersionRules> {
    ruma::RoomVersionId::try_from(version).ok()?.rules()
}

impl Federation {
    /// One PDU of a transaction from `origin`: its event id (if it got that far) and the
    /// outcome. Rejections are not errors of the transaction; they are reported per PDU.
    pub async fn handle_pdu(self: &Arc<Self>, origin: &str, pdu: Value) -> (Option<String>, Result<Received, String>) {
        let Some(room_id) = pdu.get("room_id").and_then(Value::as_str).map(str::to_owned) else {
            return (None, Err("the event has no room_id".into()));
        };
        let hs = self.hs.clone();
        let r = room_id.clone();
        // Only rooms one of our users is in: a room everyone here left is no business of ours
        // any more, and must cost nothing.
        let Ok((true, version)) = blocking(move || Ok((hs.is_resident(&r)?, hs.room_version(&r)?))).await else {
            return (None, Err(format!("this server is not in room {room_id}")));
        };
        let Some(rules) = rules_of(&version) else { return (None, Err("unsupported room version".into())) };
        let (event_id, pdu) = match self.verify_pdu(&rules, &pdu).await {
            Ok(v) => v,
            Err(e) => return (None, Err(e)),
        };
        if let Err(e) = self.check_acl(&room_id, origin).await {
            return (Some(event_id), Err(e.to_string()));
        }
        let lock = self.room_lock(&room_id);
        let _guard = lock.lock().await;
        let result =
            self.receive_verified(origin, &room_id, &rules, Pdu { event_id: event_id.clone(), json: pdu }, true).await;
        (Some(event_id), result.map_err(|e| e.to_string()))
    }

    /// Takes a verified PDU, fetching its missing auth events and filling a gap before it.
    async fn receive_verified(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        pdu: Pdu,
        fill_gap: bool,
    ) -> Result<Received, FedError> {
        let hs = self.hs.clone();
        let auth_ids = event_ids(&pdu.json, "auth_events");
        let missing_auth = blocking(move || hs.missing_events(&auth_ids)).await?;
        if !missing_auth.is_empty() {
            self.fetch_auth_chain(origin, room_id, rules, &pdu.event_id).await?;
        }
        let prevs = event_ids(&pdu.json, "prev_events");
        let mut gaps = self.without_state(&prevs).await?;
        if !gaps.is_empty() && fill_gap {
            self.fetch_missing(origin, room_id, rules, &pdu.event_id).await;
            gaps = self.without_state(&prevs).await?;
        }
        if gaps.len() > MAX_STATE_FETCHES {
            return Err(FedError::bad_json(format!(
                "{} prev_events with unknown state (at most {MAX_STATE_FETCHES} are fetched)",
                gaps.len()
            )));
        }
        let state_before =
            if gaps.is_empty() { None } else { Some(self.state_before(origin, room_id, rules, &prevs, &gaps).await?) };
        let hs = self.hs.clone();
        let room = room_id.to_owned();
        blocking(move || hs.receive_pdu(&room, &pdu, state_before)).await
    }

    async fn without_state(&self, ids: &[String]) -> Result<Vec<String>, FedError> {
        let hs = self.hs.clone();
        let ids = ids.to_vec();
        blocking(move || hs.events_without_state(&ids)).await
    }

    /// Fetches the auth chain of an event from `origin` and stores what we lack as outliers.
    pub(crate) async fn fetch_auth_chain(
        &self,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        event_id: &str,
    ) -> Result<(), FedError> {
        let path = format!("/_matrix/federation/v1/event_auth/{}/{}", enc(room_id), enc(event_id));
        let answer = self.client.request(&self.hs, Method::GET, origin, &path, None).await?;
        let pdus = self.verify_all(rules, answer.get("auth_chain")).await;
        let hs = self.hs.clone();
        let room = room_id.to_owned();
        blocking(move || hs.store_outliers(&room, &pdus)).await
    }

    /// Asks `origin` for the events between our forward extremities and `event_id`, and takes
    /// them oldest first.
    async fn fetch_missing(self: &Arc<Self>, origin: &str, room_id: &str, rules: &RoomVersionRules, event_id: &str) {
        let hs = self.hs.clone();
        let room = room_id.to_owned();
        let Ok(Some(info)) = blocking(move || hs.room_info(&room)).await else { return };
        let body = json!({
            "earliest_events": info.extremities,
            "latest_events": [event_id],
            "limit": MISSING_EVENTS_LIMIT,
            "min_depth": 0,
        });
        let path = format!("/_matrix/federation/v1/get_missing_events/{}", enc(room_id));
        let Ok(answer) = self.client.request(&self.hs, Method::POST, origin, &path, Some(&body)).await else { return };
        let mut events = self.verify_all_of(rules, answer.get("events"), MISSING_EVENTS_LIMIT).await;
        events.sort_by_key(|p| p.json.get("depth").and_then(Value::as_i64).unwrap_or(0));
        for pdu in events {
            let id = pdu.event_id.clone();
            if let Err(e) = Box::pin(self.receive_verified(origin, room_id, rules, pdu, false)).await {
                tracing::info!(event_id = %id, "a missing event could not be taken: {e}");
            }
        }
    }

    /// The state before an event whose `prev_events` we cannot all place: the state after each
    /// of them, as we know it or as `origin` reports it, resolved.
    async fn state_before(
        &self,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        prevs: &[String],
        gaps: &[String],
    ) -> Result<NamedState, FedError> {
        let mut maps = Vec::new();
        for prev in prevs {
            if gaps.contains(prev) {
                maps.push(self.state_after(origin, room_id, rules, prev).await?);
            } else {
                let (hs, p) = (self.hs.clone(), prev.clone());
                maps.push(blocking(move || hs.named_state(&*hs.state_at_event(&p, true)?)).await?);
            }
        }
        let hs = self.hs.clone();
        let room = room_id.to_owned();
        blocking(move || hs.resolve_room_states(&room, maps)).await
    }

    /// The state after an event this server does not hold in the room's graph, as `origin`
    /// reports it: the state before it (`/state_ids`, fetching the events we lack one by one,
    /// or the whole of `/state` if we lack many) and the event itself. What is fetched is
    /// stored as outliers, each checked against its own auth events.
    pub(crate) async fn state_after(
        &self,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        event_id: &str,
    ) -> Result<NamedState, FedError> {
        let query = format!("{}?event_id={}", enc(room_id), enc(event_id));
        let answer = self
            .client
            .request(&self.hs, Method::GET, origin, &format!("/_matrix/federation/v1/state_ids/{query}"), None)
            .await?;
        let (mut ids, chain) = (event_ids(&answer, "pdu_ids"), event_ids(&answer, "auth_chain_ids"));
        if ids.len() + chain.len() > MAX_FETCHED_EVENTS {
            return Err(FedError::bad_json("the state answered is larger than this server takes"));
        }
        let hs = self.hs.clone();
        // The event first: it is fetched by itself whatever else is.
        let wanted: Vec<String> = [event_id.to_owned()].into_iter().chain(ids.iter().cloned()).chain(chain).collect();
        let lacking = blocking(move || hs.missing_events(&wanted)).await?;
        let mut pdus = Vec::new();
        if lacking.len() > MAX_SINGLE_FETCHES {
            let answer = self
                .client
                .request(&self.hs, Method::GET, origin, &format!("/_matrix/federation/v1/state/{query}"), None)
                .await?;
            pdus.extend(self.verify_all(rules, answer.get("auth_chain")).await);
            pdus.extend(self.verify_all(rules, answer.get("pdus")).await);
        }
        let have: HashSet<String> = pdus.iter().map(|p| p.event_id.clone()).collect();
        for id in lacking.iter().filter(|id| !have.contains(*id)).take(MAX_SINGLE_FETCHES + 1) {
            let path = format!("/_matrix/federation/v1/event/{}", enc(id));
            match self.client.request(&self.hs, Method::GET, origin, &path, None).await {
                Ok(answer) => {
                    let fetched = self.verify_all_of(rules, answer.get("pdus"), 1).await;
                    pdus.extend(fetched.into_iter().filter(|p| p.event_id == *id));
                }
                Err(e) => tracing::info!(%origin, event_id = %id, "fetching a state event: {e}"),
            }
        }
        // The event itself, which the state before it does not include: without it the state
        // after it is not known (its own change would be missing), and none is made up.
        ids.push(event_id.to_owned());
        let hs = self.hs.clone();
        let (room, event) = (room_id.to_owned(), event_id.to_owned());
        blocking(move || {
            hs.store_outliers(&room, &pdus)?;
            if !hs.missing_events(std::slice::from_ref(&event))?.is_empty() {
                return Err(tandem_core::Error::not_found(format!("{event} could not be fetched")));
            }
            hs.state_from_ids(&room, &ids)
        })
        .await
    }

    /// Verifies a list of PDUs another server sent, keeping those that pass (at most
    /// [`MAX_FETCHED_EVENTS`]).
    pub(crate) async fn verify_all(&self, rules: &RoomVersionRules, list: Option<&Value>) -> Vec<Pdu> {
        self.verify_all_of(rules, list, MAX_FETCHED_EVENTS).await
    }

    /// [`Federation::verify_all`], looking at the first `max` entries only.
    pub(crate) async fn verify_all_of(&self, rules: &RoomVersionRules, list: Option<&Value>, max: usize) -> Vec<Pdu> {
        let mut out = Vec::new();
        for pdu in list.and_then(Value::as_array).into_iter().flatten().take(max) {
            match self.verify_pdu(rules, pdu).await {
                Ok((event_id, json)) => out.push(Pdu { event_id, json }),
                Err(e) => tracing::info!("dropping a fetched event: {e}"),
            }
        }
        out
    }

    /// `m.room.server_acl`: may `server` take part in the room?
    pub(crate) async fn check_acl(&self, room_id: &str, server: &str) -> Result<(), FedError> {
        let hs = self.hs.clone();
        let room = room_id.to_owned();
        let acl = blocking(move || {
            let Some(id) = hs.current_state_id(&room, "m.room.server_acl", "")? else { return Ok(None) };
            Ok(hs.pdu(&id)?.and_then(|p| p.get("content").cloned()))
        })
        .await?;
        match acl {
            Some(content) if !acl_allows(&content, server) => {
                Err(FedError::forbidden(format!("{server} is banned from this room by its server ACL")))
            }
            _ => Ok(()),
        }
    }
}

/// The spec's server ACL rules: `deny` first, then `allow`, then IP literals if disallowed.
pub fn acl_allows(content: &Value, server: &str) -> bool {
    let host = crate::discovery::split_server_name(server).map_or(server, |(h, _)| h);
    let list = |field: &str| -> Vec<String> {
        content
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    if content.get("allow_ip_literals").and_then(Value::as_bool) == Some(false)
        && crate::discovery::ip_literal(host).is_some()
    {
        return false;
    }
    if list("deny").iter().any(|p| crate::policy::glob(p, host)) {
        return false;
    }
    list("allow").iter().any(|p| crate::policy::glob(p, host))
}

/// Percent-encodes a path segment.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_acls() {
        let acl = json!({ "allow": ["*"], "deny": ["evil.org", "*.evil.org"], "allow_ip_literals": false });
        assert!(acl_allows(&acl, "good.org"));
        assert!(!acl_allows(&acl, "evil.org:8448"));
        assert!(!acl_allows(&acl, "a.evil.org"));
        assert!(!acl_allows(&acl, "127.0.0.1:8481"));
        assert!(!acl_allows(&json!({}), "good.org"));
        assert!(acl_allows(&json!({ "allow": ["127.0.0.1"] }), "127.0.0.1:8481"));
    }

    #[test]
    fn encoding() {
        assert_eq!(enc("!a:b.org"), "%21a%3Ab.org");
        assert_eq!(enc("$ab+/="), "%24ab%2B%2F%3D");
    }
}
