//! Making a PDU: content hash, signature by this server, and (from room version 3) the event id
//! as the reference hash of the signed event.

use ruma::CanonicalJsonObject;
use ruma::room_version_rules::{EventIdFormatVersion, RoomVersionRules};

use crate::server_key::ServerKey;

#[derive(Debug, thiserror::Error)]
pub enum PduError {
    #[error("the event cannot be hashed or signed: {0}")]
    Json(#[from] ruma::signatures::JsonError),
    #[error("a v1/v2 event must carry its event_id")]
    MissingEventId,
}

/// Adds `hashes` and this server's signature to `event` (which holds every PDU field but
/// those two) and returns its event id: the one it carries in room versions 1 and 2, `$` and
/// its reference hash from version 3 on.
pub fn hash_sign_and_id(
    rules: &RoomVersionRules,
    origin: &str,
    key: &ServerKey,
    event: &mut CanonicalJsonObject,
) -> Result<String, PduError> {
    ruma::signatures::hash_and_sign_event(origin, key.pair(), event, &rules.redaction)?;
    event_id(rules, event)
}

/// The id of a signed PDU.
pub fn event_id(rules: &RoomVersionRules, event: &CanonicalJsonObject) -> Result<String, PduError> {
    match rules.event_id_format {
        EventIdFormatVersion::V1 => match event.get("event_id") {
            Some(ruma::CanonicalJsonValue::String(id)) => Ok(id.clone()),
            _ => Err(PduError::MissingEventId),
        },
        _ => Ok(format!("${}", ruma::signatures::reference_hash(event, rules)?)),
    }
}
