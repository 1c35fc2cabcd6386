//! Membership handshakes and queries for local users that need another server: joining,
//! knocking on and leaving rooms this server is not in, inviting users of other servers,
//! other servers' aliases and profiles. This is the engine's [`Network`].

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Map, Value, json};
use tandem_core::network::{BoxFuture, Network};
use tandem_core::rooms::receive::Pdu;

use crate::client::server_of;
use crate::inbound::{enc, rules_of};
use crate::{FedError, Federation, blocking};

pub struct Remote(pub Arc<Federation>);

type CoreResult<T> = tandem_core::Result<T>;

impl Network for Remote {
    fn join(
        &self,
        user_id: String,
        room_id: String,
        via: Vec<String>,
        membership: &'static str,
    ) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move { Ok(self.0.join_remote(&user_id, &room_id, via, membership).await?) })
    }

    fn leave(&self, user_id: String, room_id: String) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move { Ok(self.0.leave_remote(&user_id, &room_id).await?) })
    }

    fn invite(
        &self,
        sender: String,
        room_id: String,
        target: String,
        reason: Option<String>,
        is_direct: bool,
    ) -> BoxFuture<'_, CoreResult<String>> {
        Box::pin(async move { Ok(self.0.invite_remote(&sender, &room_id, &target, reason, is_direct).await?) })
    }

    fn query_alias(&self, alias: String) -> BoxFuture<'_, CoreResult<(String, Vec<String>)>> {
        Box::pin(async move {
            let server = server_of(&alias).ok_or_else(|| tandem_core::Error::invalid_param("bad alias"))?;
            let path = format!("/_matrix/federation/v1/query/directory?room_alias={}", enc(&alias));
            let answer = self.0.client.request(&self.0.hs, Method::GET, server, &path, None).await?;
            let room = answer
                .get("room_id")
                .and_then(Value::as_str)
                .ok_or_else(|| tandem_core::Error::not_found("Room alias not found"))?;
            let servers = strings(answer.get("servers"));
            Ok((room.to_owned(), servers))
        })
    }

    fn backfill(&self, room_id: String, frontier: Vec<String>, limit: usize) -> BoxFuture<'_, CoreResult<usize>> {
        Box::pin(async move { Ok(self.0.backfill_room(&room_id, frontier, limit).await?) })
    }

    fn timestamp_to_event(
        &self,
        room_id: String,
        ts: u64,
        forward: bool,
    ) -> BoxFuture<'_, CoreResult<Option<(String, u64)>>> {
        Box::pin(async move { Ok(self.0.timestamp_to_event_remote(&room_id, ts, forward).await?) })
    }

    fn public_rooms(
        &self,
        server: String,
        limit: Option<usize>,
        since: Option<String>,
        search: Option<String>,
    ) -> BoxFuture<'_, CoreResult<Value>> {
        Box::pin(async move {
            let path = "/_matrix/federation/v1/publicRooms";
            let answer = match search {
                Some(term) => {
                    let mut body = json!({ "filter": { "generic_search_term": term } });
                    if let Some(l) = limit {
                        body["limit"] = l.into();
                    }
                    if let Some(s) = since {
                        body["since"] = s.into();
                    }
                    self.0.client.request(&self.0.hs, Method::POST, &server, path, Some(&body)).await?
                }
                None => {
                    let mut query = Vec::new();
                    if let Some(l) = limit {
                        query.push(format!("limit={l}"));
                    }
                    if let Some(s) = since {
                        query.push(format!("since={}", enc(&s)));
                    }
                    let path = if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) };
                    self.0.client.request(&self.0.hs, Method::GET, &server, &path, None).await?
                }
            };
            Ok(answer)
        })
    }

    fn hierarchy(&self, room_id: String, via: Vec<String>, suggested_only: bool) -> BoxFuture<'_, CoreResult<Value>> {
        Box::pin(async move {
            let path = format!("/_matrix/federation/v1/hierarchy/{}?suggested_only={suggested_only}", enc(&room_id));
            let mut last = FedError::not_found("No server to ask about this room");
            for server in via.iter().filter(|s| *s != self.0.server_name()) {
                match self.0.client.request(&self.0.hs, Method::GET, server, &path, None).await {
                    Ok(answer) if answer.get("room").is_some_and(Value::is_object) => return Ok(answer),
                    Ok(_) => last = FedError::bad_json("the hierarchy answer has no room"),
                    Err(e) => last = e,
                }
            }
            Err(last.into())
        })
    }

    fn query_keys(&self, server: String, request: Value) -> BoxFuture<'_, CoreResult<Value>> {
        Box::pin(async move {
            let path = "/_matrix/federation/v1/user/keys/query";
            Ok(self.0.client.request(&self.0.hs, Method::POST, &server, path, Some(&request)).await?)
        })
    }

    fn claim_keys(&self, server: String, request: Value) -> BoxFuture<'_, CoreResult<Value>> {
        Box::pin(async move {
            let path = "/_matrix/federation/v1/user/keys/claim";
            Ok(self.0.client.request(&self.0.hs, Method::POST, &server, path, Some(&request)).await?)
        })
    }

    fn resync_devices(&self, user_id: String) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move { Ok(self.0.resync_devices(&user_id).await?) })
    }

    fn query_profile(&self, user_id: String, field: Option<String>) -> BoxFuture<'_, CoreResult<Value>> {
        Box::pin(async move {
            let server = server_of(&user_id).ok_or_else(|| tandem_core::Error::invalid_param("bad user id"))?;
            let mut path = format!("/_matrix/federation/v1/query/profile?user_id={}", enc(&user_id));
            if let Some(f) = field {
                path.push_str(&format!("&field={}", enc(&f)));
            }
            Ok(self.0.client.request(&self.0.hs, Method::GET, server, &path, None).await?)
        })
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

impl Federation {
    async fn candidates(&self, user_id: &str, room_id: &str, via: Vec<String>) -> Result<Vec<String>, FedError> {
        let (hs, u, r) = (self.hs.clone(), user_id.to_owned(), room_id.to_owned());
        let servers = blocking(move || hs.join_candidates(&u, &r, &via)).await?;
        if servers.is_empty() {
            return Err(FedError::not_found("No server to join this room through is known"));
        }
        Ok(servers)
    }

    /// `make_*` then `send_*` through each candidate server until one works.
    pub async fn join_remote(
        &self,
        user_id: &str,
        room_id: &str,
        via: Vec<String>,
        membership: &'static str,
    ) -> Result<(), FedError> {
        let mut last = FedError::not_found("No server could be reached");
        for server in self.candidates(user_id, room_id, via).await? {
            match self.join_through(&server, user_id, room_id, membership).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::info!(%server, %room_id, "{membership} through this server failed: {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn join_through(
        &self,
        server: &str,
        user_id: &str,
        room_id: &str,
        membership: &'static str,
    ) -> Result<(), FedError> {
        let versions: String = tandem_core::rooms::SUPPORTED_VERSIONS.iter().map(|v| format!("&ver={v}")).collect();
        let path =
            format!("/_matrix/federation/v1/make_{membership}/{}/{}?{}", enc(room_id), enc(user_id), &versions[1..]);
        let template = self.client.request(&self.hs, Method::GET, server, &path, None).await?;
        let version = template.get("room_version").and_then(Value::as_str).unwrap_or("1").to_owned();
        let rules = rules_of(&version).ok_or_else(|| FedError::bad_json("unsupported room version"))?;
        let event: Map<String, Value> = template
            .get("event")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| FedError::bad_json("no event in the template"))?;
        let (hs, v, u, r) = (self.hs.clone(), version.clone(), user_id.to_owned(), room_id.to_owned());
        let pdu = blocking(move || hs.sign_template(&v, &r, &u, membership, event)).await?;
        if membership == "knock" {
            let path = format!("/_matrix/federation/v1/send_knock/{}/{}", enc(room_id), enc(&pdu.event_id));
            let answer = self.client.request(&self.hs, Method::PUT, server, &path, Some(&pdu.json)).await?;
            let stripped = answer.get("knock_room_state").and_then(Value::as_array).cloned().unwrap_or_default();
            let (hs, u, r) = (self.hs.clone(), user_id.to_owned(), room_id.to_owned());
            return blocking(move || hs.record_remote_membership(&u, &r, &pdu, "knock", Some(stripped))).await;
        }
        let path = format!("/_matrix/federation/v2/send_join/{}/{}", enc(room_id), enc(&pdu.event_id));
        let answer = self.client.request(&self.hs, Method::PUT, server, &path, Some(&pdu.json)).await?;
        let join = match answer.get("event") {
            // Countersigned by the resident server (restricted rooms): keep its version.
            Some(event) => {
                let (id, json) = self.verify_pdu(&rules, event).await.map_err(FedError::bad_json)?;
                if id != pdu.event_id {
                    return Err(FedError::bad_json("the resident server returned another event"));
                }
                Pdu { event_id: id, json }
            }
            None => pdu,
        };
        let state = self.verify_all(&rules, answer.get("state")).await;
        let chain = self.verify_all(&rules, answer.get("auth_chain")).await;
        let lock = self.room_lock(room_id);
        let _guard = lock.lock().await;
        let (hs, r) = (self.hs.clone(), room_id.to_owned());
        blocking(move || hs.join_remote(&r, &version, &join, &state, &chain)).await
    }

    pub async fn leave_remote(&self, user_id: &str, room_id: &str) -> Result<(), FedError> {
        let mut last = FedError::not_found("No server could be reached");
        for server in self.candidates(user_id, room_id, Vec::new()).await? {
            let path = format!("/_matrix/federation/v1/make_leave/{}/{}", enc(room_id), enc(user_id));
            let attempt = async {
                let template = self.client.request(&self.hs, Method::GET, &server, &path, None).await?;
                let version = template.get("room_version").and_then(Value::as_str).unwrap_or("1").to_owned();
                let event = template
                    .get("event")
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or_else(|| FedError::bad_json("no event"))?;
                let (hs, u) = (self.hs.clone(), user_id.to_owned());
                let r = room_id.to_owned();
                let pdu = blocking(move || hs.sign_template(&version, &r, &u, "leave", event)).await?;
                let send = format!("/_matrix/federation/v2/send_leave/{}/{}", enc(room_id), enc(&pdu.event_id));
                self.client.request(&self.hs, Method::PUT, &server, &send, Some(&pdu.json)).await?;
                let (hs, u, r) = (self.hs.clone(), user_id.to_owned(), room_id.to_owned());
                blocking(move || hs.record_remote_membership(&u, &r, &pdu, "leave", None)).await
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub async fn invite_remote(
        &self,
        sender: &str,
        room_id: &str,
        target: &str,
        reason: Option<String>,
        is_direct: bool,
    ) -> Result<String, FedError> {
        let server = server_of(target).ok_or_else(|| FedError::bad_json("bad user id"))?.to_owned();
        let mut content = Map::new();
        content.insert("membership".into(), "invite".into());
        if let Some(r) = reason {
            content.insert("reason".into(), r.into());
        }
        if is_direct {
            content.insert("is_direct".into(), true.into());
        }
        let (hs, s, r, t) = (self.hs.clone(), sender.to_owned(), room_id.to_owned(), target.to_owned());
        let (prepared, stripped) = blocking(move || {
            let prepared = hs.prepare_membership(&s, &r, &t, content)?;
            let stripped = hs.stripped_state(&r, "")?;
            Ok((prepared, stripped))
        })
        .await?;
        let rules = rules_of(&prepared.room_version).ok_or_else(|| FedError::bad_json("unsupported room version"))?;
        let path = format!("/_matrix/federation/v2/invite/{}/{}", enc(room_id), enc(&prepared.pdu.event_id));
        let body =
            json!({ "room_version": prepared.room_version, "event": prepared.pdu.json, "invite_room_state": stripped });
        let answer = self.client.request(&self.hs, Method::PUT, &server, &path, Some(&body)).await?;
        let event = answer.get("event").ok_or_else(|| FedError::bad_json("no event in the invite answer"))?;
        let (id, json) = self.verify_pdu(&rules, event).await.map_err(FedError::bad_json)?;
        if id != prepared.pdu.event_id {
            return Err(FedError::bad_json("the invited user's server changed the event"));
        }
        let lock = self.room_lock(room_id);
        let _guard = lock.lock().await;
        let (hs, r) = (self.hs.clone(), room_id.to_owned());
        let pdu = Pdu { event_id: id.clone(), json };
        blocking(move || hs.commit_prepared(&r, &pdu)).await?;
        Ok(id)
    }
}
