//! Memberships that need another server, for local users: joining or knocking on a room this
//! server is not in (`make_*` then `send_*` through the first candidate server that answers),
//! leaving one (declining an invite, withdrawing a knock), and inviting a user of another
//! server (`/invite` to that user's server, which countersigns). [`Homeserver::change_membership`]
//! routes every membership change a client asks for between these and the local path.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::create::CreateRoom;
use crate::error::{Error, Result};
use crate::inbound::Pdu;
use crate::inbound::auth_events::MAX_FETCHED_EVENTS;
use crate::inbound::budget::Budget;
use crate::inbound::format::rules_or_refuse;
use crate::network::Request;
use crate::server::Homeserver;
use crate::server_name::server_of;

/// Events verified from one `send_join` answer: a room's state and auth chain.
const JOIN_EVENTS: usize = 2 * MAX_FETCHED_EVENTS;

impl Homeserver {
    /// Sets `target`'s membership as `sender` asks (`reason` and, for joins and knocks, the
    /// servers `via` which to reach a room this server is not in). The event id, or the room
    /// id for handshakes that give none back.
    pub async fn change_membership(
        self: &Arc<Self>,
        sender: &str,
        room_id: &str,
        target: &str,
        membership: &'static str,
        reason: Option<String>,
        via: Vec<String>,
    ) -> Result<String> {
        let r = room_id.to_owned();
        let resident = self.blocking(move |hs| hs.is_resident(&r)).await?;
        match membership {
            "join" | "knock" if !resident => {
                self.join_through_servers(sender, room_id, via, membership).await?;
                Ok(room_id.to_owned())
            }
            "leave" if !resident && sender == target => {
                // Through a server in the room if one answers; otherwise declined here.
                if let Err(e) = self.leave_through_servers(sender, room_id).await {
                    tracing::info!(%room_id, "leaving through another server failed ({e}); declining locally");
                    let (s, r) = (sender.to_owned(), room_id.to_owned());
                    self.blocking(move |hs| hs.decline_locally(&s, &r, reason.as_deref())).await?;
                }
                Ok(room_id.to_owned())
            }
            "invite" if resident && !self.is_local(target) => {
                self.invite_through(sender, room_id, target, reason, false).await
            }
            _ => {
                let (s, r, t) = (sender.to_owned(), room_id.to_owned(), target.to_owned());
                self.blocking(move |hs| hs.set_membership(&s, &r, &t, membership, reason.as_deref(), None)).await
            }
        }
    }

    /// `createRoom`: the room made here, then its invited users of other servers invited
    /// through their servers. As Synapse does, an invite that fails leaves the room created (the
    /// invite can be sent again).
    pub async fn create_room_inviting(self: &Arc<Self>, creator: &str, request: CreateRoom) -> Result<String> {
        let remote: Vec<String> = request.invite.iter().filter(|u| !self.is_local(u)).cloned().collect();
        let is_direct = request.is_direct;
        let c = creator.to_owned();
        let room_id = self.blocking(move |hs| hs.create_room(&c, request)).await?;
        for target in remote {
            if let Err(e) = self.invite_through(creator, &room_id, &target, None, is_direct).await {
                tracing::info!(%room_id, %target, "inviting a user of another server failed: {e}");
            }
        }
        Ok(room_id)
    }

    async fn candidates(self: &Arc<Self>, user_id: &str, room_id: &str, via: Vec<String>) -> Result<Vec<String>> {
        let (u, r) = (user_id.to_owned(), room_id.to_owned());
        let servers = self.blocking(move |hs| hs.join_candidates(&u, &r, &via)).await?;
        if servers.is_empty() {
            return Err(Error::not_found("No server to join this room through is known"));
        }
        Ok(servers)
    }

    /// `make_*` then `send_*` through each candidate server until one works.
    async fn join_through_servers(
        self: &Arc<Self>,
        user_id: &str,
        room_id: &str,
        via: Vec<String>,
        membership: &'static str,
    ) -> Result<()> {
        let mut last = Error::not_found("No server could be reached");
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

    /// A signed membership event for `user_id` from `server`'s template.
    async fn signed_template(
        self: &Arc<Self>,
        server: &str,
        user_id: &str,
        room_id: &str,
        membership: &'static str,
    ) -> Result<(String, Pdu)> {
        let (room, user) = (room_id.to_owned(), user_id.to_owned());
        let template = self
            .ask(server, Request::MakeMembership { membership, room_id: room.clone(), user_id: user.clone() })
            .await?;
        let version = template.get("room_version").and_then(Value::as_str).unwrap_or("1").to_owned();
        let event: Map<String, Value> = template
            .get("event")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| Error::bad_json("no event in the template"))?;
        let v = version.clone();
        let pdu = self.blocking(move |hs| hs.sign_template(&v, &room, &user, membership, event)).await?;
        Ok((version, pdu))
    }

    async fn join_through(
        self: &Arc<Self>,
        server: &str,
        user_id: &str,
        room_id: &str,
        membership: &'static str,
    ) -> Result<()> {
        let (version, pdu) = self.signed_template(server, user_id, room_id, membership).await?;
        let rules = rules_or_refuse(&version)?;
        let send = Request::SendMembership {
            membership,
            room_id: room_id.to_owned(),
            event_id: pdu.event_id.clone(),
            pdu: pdu.json.clone(),
        };
        let answer = self.ask(server, send).await?;
        let (user, room) = (user_id.to_owned(), room_id.to_owned());
        if membership == "knock" {
            let stripped = answer.get("knock_room_state").and_then(Value::as_array).cloned().unwrap_or_default();
            return self
                .blocking(move |hs| hs.record_remote_membership(&user, &room, &pdu, "knock", Some(stripped)))
                .await;
        }
        let join = match answer.get("event") {
            // Countersigned by the resident server (restricted rooms): keep its version.
            Some(event) => {
                let signed = self.verify_pdu(&rules, event).await.map_err(Error::bad_json)?;
                if signed.event_id != pdu.event_id {
                    return Err(Error::bad_json("the resident server returned another event"));
                }
                signed
            }
            None => pdu,
        };
        let budget = Budget::new(0, JOIN_EVENTS, crate::inbound::budget::PDU_TIME);
        let state = self.verify_list(&rules, answer.get("state"), MAX_FETCHED_EVENTS, &budget).await;
        let chain = self.verify_list(&rules, answer.get("auth_chain"), MAX_FETCHED_EVENTS, &budget).await;
        let lock = self.room_lock(room_id);
        let _turn = lock.lock().await;
        self.blocking(move |hs| hs.join_remote(&room, &version, &join, &state, &chain)).await
    }

    /// Leaves a room this server is not in through a server that is.
    async fn leave_through_servers(self: &Arc<Self>, user_id: &str, room_id: &str) -> Result<()> {
        let mut last = Error::not_found("No server could be reached");
        for server in self.candidates(user_id, room_id, Vec::new()).await? {
            let attempt = async {
                let (_, pdu) = self.signed_template(&server, user_id, room_id, "leave").await?;
                let send = Request::SendMembership {
                    membership: "leave",
                    room_id: room_id.to_owned(),
                    event_id: pdu.event_id.clone(),
                    pdu: pdu.json.clone(),
                };
                self.ask(&server, send).await?;
                let (u, r) = (user_id.to_owned(), room_id.to_owned());
                self.blocking(move |hs| hs.record_remote_membership(&u, &r, &pdu, "leave", None)).await
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Invites a user of another server to a room this server is in: the invite goes to their
    /// server first, which countersigns it; the countersigned event joins the room. Its id.
    pub(crate) async fn invite_through(
        self: &Arc<Self>,
        sender: &str,
        room_id: &str,
        target: &str,
        reason: Option<String>,
        is_direct: bool,
    ) -> Result<String> {
        let server = server_of(target).ok_or_else(|| Error::invalid_param("bad user id"))?.to_owned();
        let mut content = Map::new();
        content.insert("membership".into(), "invite".into());
        if let Some(r) = reason {
            content.insert("reason".into(), r.into());
        }
        if is_direct {
            content.insert("is_direct".into(), true.into());
        }
        let (s, r, t) = (sender.to_owned(), room_id.to_owned(), target.to_owned());
        let (prepared, stripped) = self
            .blocking(move |hs| {
                let prepared = hs.prepare_membership(&s, &r, &t, content)?;
                let stripped = hs.stripped_state(&r, "")?;
                Ok((prepared, stripped))
            })
            .await?;
        let rules = rules_or_refuse(&prepared.room_version)?;
        let body =
            json!({ "room_version": prepared.room_version, "event": prepared.pdu.json, "invite_room_state": stripped });
        let request = Request::Invite { room_id: room_id.to_owned(), event_id: prepared.pdu.event_id.clone(), body };
        let answer = self.ask(&server, request).await?;
        let event = answer.get("event").ok_or_else(|| Error::bad_json("no event in the invite answer"))?;
        let pdu = self.verify_pdu(&rules, event).await.map_err(Error::bad_json)?;
        if pdu.event_id != prepared.pdu.event_id {
            return Err(Error::bad_json("the invited user's server changed the event"));
        }
        let lock = self.room_lock(room_id);
        let _turn = lock.lock().await;
        let (r, id) = (room_id.to_owned(), pdu.event_id.clone());
        self.blocking(move |hs| hs.commit_prepared(&r, &pdu)).await?;
        Ok(id)
    }
}

/// The handshakes other servers start with this one: templates and signed membership events
/// for rooms this server is in, and invites of our users to rooms on theirs.
impl Homeserver {
    /// `make_join`, `make_knock`, `make_leave` from `origin` for one of its users: the room
    /// version and the unsigned event. `versions` are those the asking server supports.
    pub async fn template_for(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        user_id: &str,
        membership: &'static str,
        versions: Option<Vec<String>>,
    ) -> Result<(String, Map<String, Value>)> {
        if server_of(user_id) != Some(origin) {
            return Err(Error::forbidden("The user is not on the server asking"));
        }
        self.check_acl(room_id, origin).await?;
        let (r, u) = (room_id.to_owned(), user_id.to_owned());
        self.blocking(move |hs| {
            if !hs.is_resident(&r)? {
                return Err(Error::not_found("This server is not in the room"));
            }
            hs.membership_template(&r, &u, membership, versions.as_deref())
        })
        .await
    }

    /// `send_join`, `send_knock`, `send_leave` from `origin`: its signed membership event,
    /// checked (a restricted join countersigned first) and taken into the room.
    pub async fn accept_signed_membership(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        event_id: &str,
        body: Value,
        membership: &'static str,
    ) -> Result<Pdu> {
        self.check_acl(room_id, origin).await?;
        let (r, b) = (room_id.to_owned(), body);
        let (version, body) = self
            .blocking(move |hs| {
                let version = hs.room_version(&r)?;
                let body = if membership == "join" { hs.authorise_restricted_join(&r, &b)? } else { b };
                Ok((version, body))
            })
            .await?;
        let rules = rules_or_refuse(&version)?;
        let pdu = self.verify_pdu(&rules, &body).await.map_err(Error::forbidden)?;
        if pdu.event_id != event_id {
            return Err(Error::bad_json("The event id does not match the event"));
        }
        if body.get("room_id").and_then(Value::as_str) != Some(room_id) {
            return Err(Error::bad_json("The event is for another room"));
        }
        let lock = self.room_lock(room_id);
        let _turn = lock.lock().await;
        let (r, o) = (room_id.to_owned(), origin.to_owned());
        self.blocking(move |hs| hs.accept_membership(&r, &o, &pdu, membership)).await
    }

    /// `send_join`'s answer: the accepted join, the state before it and its auth chain, and the
    /// servers in the room. With `omit_members` (the joining server asked for it), the member
    /// events are left out of the state ([`Homeserver::partial_state_ids_at`]).
    pub async fn send_join_answer(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        event_id: &str,
        body: Value,
        omit_members: bool,
    ) -> Result<Value> {
        let pdu = self.accept_signed_membership(origin, room_id, event_id, body, "join").await?;
        let (id, r) = (pdu.event_id.clone(), room_id.to_owned());
        let joiner = pdu.json.get("state_key").and_then(Value::as_str).unwrap_or_default().to_owned();
        let (state, chain, servers) = self
            .blocking(move |hs| {
                let (state, chain) =
                    if omit_members { hs.partial_state_ids_at(&id, &joiner)? } else { hs.state_ids_at(&id)? };
                Ok((hs.pdus(&state)?, hs.pdus(&chain)?, hs.room_servers(&r)?))
            })
            .await?;
        Ok(json!({
            "origin": self.server_name,
            "event": pdu.json,
            "state": state,
            "auth_chain": chain,
            "members_omitted": omit_members,
            "servers_in_room": servers,
        }))
    }

    /// `send_knock`'s answer: the room's stripped state for the knocking user.
    pub async fn send_knock_answer(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        event_id: &str,
        body: Value,
    ) -> Result<Value> {
        let pdu = self.accept_signed_membership(origin, room_id, event_id, body, "knock").await?;
        let r = room_id.to_owned();
        let stripped = self.blocking(move |hs| hs.stripped_state(&r, &pdu.event_id)).await?;
        Ok(json!({ "knock_room_state": stripped }))
    }

    /// `/invite` from `origin` for one of our users: checked, countersigned, and the signed
    /// event returned.
    pub async fn invite_from(
        self: &Arc<Self>,
        origin: &str,
        room_id: &str,
        event_id: &str,
        body: Value,
    ) -> Result<Value> {
        let version = body.get("room_version").and_then(Value::as_str).unwrap_or("1").to_owned();
        let Some(rules) = crate::inbound::format::rules_of(&version)
            .filter(|_| super::SUPPORTED_VERSIONS.contains(&version.as_str()))
        else {
            return Err(Error::new(
                crate::ErrorKind::IncompatibleRoomVersion,
                format!("Room version {version} is not supported here"),
            ));
        };
        let event = body.get("event").ok_or_else(|| Error::bad_json("event missing"))?;
        if event.get("room_id").and_then(Value::as_str) != Some(room_id) {
            return Err(Error::bad_json("The event is for another room"));
        }
        // A server the room's ACL bans may not invite into it (known when this server is in it).
        self.check_acl(room_id, origin).await?;
        let pdu = self.verify_pdu(&rules, event).await.map_err(Error::forbidden)?;
        if pdu.event_id != event_id {
            return Err(Error::bad_json("The event id does not match the event"));
        }
        let stripped = body.get("invite_room_state").and_then(Value::as_array).cloned().unwrap_or_default();
        let o = origin.to_owned();
        let signed = self.blocking(move |hs| hs.receive_invite(&o, &version, &pdu, stripped)).await?;
        Ok(json!({ "event": signed.json }))
    }
}
