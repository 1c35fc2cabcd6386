//! Making a local event: fill in the PDU fields, pick its auth events, authorize it against
//! the room's current state, hash, sign and id it, and add it to the write with its indexes.

use ruma::room_version_rules::RoomVersionRules;
use serde_json::{Map, Value, json};
use tandem_state_res::{AuthEvent, EventType, auth_types_for_event, authorize};

use super::{EventMeta, MembershipRow, Room};
use crate::error::{Error, ErrorKind, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::txns::ClientTxn;
use crate::tables::{self, events};

/// The spec's limit on a PDU's size.
pub use tandem_wire::MAX_PDU_BYTES;

/// An event a local user sends.
pub(crate) struct NewEvent<'a> {
    pub kind: &'a str,
    pub state_key: Option<&'a str>,
    pub content: Value,
    pub redacts: Option<&'a str>,
    /// The sending device and its transaction, for idempotence and `unsigned.transaction_id`.
    pub txn: Option<SentBy<'a>>,
}

/// A client transaction: the device, its transaction id and the endpoint it was sent to.
/// Idempotence is per endpoint path, as Synapse keys it: the same id used to send to another
/// room, or another event type, is another transaction.
#[derive(Clone, Copy)]
pub(crate) struct SentBy<'a> {
    pub device_id: &'a str,
    pub txn_id: &'a str,
    /// The request path without the transaction id (`send/{room}/{type}`, `redact/{room}/{event}`).
    pub scope: &'a str,
}

impl SentBy<'_> {
    /// The client transaction `sender` made.
    pub(crate) fn of<'b>(&'b self, sender: &'b str) -> ClientTxn<'b> {
        ClientTxn { sender, device_id: self.device_id, scope: self.scope, txn_id: self.txn_id }
    }
}

impl<'a> NewEvent<'a> {
    pub fn state(kind: &'a str, state_key: &'a str, content: Value) -> Self {
        NewEvent { kind, state_key: Some(state_key), content, redacts: None, txn: None }
    }
}

impl Homeserver {
    /// Builds, authorizes and stages one event; returns its id. Nothing is written if this
    /// fails, and the caller's write is dropped with everything it staged.
    pub(crate) fn append(&self, txn: &mut Txn, room: &mut Room, sender: &str, new: NewEvent<'_>) -> Result<String> {
        let is_create = new.kind == "m.room.create" && new.state_key == Some("");
        let state_key = new.state_key;
        let sent_by = new.txn;
        let (obj, mut draft) = self.draft(room, sender, new, Some(&txn.nids))?;
        let relates_to = obj.get("content").and_then(relation_target);
        let (event_id, bytes) = self.sign_event(room, obj)?;
        if is_create && room.version.room_id_is_create_event_id {
            room.id = format!("!{}", &event_id[1..]);
        }
        let before = room.info.state_group;
        self.stage(txn, room, &event_id, bytes, &mut draft, state_key, sent_by, relates_to)?;
        self.enqueue_pdu(txn, room, before, &event_id, &[])?;
        Ok(event_id)
    }

    /// An event's PDU fields but `hashes` and `signatures`, with its auth events picked from
    /// the room's current state, authorized against that state. A local event is then signed;
    /// a `make_join`/`make_leave`/`make_knock` template goes to another server to sign.
    pub(crate) fn draft(
        &self,
        room: &Room,
        sender: &str,
        new: NewEvent<'_>,
        pending: Option<&super::nids::Pending>,
    ) -> Result<(Map<String, Value>, AuthEvent)> {
        if !new.content.is_object() {
            return Err(Error::bad_json("content must be a JSON object"));
        }
        let is_create = new.kind == "m.room.create" && new.state_key == Some("");
        let mut obj = Map::new();
        obj.insert("type".into(), new.kind.into());
        obj.insert("sender".into(), sender.into());
        obj.insert("origin_server_ts".into(), Self::now_ms().into());
        obj.insert("depth".into(), (room.info.depth + 1).into());
        obj.insert("prev_events".into(), cited(&room.rules, &room.info.extremities));
        if let Some(sk) = new.state_key {
            obj.insert("state_key".into(), sk.into());
        }
        if !(is_create && room.version.room_id_is_create_event_id) {
            obj.insert("room_id".into(), room.id.clone().into());
        }
        let mut content = new.content;
        if let Some(target) = new.redacts {
            if room.rules.redaction.content_field_redacts {
                content["redacts"] = target.into();
            } else {
                obj.insert("redacts".into(), target.into());
            }
        }
        obj.insert("content".into(), content);

        let nid_of = self.nid_of(pending);
        let mut draft = AuthEvent::from_json(&room.version, "$draft", &Value::Object(obj.clone()), &nid_of)
            .map_err(|e| Error::bad_json(e.to_string()))?;
        let mut auth_ids = Vec::new();
        for (kind, state_key) in auth_types_for_event(&room.version, &draft) {
            if let Some(id) = room.state_id(self, kind.as_str(), &state_key)? {
                auth_ids.push(id);
            }
        }
        // The view staged and stored with the event (its auth edges, which resolution walks)
        // cites what the event cites.
        draft.auth_events = auth_ids.iter().map(|id| nid_of(id)).collect();
        obj.insert("auth_events".into(), cited(&room.rules, &auth_ids));
        let lookup =
            |kind: &EventType, state_key: &str| room.state_event(self, kind.as_str(), state_key).ok().flatten();
        authorize(&room.version, &draft, &lookup).map_err(|r| Error::forbidden(r.0))?;
        Ok((obj, draft))
    }

    /// Hashes and signs a drafted event: its id and its canonical JSON.
    pub(crate) fn sign_event(&self, room: &Room, obj: Map<String, Value>) -> Result<(String, String)> {
        let mut canonical = ruma::canonical_json::try_from_json_map(obj)
            .map_err(|e| Error::bad_json(format!("event is not canonical JSON: {e}")))?;
        let event_id = crate::pdu::hash_sign_and_id(&room.rules, &self.server_name, &self.key, &mut canonical)
            .map_err(|e| match e {
                crate::pdu::PduError::Json(ruma::signatures::JsonError::PduTooLarge) => {
                    Error::new(ErrorKind::TooLarge, "event too large")
                }
                e => Error::bad_json(e.to_string()),
            })?;
        let bytes = ruma::CanonicalJsonValue::Object(canonical).to_string();
        if bytes.len() > MAX_PDU_BYTES {
            return Err(Error::new(ErrorKind::TooLarge, "event too large"));
        }
        Ok((event_id, bytes))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stage(
        &self,
        txn: &mut Txn,
        room: &mut Room,
        event_id: &str,
        pdu: String,
        event: &mut AuthEvent,
        state_key: Option<&str>,
        sent_by: Option<SentBy<'_>>,
        relates_to: Option<String>,
    ) -> Result<()> {
        let pos = txn.pos();
        let before = room.info.state_group;
        let kind = event.kind.as_str().to_owned();
        let mut prev_state = None;
        let after = match state_key {
            Some(sk) => {
                prev_state = room.state_id(self, &kind, sk)?;
                room.put_current(self, txn, &kind, sk, event_id, event.membership().map(|m| m.as_str()));
                room.push_state(self, txn, &kind, sk, event_id)?
            }
            None => before,
        };
        let meta = EventMeta {
            room_id: room.id.clone(),
            pos,
            before,
            after,
            prev_state,
            device_id: sent_by.map(|s| s.device_id.to_owned()),
            txn_id: sent_by.map(|s| s.txn_id.to_owned()),
            redacted_by: None,
            related: false,
            outlier: false,
            rejected: None,
            soft_failed: false,
            backfilled: false,
        };
        if let (Some(target), Some(membership)) = (state_key, event.membership())
            && event.kind == EventType::Member
            && self.is_local(target)
        {
            let row = MembershipRow {
                membership: membership.as_str().to_owned(),
                event_id: event_id.to_owned(),
                pos,
                forgotten: false,
            };
            tables::rooms::put_membership(&mut txn.batch, target, &room.id, &row);
        }
        if let Some(sent_by) = sent_by {
            sent_by.of(&event.sender).put(&mut txn.batch, event_id);
        }
        event.event_id = event_id.into();
        self.index_event(txn, room, event_id, pdu, event, &meta, relates_to)?;
        room.info.extremities = vec![event_id.to_owned()];
        room.info.depth += 1;
        room.info.last_pos = pos;
        tables::rooms::put_info(&mut txn.batch, &room.id, &room.info);
        room.add_pending(self, txn, event.clone())
    }

    /// Writes an event with its metadata, and, unless it is kept out of the timeline, its
    /// timeline entry and what it does to other events (redactions, relations).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn index_event(
        &self,
        txn: &mut Txn,
        room: &Room,
        event_id: &str,
        pdu: String,
        event: &AuthEvent,
        meta: &EventMeta,
        relates_to: Option<String>,
    ) -> Result<()> {
        let pdu_text = pdu;
        let state_key = event.state_key().map(|sk| (event.kind.as_str(), sk));
        txn.store_pdu(self, event_id, state_key, pdu_text.clone().into_bytes())?;
        txn.reindexed.push(event_id.to_owned());
        events::put_meta(&mut txn.batch, event_id, meta);
        if meta.outlier || meta.soft_failed || meta.rejected.is_some() {
            return Ok(());
        }
        events::TIMELINE.put(&mut txn.batch, &room.id, meta.pos, event_id);
        self.stage_push_pending(txn, &room.id, event_id, meta.pos);
        events::put_timestamp(&mut txn.batch, &room.id, event.origin_server_ts, event_id);
        if let tandem_state_res::Content::Redaction(Some(target)) = &event.content {
            let auth_ids = serde_json::from_str::<Value>(&pdu_text)
                .map(|p| crate::inbound::event_ids(&p, "auth_events"))
                .unwrap_or_default();
            self.stage_redaction(txn, room, target, event, &auth_ids)?;
        }
        // Redactions that arrived before this event take effect now, if they may.
        for redaction_id in events::take_pending_redactions(&self.db, &mut txn.batch, event_id)? {
            let (Ok(redaction), Some(pdu)) = (room.auth_event(self, &redaction_id), self.pdu(&redaction_id)?) else {
                continue;
            };
            let auth_ids = crate::inbound::event_ids(&Value::Object(pdu), "auth_events");
            self.apply_redaction(txn, room, event_id, event.sender.clone(), meta.clone(), &redaction, &auth_ids)?;
        }
        // Joining or leaving changes who must track whose devices (`device_lists` in `/sync`).
        if event.kind == EventType::Member
            && let Some(target) = event.state_key()
        {
            let joined = |e: Option<&AuthEvent>| e.and_then(|e| e.membership()).is_some_and(|m| m.as_str() == "join");
            let before = match &meta.prev_state {
                Some(id) => Some(room.auth_event(self, id)?),
                None => None,
            };
            if joined(Some(event)) != joined(before.as_deref()) {
                self.note_key_change(txn, target);
            }
        }
        if let Some(target) = relates_to {
            events::RELATIONS.put(&mut txn.batch, &target, meta.pos, event_id);
            if let Some(mut target_meta) = self.event_meta(&target)?
                && !target_meta.related
            {
                target_meta.related = true;
                events::put_meta(&mut txn.batch, &target, &target_meta);
            }
        }
        Ok(())
    }

    /// Marks the target of a redaction, if it is an event of this room and the redaction may
    /// take effect; a redaction of an event not seen yet waits for it.
    pub(crate) fn stage_redaction(
        &self,
        txn: &mut Txn,
        room: &Room,
        target: &str,
        redaction: &AuthEvent,
        auth_ids: &[String],
    ) -> Result<()> {
        let Some(meta) = self.event_meta(target)? else {
            events::put_pending_redaction(&mut txn.batch, target, &redaction.event_id);
            return Ok(());
        };
        let target_sender = match room.auth_event(self, target) {
            Ok(e) => e.sender.clone(),
            Err(_) => return Ok(()),
        };
        self.apply_redaction(txn, room, target, target_sender, meta, redaction, auth_ids)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_redaction(
        &self,
        txn: &mut Txn,
        room: &Room,
        target: &str,
        target_sender: Box<str>,
        mut meta: EventMeta,
        redaction: &AuthEvent,
        auth_ids: &[String],
    ) -> Result<()> {
        if meta.room_id != room.id || meta.redacted_by.is_some() {
            return Ok(());
        }
        if !self.redaction_may_apply(room, redaction, auth_ids, &target_sender)? {
            tracing::info!(room_id = %room.id, redaction_id = %redaction.event_id, %target,
                "a redaction by someone who may not redact its target is kept, not applied");
            return Ok(());
        }
        meta.redacted_by = Some(redaction.event_id.to_string());
        events::put_meta(&mut txn.batch, target, &meta);
        Ok(())
    }

    /// The spec's rule for applying a redaction (room versions 3 on leave it to servers; the
    /// authorization rules of 1 and 2 say the same): its sender is of the same server as the
    /// target's sender, or has the redact level in the state the redaction was authorized
    /// against, which its auth events (create, power levels) carry.
    fn redaction_may_apply(
        &self,
        room: &Room,
        redaction: &AuthEvent,
        auth_ids: &[String],
        target_sender: &str,
    ) -> Result<bool> {
        let server = |user: &str| user.split_once(':').map(|(_, s)| s.to_owned());
        if server(&redaction.sender).is_some() && server(&redaction.sender) == server(target_sender) {
            return Ok(true);
        }
        let (mut create, mut levels) = (None, None);
        for id in auth_ids {
            let Ok(event) = room.auth_event(self, id) else { continue };
            match event.kind {
                EventType::Create => create = Some(event),
                EventType::PowerLevels => levels = Some(event),
                _ => {}
            }
        }
        let pl = levels.as_deref().and_then(|e| e.power_levels());
        let power = tandem_state_res::user_power(&room.version, create.as_deref(), pl, &redaction.sender);
        Ok(power >= pl.map_or(50, |p| p.redact()))
    }
}

/// The event a content relates to: `m.relates_to.event_id` with a `rel_type` (replies, which
/// have no `rel_type`, are not relations).
pub(crate) fn relation_target(content: &Value) -> Option<String> {
    let rel = content.get("m.relates_to")?;
    rel.get("rel_type")?.as_str()?;
    rel.get("event_id")?.as_str().map(str::to_owned)
}

/// Events an event cites (`prev_events`, `auth_events`): ids, or in room versions 1 and 2
/// `[id, hashes]` pairs, whose hashes no one checks and which Synapse leaves empty too.
pub(crate) fn cited(rules: &RoomVersionRules, ids: &[String]) -> Value {
    if rules.event_format.require_event_id {
        Value::Array(ids.iter().map(|id| json!([id, {}])).collect())
    } else {
        json!(ids)
    }
}
