//! Indexes added after a database was first written, built once when it is opened.

use serde_json::Value;
use tandem_storage::{Batch, Db, Result};

use crate::tables::{events, meta, rooms};

const REMOTE_MEMBERS_BUILT: &[u8] = b"upgrade/remote_members";
const MEDIA_USAGE_BUILT: &[u8] = b"upgrade/media_usage";
const NIDS_BUILT: &[u8] = b"upgrade/nids";

/// Builds what a database written by an older version lacks.
pub(crate) fn upgrade(db: &Db, server_name: &str) -> Result<()> {
    if !meta::is_set(db, REMOTE_MEMBERS_BUILT)? {
        remote_members(db, server_name)?;
    }
    if !meta::is_set(db, MEDIA_USAGE_BUILT)? {
        media_usage(db)?;
    }
    if !meta::is_set(db, NIDS_BUILT)? {
        nids(db)?;
    }
    Ok(())
}

/// Each user's media usage from every upload's metadata.
fn media_usage(db: &Db) -> Result<()> {
    let mut batch = Batch::new();
    crate::media::index_usage(db, &mut batch)?;
    meta::set(&mut batch, MEDIA_USAGE_BUILT);
    db.write(batch)
}

/// The index of other servers' users joined to rooms (`tables::rooms::set_remote_member`), from every
/// room's current state.
fn remote_members(db: &Db, server_name: &str) -> Result<()> {
    let mut batch = Batch::new();
    for (room, kind, user, event_id) in rooms::each_current(db)? {
        if kind != "m.room.member" || user.split_once(':').is_none_or(|(_, s)| s == server_name) {
            continue;
        }
        let Some(pdu) = events::pdu(db, &event_id)? else { continue };
        let joined = serde_json::from_slice::<Value>(&pdu)
            .ok()
            .is_some_and(|p| p.pointer("/content/membership").and_then(Value::as_str) == Some("join"));
        if joined {
            rooms::set_remote_member(&mut batch, &user, &room, true);
        }
    }
    meta::set(&mut batch, REMOTE_MEMBERS_BUILT);
    db.write(batch)
}

/// Nids for every stored event and state key, and state groups (JSON maps of names before)
/// rewritten as vectors of nids. Written in slices so that no batch holds the whole database.
fn nids(db: &Db) -> Result<()> {
    use crate::rooms::nids::{Nids, Pending};
    use tandem_state_res::StateKeyNid;

    #[derive(serde::Deserialize)]
    struct NamedGroup {
        parent: Option<u64>,
        delta: Vec<(String, String, String)>,
    }
    let corrupt = |what: String| tandem_storage::Error::Corrupt { table: "nids", what };
    let nids = Nids::open(db)?;
    let mut pending = Pending::default();
    let mut batch = Batch::new();
    let flush = |pending: &mut Pending, batch: &mut Batch| -> Result<()> {
        nids.put_counters(pending, batch);
        db.write(std::mem::take(batch))?;
        nids.commit(std::mem::take(pending));
        Ok(())
    };
    for entry in events::each_pdu(db)? {
        let (id, v) = entry?;
        let pdu: Value = serde_json::from_slice(&v).unwrap_or_default();
        nids.intern_event(&mut pending, &mut batch, &id).map_err(|e| corrupt(e.to_string()))?;
        if let (Some(kind), Some(sk)) = (pdu["type"].as_str(), pdu["state_key"].as_str()) {
            nids.intern_key(&mut pending, &mut batch, kind, sk).map_err(|e| corrupt(e.to_string()))?;
        }
        if batch.len() > 100_000 {
            flush(&mut pending, &mut batch)?;
        }
    }
    for entry in rooms::each_group(db)? {
        let (id, v) = entry?;
        let Ok(group) = serde_json::from_slice::<NamedGroup>(&v) else { continue };
        let mut entries: Vec<(StateKeyNid, tandem_state_res::EventNid)> = Vec::with_capacity(group.delta.len());
        for (kind, sk, id) in &group.delta {
            let key = nids.intern_key(&mut pending, &mut batch, kind, sk).map_err(|e| corrupt(e.to_string()))?;
            let event = nids.intern_event(&mut pending, &mut batch, id).map_err(|e| corrupt(e.to_string()))?;
            entries.push((key, event));
        }
        let map = tandem_state_res::StateMap::new(entries);
        rooms::put_group(&mut batch, id, crate::rooms::state::encode(group.parent, map.entries()));
        if batch.len() > 100_000 {
            flush(&mut pending, &mut batch)?;
        }
    }
    meta::set(&mut batch, NIDS_BUILT);
    flush(&mut pending, &mut batch)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tandem_storage::{Batch, Db};

    use crate::rooms::state::NamedState;
    use crate::server::Homeserver;
    use crate::server_key::ServerKey;
    use crate::tables::{ALL, events, rooms};

    /// A database whose state groups name their events (as before nids) opens with the same
    /// states, and the events stored before get nids that later ones do not collide with.
    #[test]
    fn named_state_groups_become_nid_groups() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(&dir.path().join("db"), ALL).unwrap();
            let mut batch = Batch::new();
            let create = json!({"type": "m.room.create", "state_key": "", "sender": "@a:x", "content": {}});
            let join = json!({"type": "m.room.member", "state_key": "@a:x", "sender": "@a:x", "content": {}});
            events::put_pdu(&mut batch, "$create", create.to_string().into_bytes());
            events::put_pdu(&mut batch, "$join", join.to_string().into_bytes());
            let snapshot = json!({"parent": null, "delta": [["m.room.create", "", "$create"]]});
            let delta = json!({"parent": 1, "delta": [["m.room.member", "@a:x", "$join"]]});
            rooms::put_group(&mut batch, 1, snapshot.to_string().into_bytes());
            rooms::put_group(&mut batch, 2, delta.to_string().into_bytes());
            db.write(batch).unwrap();
        }
        let hs = Homeserver::open(dir.path(), "x", ServerKey::generate("t")).unwrap();
        let named = hs.named_state(&hs.state_map(2).unwrap()).unwrap();
        let want = NamedState::from([
            (("m.room.create".into(), String::new()), "$create".into()),
            (("m.room.member".into(), "@a:x".into()), "$join".into()),
        ]);
        assert_eq!(named, want);
        let join = hs.nids.event_nid(None, "$join").unwrap().unwrap();
        let later = hs.write(|txn| txn.event_nid(&hs, "$later")).unwrap();
        assert!(later > join);
    }

    /// An older database's current state names another server's joined member: the index of
    /// remote members is built from it (it used to look the member event up by a key it is not
    /// stored under, and so never found one).
    #[test]
    fn remote_members_are_indexed_from_an_older_database() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(&dir.path().join("db"), ALL).unwrap();
            let mut batch = Batch::new();
            let join = json!({"type": "m.room.member", "state_key": "@b:y", "sender": "@b:y",
                "content": {"membership": "join"}});
            events::put_pdu(&mut batch, "$bjoin", join.to_string().into_bytes());
            rooms::put_current(&mut batch, "!r:x", "m.room.member", "@b:y", "$bjoin");
            db.write(batch).unwrap();
        }
        let hs = Homeserver::open(dir.path(), "x", ServerKey::generate("t")).unwrap();
        assert_eq!(rooms::remote_member_rooms(&hs.db, "@b:y").unwrap(), vec!["!r:x".to_owned()]);
    }
}
