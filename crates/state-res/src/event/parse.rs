//! Building an [`AuthEvent`] from a PDU's JSON.

use serde_json::{Map, Value};

use super::{
    AuthEvent, Content, CreateContent, EventNid, EventType, JoinRule, MemberContent, Membership, PowerLevels,
    ThirdPartySigned, is_valid_user_id,
};
use crate::{Error, RoomVersion};

impl AuthEvent {
    /// Reads the fields the rules need from a PDU. `event_id` is passed in because from v3 on
    /// it is not part of the PDU but its reference hash; `intern` maps the event ids that
    /// `auth_events` and `prev_events` name to the caller's [`EventNid`]s.
    ///
    /// Fails only if the PDU lacks what every event has (`type`, `sender`, …); content that
    /// breaks the rules is kept, marked, and rejected by authorization.
    pub fn from_json(
        version: &RoomVersion,
        event_id: &str,
        pdu: &Value,
        mut intern: impl FnMut(&str) -> EventNid,
    ) -> Result<Self, Error> {
        let malformed = |what: &str| Error::MalformedEvent(format!("{event_id}: {what}"));
        let obj = pdu.as_object().ok_or_else(|| malformed("not an object"))?;
        let str_field = |key: &str| obj.get(key).and_then(Value::as_str);
        let kind = EventType::parse(str_field("type").ok_or_else(|| malformed("no `type`"))?);
        let sender = str_field("sender").ok_or_else(|| malformed("no `sender`"))?;
        let state_key = match obj.get("state_key") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str().into()),
            Some(_) => return Err(malformed("`state_key` is not a string")),
        };
        let ids = |key: &str, intern: &mut dyn FnMut(&str) -> EventNid| -> Result<Box<[EventNid]>, Error> {
            let Some(list) = obj.get(key) else { return Ok(Box::new([])) };
            let list = list.as_array().ok_or_else(|| malformed(key))?;
            list.iter()
                .map(|item| {
                    // v1–v2 reference events as `[event_id, {hashes}]`.
                    let id = item.as_str().or_else(|| item.get(0).and_then(Value::as_str));
                    id.map(&mut *intern).ok_or_else(|| malformed(key))
                })
                .collect()
        };
        let empty = Map::new();
        let content = obj.get("content").and_then(Value::as_object).unwrap_or(&empty);
        let content = match kind {
            EventType::Create => Content::Create(parse_create(content)),
            EventType::Member => Content::Member(parse_member(content)),
            EventType::PowerLevels => Content::PowerLevels(PowerLevels::from_content(content, version).map(Box::new)),
            EventType::JoinRules => Content::JoinRules(parse_join_rule(content)),
            EventType::ThirdPartyInvite => Content::ThirdPartyInvite(parse_public_keys(content)),
            EventType::Redaction => Content::Redaction(
                content.get("redacts").or_else(|| obj.get("redacts")).and_then(Value::as_str).map(Into::into),
            ),
            _ => Content::Other,
        };
        Ok(AuthEvent {
            nid: intern(event_id),
            event_id: event_id.into(),
            room_id: str_field("room_id").map(Into::into),
            sender: sender.into(),
            kind,
            state_key,
            origin_server_ts: obj.get("origin_server_ts").and_then(as_int).unwrap_or(0),
            depth: obj.get("depth").and_then(as_int).unwrap_or(0),
            prev_events: ids("prev_events", &mut intern)?,
            auth_events: ids("auth_events", &mut intern)?,
            rejected: false,
            content,
        })
    }
}

fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_u64().map(|_| i64::MAX))
}

fn parse_create(c: &Map<String, Value>) -> CreateContent {
    let additional_creators = match c.get("additional_creators") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().filter(|s| is_valid_user_id(s)).map(Into::into).ok_or(())).collect()
        }
        Some(_) => Err(()),
    };
    CreateContent {
        creator: c.get("creator").and_then(Value::as_str).map(Into::into),
        unknown_room_version: c.get("room_version").is_some_and(|v| v.as_str().and_then(RoomVersion::known).is_none()),
        federate: c.get("m.federate").and_then(Value::as_bool).unwrap_or(true),
        additional_creators,
    }
}

fn parse_member(c: &Map<String, Value>) -> MemberContent {
    let membership = c.get("membership").and_then(Value::as_str).map(|m| match m {
        "join" => Membership::Join,
        "invite" => Membership::Invite,
        "leave" => Membership::Leave,
        "ban" => Membership::Ban,
        "knock" => Membership::Knock,
        _ => Membership::Unknown,
    });
    let join_authorised_via_users_server =
        c.get("join_authorised_via_users_server").map(|v| v.as_str().unwrap_or("").into());
    let third_party_invite = c.get("third_party_invite").map(|tpi| {
        tpi.get("signed").and_then(Value::as_object).map(|signed| ThirdPartySigned {
            mxid: signed.get("mxid").and_then(Value::as_str).map(Into::into),
            token: signed.get("token").and_then(Value::as_str).map(Into::into),
            json: signed.clone(),
        })
    });
    MemberContent { membership, join_authorised_via_users_server, third_party_invite }
}

fn parse_join_rule(c: &Map<String, Value>) -> JoinRule {
    // Synapse reads a missing `join_rule` as `invite`.
    let Some(rule) = c.get("join_rule") else { return JoinRule::Invite };
    match rule.as_str() {
        Some("public") => JoinRule::Public,
        Some("invite") => JoinRule::Invite,
        Some("knock") => JoinRule::Knock,
        Some("restricted") => JoinRule::Restricted,
        Some("knock_restricted") => JoinRule::KnockRestricted,
        Some("private") => JoinRule::Private,
        _ => JoinRule::Unknown,
    }
}

fn parse_public_keys(c: &Map<String, Value>) -> Vec<Box<str>> {
    let mut keys: Vec<Box<str>> = Vec::new();
    if let Some(k) = c.get("public_key").and_then(Value::as_str) {
        keys.push(k.into());
    }
    for entry in c.get("public_keys").and_then(Value::as_array).into_iter().flatten() {
        if let Some(k) = entry.get("public_key").and_then(Value::as_str) {
            keys.push(k.into());
        }
    }
    keys
}
