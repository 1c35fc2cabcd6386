//! `m.room.server_acl`: which servers may take part in a room. Checked for every PDU and EDU a
//! server sends about a room, and for every request it makes about one.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::push::glob;
use crate::server::Homeserver;
use crate::server_name::{ip_literal, split_server_name};

/// The spec's server ACL rules: `deny` first, then `allow`, then IP literals if disallowed.
pub fn acl_allows(content: &Value, server: &str) -> bool {
    let host = split_server_name(server).map_or(server, |(h, _)| h);
    let list = |field: &str| -> Vec<String> {
        content
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    if content.get("allow_ip_literals").and_then(Value::as_bool) == Some(false) && ip_literal(host).is_some() {
        return false;
    }
    if list("deny").iter().any(|p| glob(p, host)) {
        return false;
    }
    list("allow").iter().any(|p| glob(p, host))
}

impl Homeserver {
    /// Whether the room's current server ACL admits `server` (every server, without one).
    pub fn acl_admits(&self, room_id: &str, server: &str) -> Result<bool> {
        let Some(id) = self.current_state_id(room_id, "m.room.server_acl", "")? else { return Ok(true) };
        Ok(match self.pdu(&id)?.and_then(|p| p.get("content").cloned()) {
            Some(content) => acl_allows(&content, server),
            None => true,
        })
    }

    /// [`Homeserver::acl_admits`], as the error another server is given.
    pub async fn check_acl(self: &Arc<Self>, room_id: &str, server: &str) -> Result<()> {
        let (r, s) = (room_id.to_owned(), server.to_owned());
        if self.blocking(move |hs| hs.acl_admits(&r, &s)).await? {
            Ok(())
        } else {
            Err(Error::forbidden(format!("{server} is banned from this room by its server ACL")))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_acls() {
        let acl = json!({ "allow": ["*"], "deny": ["evil.org", "*.evil.org"], "allow_ip_literals": false });
        assert!(acl_allows(&acl, "good.org"));
        assert!(!acl_allows(&acl, "evil.org:8448"));
        assert!(!acl_allows(&acl, "a.evil.org"));
        assert!(!acl_allows(&acl, "127.0.0.1:8481"));
        assert!(!acl_allows(&json!({}), "good.org"));
        assert!(acl_allows(&json!({ "allow": ["127.0.0.1"] }), "127.0.0.1:8481"));
    }
}
