//! History this server lacks, asked of the other servers in the room: `/backfill` when a client
//! pages `/messages` past the oldest event held (the events checked as any received PDU's auth
//! chain is, and each taken with the state its prev events give it, [`super::backfill`]), and
//! `/timestamp_to_event` when this server holds no event near the time asked.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ruma::room_version_rules::RoomVersionRules;
use serde_json::Value;

use super::messages::Page;
use super::read::Viewer;
use crate::error::{Error, Result};
use crate::filter::RoomEventFilter;
use crate::inbound::budget::Budget;
use crate::inbound::format::rules_or_refuse;
use crate::inbound::{Pdu, event_ids};
use crate::network::Request;
use crate::rooms::state::NamedState;
use crate::server::Homeserver;

/// How many times one backfill asks for missing auth chains before it takes what it has.
const AUTH_FETCHES: usize = 5;
/// The most prev events whose state one backfill asks for (each answer is a room's state).
const MAX_STATE_FETCHES: usize = 3;
/// The most events one backfill asks another server for.
const MAX_BACKFILL: usize = 100;
/// The fewest events one backfill asks for, however small the client's page.
const MIN_BACKFILL: usize = 20;

/// A `/messages` request.
#[derive(Clone, Debug, Default)]
pub struct MessagesRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    pub backward: bool,
    pub limit: usize,
    pub filter: RoomEventFilter,
}

impl Homeserver {
    /// `/messages` for `user_id` on `device_id`; paging backward past the oldest event held
    /// asks the room's other servers for more history first.
    pub async fn messages_paging(
        self: &Arc<Self>,
        user_id: &str,
        device_id: &str,
        room_id: &str,
        request: MessagesRequest,
    ) -> Result<Page> {
        let read = |request: MessagesRequest| {
            let (u, d, r) = (user_id.to_owned(), device_id.to_owned(), room_id.to_owned());
            self.blocking(move |hs| {
                let viewer = Viewer { user_id: &u, device_id: Some(&d) };
                let MessagesRequest { from, to, backward, limit, filter } = &request;
                hs.messages(viewer, &r, from.as_deref(), to.as_deref(), *backward, *limit, filter)
            })
        };
        let page = read(request.clone()).await?;
        if !request.backward || page.end.is_some() || request.to.is_some() || self.network().is_err() {
            return Ok(page);
        }
        let r = room_id.to_owned();
        let frontier = self.blocking(move |hs| hs.backfill_frontier(&r)).await?;
        if frontier.is_empty() {
            return Ok(page);
        }
        let limit = request.limit.clamp(1, MAX_BACKFILL).max(MIN_BACKFILL);
        match self.backfill_from_servers(room_id, frontier, limit).await {
            Ok(n) if n > 0 => read(request).await,
            Ok(_) => Ok(page),
            Err(e) => {
                tracing::info!(%room_id, "backfill: {e}");
                Ok(page)
            }
        }
    }

    /// Asks the room's other servers, one after another, for `limit` events before `frontier`;
    /// the first that answers with events is used. How many were added.
    pub(crate) async fn backfill_from_servers(
        self: &Arc<Self>,
        room_id: &str,
        frontier: Vec<String>,
        limit: usize,
    ) -> Result<usize> {
        let r = room_id.to_owned();
        let (version, servers) = self.blocking(move |hs| Ok((hs.room_version(&r)?, hs.room_servers(&r)?))).await?;
        let rules = rules_or_refuse(&version)?;
        let mut last = Error::not_found("No server in the room to ask for its history");
        for server in servers.iter().filter(|s| **s != self.server_name) {
            let budget = Budget::transaction();
            let request = Request::Backfill {
                room_id: room_id.to_owned(),
                from: frontier.clone(),
                limit: limit.min(MAX_BACKFILL),
            };
            let answer = match self.fetch(&budget, server, request).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(%server, %room_id, "backfill failed: {e}");
                    last = e;
                    continue;
                }
            };
            let mut pdus = self.verify_list(&rules, answer.get("pdus"), MAX_BACKFILL, &budget).await;
            pdus.retain(|p| p.json.get("room_id").and_then(Value::as_str) == Some(room_id));
            if pdus.is_empty() {
                continue;
            }
            self.backfill_auth(server, room_id, &rules, &pdus, &budget).await;
            let states = self.states_after_missing_prevs(server, room_id, &rules, &pdus, &budget).await;
            let r = room_id.to_owned();
            return self.blocking(move |hs| hs.take_backfill(&r, &pdus, &states)).await;
        }
        Err(last)
    }

    /// `/timestamp_to_event` for `user_id`: the nearest event held that they may see, else the
    /// one the room's other servers know of.
    pub async fn timestamp_to_event_anywhere(
        self: &Arc<Self>,
        user_id: &str,
        room_id: &str,
        ts: u64,
        forward: bool,
    ) -> Result<Option<(String, u64)>> {
        let (u, r) = (user_id.to_owned(), room_id.to_owned());
        if let Some(found) = self.blocking(move |hs| hs.timestamp_to_event(&u, &r, ts, forward)).await? {
            return Ok(Some(found));
        }
        if self.network().is_err() {
            return Ok(None);
        }
        let r = room_id.to_owned();
        let servers = self.blocking(move |hs| hs.room_servers(&r)).await?;
        for server in servers.iter().filter(|s| **s != self.server_name) {
            let request = Request::TimestampToEvent { room_id: room_id.to_owned(), ts, forward };
            if let Ok(answer) = self.ask(server, request).await
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
        self: &Arc<Self>,
        server: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        pdus: &[Pdu],
        budget: &Budget,
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
        let Ok(missing) = self.blocking(move |hs| hs.backfill_gaps(&prevs)).await else { return HashMap::new() };
        let mut states = HashMap::new();
        for prev in missing.into_iter().take(MAX_STATE_FETCHES) {
            match self.state_after(server, room_id, rules, &prev, budget).await {
                Ok(state) => {
                    states.insert(prev, state);
                }
                Err(e) => tracing::info!(%server, event_id = %prev, "the state after a backfilled event's prev: {e}"),
            }
        }
        states
    }

    /// Fetches the auth chains of backfilled events whose auth events are neither held nor
    /// among them.
    async fn backfill_auth(
        self: &Arc<Self>,
        server: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        pdus: &[Pdu],
        budget: &Budget,
    ) {
        let batch: HashSet<String> = pdus.iter().map(|p| p.event_id.clone()).collect();
        let auth: Vec<(String, Vec<String>)> = pdus
            .iter()
            .map(|p| {
                let ids = event_ids(&p.json, "auth_events").into_iter().filter(|id| !batch.contains(id)).collect();
                (p.event_id.clone(), ids)
            })
            .collect();
        let mut asked = HashSet::new();
        for _ in 0..AUTH_FETCHES {
            let (a, done) = (auth.clone(), asked.clone());
            let lacking = self
                .blocking(move |hs| {
                    for (event_id, ids) in &a {
                        if !done.contains(event_id) && !hs.missing_events(ids)?.is_empty() {
                            return Ok(Some(event_id.clone()));
                        }
                    }
                    Ok(None)
                })
                .await;
            let Ok(Some(event_id)) = lacking else { return };
            asked.insert(event_id.clone());
            if let Err(e) = self.fetch_auth_chain(server, room_id, rules, &event_id, budget).await {
                tracing::info!(%server, %event_id, "fetching the auth chain of a backfilled event: {e}");
            }
        }
    }
}
