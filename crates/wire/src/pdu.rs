//! A PDU as received: the checks of the spec's "Checks performed on receipt of a PDU" that
//! need no room — valid JSON of the allowed form, size, list lengths, its event id — then its
//! signatures and content hash once the caller has the keys ([`verify`]). The room's checks
//! (authorization, state, soft failure) are the engine's.

use ruma::CanonicalJsonObject;
use ruma::room_version_rules::{EventIdFormatVersion, RoomVersionRules};
use ruma::signatures::{PublicKeyMap, Verified};
use serde_json::Value;

use crate::{MAX_AUTH_EVENTS, MAX_PDU_BYTES, MAX_PREV_EVENTS, WireError};

/// A PDU whose form passed, with what checking its signatures needs.
#[derive(Debug)]
pub struct Format {
    pub event_id: String,
    pub object: CanonicalJsonObject,
    /// The servers whose signatures the spec requires, with the key ids each signed with.
    pub signers: Vec<(String, Vec<String>)>,
    /// `origin_server_ts`: the keys must have been valid then.
    pub origin_server_ts: u64,
}

/// The form checks of a PDU of a room with `rules`.
pub fn check_format(rules: &RoomVersionRules, pdu: &Value) -> Result<Format, WireError> {
    let bad = |why: String| WireError::Format(why);
    let object = pdu
        .as_object()
        .and_then(|o| ruma::canonical_json::try_from_json_map(o.clone()).ok())
        .ok_or_else(|| bad("the event is not canonical JSON".into()))?;
    // Its canonical JSON (what `CanonicalJsonValue`'s `Display` writes), without a copy.
    let size = serde_json::to_vec(&object).map_err(|e| bad(e.to_string()))?.len();
    if size > MAX_PDU_BYTES {
        return Err(bad(format!("the event is {size} bytes, over the limit of {MAX_PDU_BYTES}")));
    }
    check_fields(rules, pdu).map_err(bad)?;
    let event_id = event_id(rules, &object).map_err(|e| bad(e.to_string()))?;
    // Only the servers whose signatures the spec requires: one event must not make this
    // server fetch keys from every server it names.
    let required = required_signers(rules, pdu, &event_id).map_err(bad)?;
    let signers: Vec<(String, Vec<String>)> = pdu
        .get("signatures")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(server, _)| required.contains(server))
        .map(|(server, sigs)| {
            (server.clone(), sigs.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default())
        })
        .collect();
    if signers.len() < required.len() {
        return Err(bad("the event lacks the signature of a server that must sign it".into()));
    }
    let origin_server_ts = pdu.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
    Ok(Format { event_id, object, signers, origin_server_ts })
}

/// The fields every PDU has, of the right type and length (the spec's event format: ids and
/// types at most 255 bytes, integers where integers go, both event lists bounded).
fn check_fields(rules: &RoomVersionRules, pdu: &Value) -> Result<(), String> {
    let string = |field: &str, required: bool| -> Result<Option<&str>, String> {
        match pdu.get(field) {
            None if !required => Ok(None),
            Some(Value::String(s)) if s.len() <= 255 => Ok(Some(s)),
            Some(Value::String(_)) => Err(format!("{field} is longer than 255 bytes")),
            _ => Err(format!("{field} is missing or not a string")),
        }
    };
    let kind = string("type", true)?.unwrap_or_default();
    let sender = string("sender", true)?.unwrap_or_default();
    <&ruma::UserId>::try_from(sender).map_err(|e| format!("sender is not a user id: {e}"))?;
    let create_without_room = kind == "m.room.create" && !rules.event_format.require_room_create_room_id;
    if let Some(room) = string("room_id", !create_without_room)? {
        <&ruma::RoomId>::try_from(room).map_err(|e| format!("room_id is not a room id: {e}"))?;
    }
    string("event_id", rules.event_format.require_event_id)?;
    string("state_key", false)?;
    for field in ["origin_server_ts", "depth"] {
        if !pdu.get(field).is_some_and(|v| v.is_i64() || v.is_u64()) {
            return Err(format!("{field} is missing or not an integer"));
        }
    }
    if !pdu.get("content").is_some_and(Value::is_object) {
        return Err("content is missing or not an object".into());
    }
    if kind == "m.room.member"
        && (pdu.get("state_key").is_none() || !pdu.pointer("/content/membership").is_some_and(Value::is_string))
    {
        return Err("a membership event needs a state_key and content.membership".into());
    }
    if !pdu.pointer("/hashes/sha256").is_some_and(Value::is_string) {
        return Err("hashes.sha256 is missing".into());
    }
    for (field, max) in [("prev_events", MAX_PREV_EVENTS), ("auth_events", MAX_AUTH_EVENTS)] {
        let n = pdu.get(field).and_then(Value::as_array).map(Vec::len).ok_or(format!("{field} is not a list"))?;
        if n > max {
            return Err(format!("the event has {n} {field}, over the limit of {max}"));
        }
    }
    Ok(())
}

/// Checks the signatures of a PDU with the signers' `keys`, and its content hash. Returns
/// the PDU to keep: redacted if the content hash does not match, as the spec asks.
pub fn verify(rules: &RoomVersionRules, format: Format, keys: &PublicKeyMap) -> Result<Value, WireError> {
    let to_value = |o: CanonicalJsonObject| serde_json::to_value(o).map_err(|e| WireError::Format(e.to_string()));
    match ruma::signatures::verify_event(keys, &format.object, rules) {
        Ok(Verified::All) => to_value(format.object),
        Ok(Verified::Signatures) => {
            let redacted = ruma::canonical_json::redact(format.object, &rules.redaction, None)
                .map_err(|e| WireError::Format(e.to_string()))?;
            to_value(redacted)
        }
        Err(e) => Err(WireError::Signature(e.to_string())),
    }
}

/// Why an event has no id.
#[derive(Debug, thiserror::Error)]
pub enum PduError {
    #[error("the event cannot be hashed or signed: {0}")]
    Json(#[from] ruma::signatures::JsonError),
    #[error("a v1/v2 event must carry its event_id")]
    MissingEventId,
}

/// The id of a signed PDU: the one it carries in room versions 1 and 2, `$` and its
/// reference hash from version 3 on.
pub fn event_id(rules: &RoomVersionRules, event: &CanonicalJsonObject) -> Result<String, PduError> {
    match rules.event_id_format {
        EventIdFormatVersion::V1 => match event.get("event_id") {
            Some(ruma::CanonicalJsonValue::String(id)) => Ok(id.clone()),
            _ => Err(PduError::MissingEventId),
        },
        _ => Ok(format!("${}", ruma::signatures::reference_hash(event, rules)?)),
    }
}

/// The servers whose signatures an event must carry: the sender's, the event id's in room
/// versions 1 and 2 (ids named by their server), and where restricted joins exist, the server
/// of a `join_authorised_via_users_server` (on any event: ruma's signature check asks for it
/// whenever the field is there).
fn required_signers(rules: &RoomVersionRules, pdu: &Value, event_id: &str) -> Result<Vec<String>, String> {
    let user_server = |field: &str, id: &str| {
        <&ruma::UserId>::try_from(id).map(|u| u.server_name().to_string()).map_err(|e| format!("{field}: {e}"))
    };
    let mut out = vec![user_server("sender", pdu.get("sender").and_then(Value::as_str).unwrap_or_default())?];
    let mut add = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    if rules.signatures.check_event_id_server {
        let id = <&ruma::EventId>::try_from(event_id).map_err(|e| format!("event_id: {e}"))?;
        add(id.server_name().ok_or("event_id names no server")?.to_string());
    }
    if rules.signatures.check_join_authorised_via_users_server
        && let Some(authoriser) = pdu.pointer("/content/join_authorised_via_users_server")
    {
        let authoriser = authoriser.as_str().ok_or("join_authorised_via_users_server is not a string")?;
        add(user_server("join_authorised_via_users_server", authoriser)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(v: &str) -> RoomVersionRules {
        ruma::RoomVersionId::try_from(v).unwrap().rules().unwrap()
    }

    #[test]
    fn forms() {
        let v11 = rules("11");
        let pdu = json!({
            "type": "m.room.message", "room_id": "!r:a.org", "sender": "@u:a.org", "depth": 3,
            "origin_server_ts": 5, "content": { "body": "hi" }, "prev_events": [], "auth_events": [],
            "hashes": { "sha256": "x" }, "signatures": { "a.org": { "ed25519:k": "s" }, "b.org": { "ed25519:j": "t" } },
        });
        let f = check_format(&v11, &pdu).unwrap();
        assert!(f.event_id.starts_with('$'));
        assert_eq!(f.signers, vec![("a.org".to_owned(), vec!["ed25519:k".to_owned()])]);
        assert_eq!(f.origin_server_ts, 5);
        // Unsigned by the sender's server, too many prevs, too big, floats, not an object.
        let mut unsigned = pdu.clone();
        unsigned["signatures"] = json!({ "b.org": {} });
        assert!(check_format(&v11, &unsigned).is_err());
        let mut wide = pdu.clone();
        wide["prev_events"] = json!(vec!["$x"; 21]);
        assert!(check_format(&v11, &wide).is_err());
        let mut big = pdu.clone();
        big["content"]["body"] = "x".repeat(MAX_PDU_BYTES).into();
        assert!(check_format(&v11, &big).is_err());
        let mut float = pdu.clone();
        float["depth"] = json!(1.5);
        assert!(check_format(&v11, &float).is_err());
        assert!(check_format(&v11, &json!([])).is_err());
        // v1 ids are carried, and their server must sign too.
        assert!(check_format(&rules("1"), &pdu).is_err());
        let mut v1 = pdu.clone();
        v1["event_id"] = "$e:b.org".into();
        assert_eq!(check_format(&rules("1"), &v1).unwrap().signers.len(), 2);
        // No keys: the signature check fails, it does not panic.
        let f = check_format(&v11, &pdu).unwrap();
        assert!(matches!(verify(&v11, f, &PublicKeyMap::new()), Err(WireError::Signature(_))));
    }
}
