//! Step 1: a valid event of a room this server takes events of. Only rooms one of our users is
//! in (a room everyone here left is no business of ours any more, and must cost nothing), of a
//! version this server supports, from a server the room's ACL admits; then the event's own form
//! (canonical JSON, fields, sizes, its id), checked by `tandem_wire` without I/O.

use std::sync::Arc;

use ruma::room_version_rules::RoomVersionRules;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::server::Homeserver;

/// The room a PDU is for, as this server takes it.
pub(crate) struct Target {
    pub room_id: String,
    pub rules: RoomVersionRules,
    /// Whether the room's server ACL admits the sending server.
    pub acl_admits: bool,
}

/// The rules of a room version, if it is one this server knows.
pub fn rules_of(version: &str) -> Option<RoomVersionRules> {
    ruma::RoomVersionId::try_from(version).ok()?.rules()
}

/// [`rules_of`], as an error the other server is told.
pub(crate) fn rules_or_refuse(version: &str) -> Result<RoomVersionRules> {
    rules_of(version).ok_or_else(|| Error::bad_json(format!("unsupported room version {version}")))
}

/// The event's form, its id and the servers whose signatures it needs.
pub(crate) fn check(rules: &RoomVersionRules, pdu: &Value) -> Result<tandem_wire::Format> {
    tandem_wire::check_format(rules, pdu).map_err(|e| Error::bad_json(e.to_string()))
}

impl Homeserver {
    /// The room `pdu` is for, if this server takes PDUs of it from `origin` (one read).
    pub(crate) async fn pdu_target(self: &Arc<Self>, origin: &str, pdu: &Value) -> Result<Target> {
        let room_id = pdu
            .get("room_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::bad_json("the event has no room_id"))?
            .to_owned();
        let (r, o) = (room_id.clone(), origin.to_owned());
        let found = self
            .blocking(move |hs| {
                if !hs.is_resident(&r)? {
                    return Ok(None);
                }
                Ok(Some((hs.room_version(&r)?, hs.acl_admits(&r, &o)?)))
            })
            .await?;
        let Some((version, acl_admits)) = found else {
            return Err(Error::forbidden(format!("this server is not in room {room_id}")));
        };
        Ok(Target { room_id, rules: rules_or_refuse(&version)?, acl_admits })
    }
}
