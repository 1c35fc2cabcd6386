//! Making a PDU: content hash, signature by this server, and (from room version 3) the event id
//! as the reference hash of the signed event.

use ruma::CanonicalJsonObject;
use ruma::room_version_rules::RoomVersionRules;

use crate::server_key::ServerKey;

pub use tandem_wire::pdu::{PduError, event_id};

/// Adds `hashes` and this server's signature to `event` (which holds every PDU field but
/// those two) and returns its event id: in room versions 1 and 2 the one it carries (a new one
/// of this server if it has none), `$` and its reference hash from version 3 on.
pub fn hash_sign_and_id(
    rules: &RoomVersionRules,
    origin: &str,
    key: &ServerKey,
    event: &mut CanonicalJsonObject,
) -> Result<String, PduError> {
    if rules.event_format.require_event_id && !event.contains_key("event_id") {
        // Versions 1 and 2: the id is chosen by the server that signs the event, and names it.
        let id = format!("${}:{origin}", crate::server::Homeserver::random_string(18));
        event.insert("event_id".into(), ruma::CanonicalJsonValue::String(id));
    }
    ruma::signatures::hash_and_sign_event(origin, key.pair(), event, &rules.redaction)?;
    event_id(rules, event)
}
