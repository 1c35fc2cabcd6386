//! Indexes added after a database was first written, built once when it is opened.

use serde_json::Value;
use tandem_storage::{Batch, Db, Result};

use crate::tables::{CURRENT_STATE, META, PDUS, REMOTE_MEMBERS, key, split};

const REMOTE_MEMBERS_BUILT: &[u8] = b"upgrade/remote_members";

/// Builds what a database written by an older version lacks.
pub(crate) fn upgrade(db: &Db, server_name: &str) -> Result<()> {
    if db.get(META, REMOTE_MEMBERS_BUILT)?.is_none() {
        remote_members(db, server_name)?;
    }
    Ok(())
}

/// [`REMOTE_MEMBERS`] from every room's current state.
fn remote_members(db: &Db, server_name: &str) -> Result<()> {
    let mut batch = Batch::new();
    for entry in db.scan_prefix(CURRENT_STATE, &[])? {
        let (k, v) = entry?;
        let parts = split(&k);
        let [room, "m.room.member", user] = parts[..] else { continue };
        if user.split_once(':').is_none_or(|(_, s)| s == server_name) {
            continue;
        }
        let Some(pdu) = db.get(PDUS, &v)? else { continue };
        let joined = serde_json::from_slice::<Value>(&pdu)
            .ok()
            .is_some_and(|p| p.pointer("/content/membership").and_then(Value::as_str) == Some("join"));
        if joined {
            batch.put(REMOTE_MEMBERS, key(&[user, room]), Vec::new());
        }
    }
    batch.put(META, REMOTE_MEMBERS_BUILT.to_vec(), Vec::new());
    db.write(batch)
}
