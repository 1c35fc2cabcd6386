//! The room tables, and the only code that knows their keys: what is stored about each room,
//! its current state by name, state groups, users' memberships, the rooms other servers' users
//! are joined to, and the stripped state of rooms this server is not in.

use serde_json::Value;
use tandem_storage::{Batch, Db, Table};

use super::{key, key_pos, split};
use crate::error::Result;
use crate::rooms::{MembershipRow, RoomInfo};

/// room_id → [`RoomInfo`].
pub(super) const ROOMS: Table = Table("rooms");
/// room_id, type, state_key → event_id: the current state.
pub(super) const CURRENT_STATE: Table = Table("current_state");
/// group id → a state group: its parent and its entries (see `rooms::state`).
pub(super) const STATE_GROUPS: Table = Table("state_groups");
/// user_id, room_id → [`MembershipRow`]: a user's rooms.
pub(super) const MEMBERSHIPS: Table = Table("memberships");
/// user_id, room_id → "": the rooms other servers' users are joined to, as far as this server
/// is in them (whose presence and device lists concern us).
pub(super) const REMOTE_MEMBERS: Table = Table("remote_members");
/// membership event id → stripped state (JSON array) of a room this server is not in, for an
/// invite or knock from another server.
pub(super) const STRIPPED_STATE: Table = Table("stripped_state");

fn get_json<T: serde::de::DeserializeOwned>(db: &Db, table: Table, k: &[u8]) -> Result<Option<T>> {
    match db.get(table, k)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

fn put_json(batch: &mut Batch, table: Table, k: Vec<u8>, value: &impl serde::Serialize) {
    batch.put(table, k, serde_json::to_vec(value).expect("serializable"));
}

pub(crate) fn info(db: &Db, room_id: &str) -> Result<Option<RoomInfo>> {
    get_json(db, ROOMS, &key(&[room_id]))
}

pub(crate) fn put_info(batch: &mut Batch, room_id: &str, info: &RoomInfo) {
    put_json(batch, ROOMS, key(&[room_id]), info);
}

/// The event at `(kind, state_key)` in a room's current state.
pub(crate) fn current(db: &Db, room_id: &str, kind: &str, state_key: &str) -> Result<Option<String>> {
    Ok(db.get(CURRENT_STATE, &key(&[room_id, kind, state_key]))?.and_then(|v| String::from_utf8(v).ok()))
}

pub(crate) fn put_current(batch: &mut Batch, room_id: &str, kind: &str, state_key: &str, event_id: &str) {
    batch.put(CURRENT_STATE, key(&[room_id, kind, state_key]), event_id.as_bytes().to_vec());
}

pub(crate) fn delete_current(batch: &mut Batch, room_id: &str, kind: &str, state_key: &str) {
    batch.delete(CURRENT_STATE, key(&[room_id, kind, state_key]));
}

/// `(state_key, event_id)` of one type in a room's current state.
pub(crate) fn current_of_type(db: &Db, room_id: &str, kind: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in db.scan_prefix(CURRENT_STATE, &key(&[room_id, kind]))? {
        let (k, v) = entry?;
        if let (Some(state_key), Ok(event_id)) = (split(&k).get(2), String::from_utf8(v.into_vec())) {
            out.push((state_key.to_string(), event_id));
        }
    }
    Ok(out)
}

/// Every room's current state: `(room_id, type, state_key, event_id)`.
pub(crate) fn each_current(db: &Db) -> tandem_storage::Result<Vec<(String, String, String, String)>> {
    let mut out = Vec::new();
    for entry in db.scan_prefix(CURRENT_STATE, &[])? {
        let (k, v) = entry?;
        if let [room, kind, state_key] = split(&k)[..] {
            let event_id = String::from_utf8_lossy(&v).into_owned();
            out.push((room.to_owned(), kind.to_owned(), state_key.to_owned(), event_id));
        }
    }
    Ok(out)
}

fn group_key(id: u64) -> Vec<u8> {
    key_pos(&[], id)
}

/// A state group, as `rooms::state` encoded it.
pub(crate) fn group(db: &Db, id: u64) -> tandem_storage::Result<Option<Vec<u8>>> {
    db.get(STATE_GROUPS, &group_key(id))
}

pub(crate) fn put_group(batch: &mut Batch, id: u64, encoded: Vec<u8>) {
    batch.put(STATE_GROUPS, group_key(id), encoded);
}

/// Every state group: its id and its bytes.
pub(crate) fn each_group(
    db: &Db,
) -> tandem_storage::Result<impl Iterator<Item = tandem_storage::Result<(u64, Box<[u8]>)>> + '_> {
    Ok(db.scan_prefix(STATE_GROUPS, &[])?.map(|entry| {
        let (k, v) = entry?;
        Ok((super::trailing_pos(&k), v))
    }))
}

pub(crate) fn membership(db: &Db, user_id: &str, room_id: &str) -> Result<Option<MembershipRow>> {
    get_json(db, MEMBERSHIPS, &key(&[user_id, room_id]))
}

pub(crate) fn put_membership(batch: &mut Batch, user_id: &str, room_id: &str, row: &MembershipRow) {
    put_json(batch, MEMBERSHIPS, key(&[user_id, room_id]), row);
}

/// Every room a user has a membership in: `(room_id, row)`.
pub(crate) fn memberships(db: &Db, user_id: &str) -> Result<Vec<(String, MembershipRow)>> {
    let mut out = Vec::new();
    for entry in db.scan_prefix(MEMBERSHIPS, &key(&[user_id]))? {
        let (k, v) = entry?;
        if let Some(room) = split(&k).get(1) {
            out.push((room.to_string(), serde_json::from_slice(&v)?));
        }
    }
    Ok(out)
}

/// Records whether another server's user is joined to a room.
pub(crate) fn set_remote_member(batch: &mut Batch, user_id: &str, room_id: &str, joined: bool) {
    if joined {
        batch.put(REMOTE_MEMBERS, key(&[user_id, room_id]), Vec::new());
    } else {
        batch.delete(REMOTE_MEMBERS, key(&[user_id, room_id]));
    }
}

/// The rooms another server's user is joined to, as far as this server knows.
pub(crate) fn remote_member_rooms(db: &Db, user_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in db.scan_prefix(REMOTE_MEMBERS, &key(&[user_id]))? {
        let (k, _) = entry?;
        if let Some(room) = split(&k).get(1) {
            out.push(room.to_string());
        }
    }
    Ok(out)
}

pub(crate) fn stripped_state(db: &Db, membership_event: &str) -> Result<Option<Vec<Value>>> {
    get_json(db, STRIPPED_STATE, &key(&[membership_event]))
}

pub(crate) fn put_stripped_state(batch: &mut Batch, membership_event: &str, stripped: &[Value]) {
    put_json(batch, STRIPPED_STATE, key(&[membership_event]), &stripped);
}
