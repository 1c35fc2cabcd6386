//! History this server lacks: `/backfill` from the other servers in a room, when a client pages
//! `/messages` past the oldest event this server holds, and `/timestamp_to_event` when it holds
//! no event near the time asked.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::Value;
use tandem_core::rooms::receive::{Pdu, event_ids};
use tandem_core::rooms::state::NamedState;

use crate::inbound::{enc, rules_of};
use crate::{FedError, Federation, blocking};

/// How many times one backfill asks for missing auth chains before it takes what it has.
const AUTH_FETCHES: usize = 5;
/// The most prev events whose state one backfill asks for (each answer is a room's state).
const MAX_STATE_FETCHES: usize = 3;

impl Federation {
    /// Asks the room's other servers, one after another, for `limit` events before
    /// `frontier`; the first that answers with events is used. Returns how many were added.
    pub async fn backfill_room(&self, room_id: &str, frontier: Vec<String>, limit: usize) -> Result<usize, FedError> {
        if frontier.is_empty() {
            return Ok(0);
        }
        let (hs, r) = (self.hs.clone(), room_id.to_owned());
        let (version, servers) = blocking(move || Ok((hs.room_version(&r)?, hs.room_servers(&r)?))).await?;
        let rules = rules_of(&version).ok_or_else(|| FedError::bad_json("unsupported room version"))?;
        let query: Vec<String> = frontier.iter().map(|id| format!("v={}", enc(id))).collect();
        let path =
            format!("/_matrix/federation/v1/backfill/{}?{}&limit={}", enc(room_id), query.join("&"), limit.min(100));
        let mut last = FedError::not_found("No server in the room to ask for its history");
        for server in servers.iter().filter(|s| *s != self.server_name()) {
            let answer = match self.client.request(&self.hs, Method::GET, server, &path, None).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(%server, %room_id, "backfill failed: {e}");
                    last = e;
                    continue;
                }
            };
            let mut pdus = self.verify_all(&rules, answer.get("pdus")).await;
            pdus.retain(|p| p.json.get("room_id").and_then(Value::as_str) == Some(room_id));
            if pdus.is_empty() {
                continue;
            }
            self.fetch_missing_auth(server, room_id, &rules, &pdus).await;
            let states = self.states_after_missing_prevs(server, room_id, &rules, &pdus).await;
            let (hs, r) = (self.hs.clone(), room_id.to_owned());
            return blocking(move || hs.take_backfill(&r, &pdus, &states)).await;
        }
        Err(last)
    }

    /// Asks the room's other servers for the event nearest `ts`, until one knows one.
    pub async fn timestamp_to_event_remote(
        &self,
        room_id: &str,
        ts: u64,
        forward: bool,
    ) -> Result<Option<(String, u64)>, FedError> {
        let (hs, r) = (self.hs.clone(), room_id.to_owned());
        let servers = blocking(move || hs.room_servers(&r)).await?;
        let dir = if forward { "f" } else { "b" };
        let path = format!("/_matrix/federation/v1/timestamp_to_event/{}?ts={ts}&dir={dir}", enc(room_id));
        for server in servers.iter().filter(|s| *s != self.server_name()) {
            if let Ok(answer) = self.client.request(&self.hs, Method::GET, server, &path, None).await
                && let (Some(id), Some(at)) = (
                    answer.get("event_id").and_then(Value::as_str),
                    answer.get("origin_server_ts").and_then(Value::as_u64),
                )
            {
                return Ok(Some((id.to_owned(), at)));
            }
        }
        Ok(None)
    }

    /// The state after each event that backfilled events cite as a prev event but this server
    /// holds neither in the room's history nor among `pdus` (where the history it lacks begins),
    /// as `server` reports it; at most [`MAX_STATE_FETCHES`] of them.
    async fn states_after_missing_prevs(
        &self,
        server: &str,
        room_id: &str,
        rules: &ruma::room_version_rules::RoomVersionRules,
        pdus: &[Pdu],
    ) -> HashMap<String, NamedState> {
        let batch: HashSet<&str> = pdus.iter().map(|p| p.event_id.as_str()).collect();
        let mut prevs: Vec<String> = Vec::new();
        for pdu in pdus {
            for prev in event_ids(&pdu.json, "prev_events") {
                if !batch.contains(prev.as_str()) && !prevs.contains(&prev) {
                    prevs.push(prev);
                }
            }
        }
        let hs = self.hs.clone();
        let Ok(missing) = blocking(move || hs.backfill_gaps(&prevs)).await else { return HashMap::new() };
        let mut states = HashMap::new();
        for prev in missing.into_iter().take(MAX_STATE_FETCHES) {
            match self.state_after(server, room_id, rules, &prev).await {
                Ok(state) => {
                    states.insert(prev, state);
                }
                Err(e) => tracing::info!(%server, event_id = %prev, "the state after a backfilled event's prev: {e}"),
            }
        }
        states
    }

    /// Fetches the auth chains of events whose auth events are neither held nor among them.
    async fn fetch_missing_auth(
        &self,
        server: &str,
        room_id: &str,
        rules: &ruma::room_version_rules::RoomVersionRules,
        pdus: &[Pdu],
    ) {
        let batch: HashSet<&str> = pdus.iter().map(|p| p.event_id.as_str()).collect();
        let mut asked = HashSet::new();
        for _ in 0..AUTH_FETCHES {
            let mut lacking = None;
            for pdu in pdus {
                let ids: Vec<String> =
                    event_ids(&pdu.json, "auth_events").into_iter().filter(|id| !batch.contains(id.as_str())).collect();
                let hs = self.hs.clone();
                let Ok(missing) = blocking(move || hs.missing_events(&ids)).await else { return };
                if !missing.is_empty() && asked.insert(pdu.event_id.clone()) {
                    lacking = Some(pdu.event_id.clone());
                    break;
                }
            }
            let Some(event_id) = lacking else { return };
            if let Err(e) = self.fetch_auth_chain(server, room_id, rules, &event_id).await {
                tracing::info!(%server, %event_id, "fetching the auth chain of a backfilled event: {e}");
            }
        }
    }
}
