//! Indexes added after a database was first written, built once when it is opened.

use serde_json::Value;
use tandem_storage::{Batch, Db, Result};

use crate::tables::{CURRENT_STATE, MEDIA, MEDIA_USAGE, META, PDUS, REMOTE_MEMBERS, key, split};

const REMOTE_MEMBERS_BUILT: &[u8] = b"upgrade/remote_members";
const MEDIA_USAGE_BUILT: &[u8] = b"upgrade/media_usage";

/// Builds what a database written by an older version lacks.
pub(crate) fn upgrade(db: &Db, server_name: &str) -> Result<()> {
    if db.get(META, REMOTE_MEMBERS_BUILT)?.is_none() {
        remote_members(db, server_name)?;
    }
    if db.get(META, MEDIA_USAGE_BUILT)?.is_none() {
        media_usage(db)?;
    }
    Ok(())
}

/// [`MEDIA_USAGE`] from every upload's metadata.
fn media_usage(db: &Db) -> Result<()> {
    let mut usage: std::collections::BTreeMap<String, u64> = Default::default();
    for entry in db.scan_prefix(MEDIA, &[])? {
        let (_, v) = entry?;
        let Ok(info) = serde_json::from_slice::<Value>(&v) else { continue };
        if let (Some(user), Some(size)) = (info["uploader"].as_str(), info["size"].as_u64()) {
            *usage.entry(user.to_owned()).or_default() += size;
        }
    }
    let mut batch = Batch::new();
    for (user, bytes) in usage {
        batch.put(MEDIA_USAGE, key(&[&user]), bytes.to_string().into_bytes());
    }
    batch.put(META, MEDIA_USAGE_BUILT.to_vec(), Vec::new());
    db.write(batch)
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
