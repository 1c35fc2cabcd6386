//! Server-side key backup (`/room_keys`): a user's backup versions, each with its algorithm and
//! `auth_data`, and the encrypted room keys stored in them per room and session. Only the
//! newest version that was not deleted takes keys. `count` is the number of keys in a version;
//! `etag` changes whenever its keys do.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tandem_storage::Direction;

use crate::error::{Error, ErrorKind, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{BACKUP_KEYS, BACKUP_VERSIONS, key, key_pos, trailing_pos};

/// One backup version as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Version {
    algorithm: String,
    auth_data: Value,
    /// Bumped on every change to the version's keys.
    etag: u64,
    count: u64,
    #[serde(default)]
    deleted: bool,
}

/// Which keys of a version a request is about.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    All,
    Room(&'a str),
    Session(&'a str, &'a str),
}

fn parse_version(version: &str) -> Option<u64> {
    version.parse().ok()
}

fn unknown_version() -> Error {
    Error::not_found("Unknown backup version")
}

/// Whether `new` should replace `old` (the spec's order: verified beats unverified, then the
/// lower `first_message_index`, then the lower `forwarded_count`).
fn better(new: &Value, old: &Value) -> bool {
    let verified = |v: &Value| v.get("is_verified").and_then(Value::as_bool).unwrap_or(false);
    let index = |v: &Value| v.get("first_message_index").and_then(Value::as_u64).unwrap_or(u64::MAX);
    let forwarded = |v: &Value| v.get("forwarded_count").and_then(Value::as_u64).unwrap_or(u64::MAX);
    (verified(new), std::cmp::Reverse(index(new)), std::cmp::Reverse(forwarded(new)))
        > (verified(old), std::cmp::Reverse(index(old)), std::cmp::Reverse(forwarded(old)))
}

/// Checks the shape of one session's key data.
fn check_key_data(data: &Value) -> Result<()> {
    let ok = data.get("first_message_index").is_some_and(Value::is_u64)
        && data.get("forwarded_count").is_some_and(Value::is_u64)
        && data.get("is_verified").is_some_and(Value::is_boolean)
        && data.get("session_data").is_some_and(Value::is_object);
    if ok {
        Ok(())
    } else {
        Err(Error::bad_json(
            "Invalid key data: first_message_index, forwarded_count, is_verified and session_data are required",
        ))
    }
}

impl Homeserver {
    fn backup_version(&self, user_id: &str, n: u64) -> Result<Option<Version>> {
        Ok(self.get_json::<Version>(BACKUP_VERSIONS, &key_pos(&[user_id], n))?.filter(|v| !v.deleted))
    }

    /// The newest version, deleted or not (numbers are never reused).
    fn last_backup_version(&self, user_id: &str) -> Result<Option<(u64, Version)>> {
        let prefix = key(&[user_id]);
        match self.db.scan(BACKUP_VERSIONS, &prefix, &key_pos(&[user_id], u64::MAX), Direction::Backward)?.next() {
            Some(entry) => {
                let (k, v) = entry?;
                Ok(Some((trailing_pos(&k), serde_json::from_slice(&v)?)))
            }
            None => Ok(None),
        }
    }

    /// The newest version not deleted: the one keys go to.
    fn current_backup(&self, user_id: &str) -> Result<Option<(u64, Version)>> {
        let prefix = key(&[user_id]);
        for entry in self.db.scan(BACKUP_VERSIONS, &prefix, &key_pos(&[user_id], u64::MAX), Direction::Backward)? {
            let (k, v) = entry?;
            let version: Version = serde_json::from_slice(&v)?;
            if !version.deleted {
                return Ok(Some((trailing_pos(&k), version)));
            }
        }
        Ok(None)
    }

    fn version_json(n: u64, v: &Version) -> Value {
        json!({
            "version": n.to_string(), "algorithm": v.algorithm, "auth_data": v.auth_data,
            "count": v.count, "etag": v.etag.to_string(),
        })
    }

    /// `POST /room_keys/version`: a new current version; its number.
    pub fn create_backup(&self, user_id: &str, body: &Value) -> Result<String> {
        let (algorithm, auth_data) = algorithm_and_auth_data(body)?;
        self.write(|txn| {
            let n = self.last_backup_version(user_id)?.map_or(1, |(n, _)| n + 1);
            let version = Version { algorithm, auth_data, etag: 0, count: 0, deleted: false };
            txn.put_json(BACKUP_VERSIONS, key_pos(&[user_id], n), &version);
            Ok(n.to_string())
        })
    }

    /// `GET /room_keys/version[/{version}]`: the version asked for, or the current one.
    pub fn get_backup(&self, user_id: &str, version: Option<&str>) -> Result<Value> {
        let found = match version {
            Some(v) => match parse_version(v) {
                Some(n) => self.backup_version(user_id, n)?.map(|x| (n, x)),
                None => None,
            },
            None => self.current_backup(user_id)?,
        };
        let (n, v) = found.ok_or_else(|| match version {
            Some(_) => unknown_version(),
            None => Error::not_found("No current backup version"),
        })?;
        Ok(Self::version_json(n, &v))
    }

    /// `PUT /room_keys/version/{version}`: new `auth_data` for a version (same algorithm).
    pub fn update_backup(&self, user_id: &str, version: &str, body: &Value) -> Result<()> {
        if let Some(v) = body.get("version")
            && v.as_str() != Some(version)
        {
            return Err(Error::invalid_param("The version in the body does not match the one in the path"));
        }
        let (algorithm, auth_data) = algorithm_and_auth_data(body)?;
        let n = parse_version(version).ok_or_else(unknown_version)?;
        self.write(|txn| {
            let mut v = self.backup_version(user_id, n)?.ok_or_else(unknown_version)?;
            if v.algorithm != algorithm {
                return Err(Error::invalid_param("The algorithm of a backup version cannot change"));
            }
            v.auth_data = auth_data;
            txn.put_json(BACKUP_VERSIONS, key_pos(&[user_id], n), &v);
            Ok(())
        })
    }

    /// `DELETE /room_keys/version/{version}`: the version and its keys are gone.
    pub fn delete_backup(&self, user_id: &str, version: &str) -> Result<()> {
        let n = parse_version(version).ok_or_else(unknown_version)?;
        self.write(|txn| {
            let mut v = self.backup_version(user_id, n)?.ok_or_else(unknown_version)?;
            for entry in self.db.scan_prefix(BACKUP_KEYS, &key(&[user_id, &n.to_string()]))? {
                txn.batch.delete(BACKUP_KEYS, entry?.0.into_vec());
            }
            v.deleted = true;
            v.count = 0;
            txn.put_json(BACKUP_VERSIONS, key_pos(&[user_id], n), &v);
            Ok(())
        })
    }

    /// The version keys may be written to: it must be the current one.
    fn writable_version(&self, user_id: &str, version: &str) -> Result<(u64, Version)> {
        let current = self.current_backup(user_id)?;
        let n = parse_version(version);
        match current {
            Some((c, v)) if Some(c) == n => Ok((c, v)),
            Some((c, _)) => {
                if n.and_then(|n| self.backup_version(user_id, n).ok().flatten()).is_none() {
                    return Err(unknown_version());
                }
                Err(Error::new(ErrorKind::WrongRoomKeysVersion, "Wrong backup version")
                    .with("current_version", c.to_string()))
            }
            None => Err(unknown_version()),
        }
    }

    /// `PUT /room_keys/keys…`: `rooms` maps room ids to session ids to key data. Each key is
    /// kept only if better than the one stored. Returns `count` and `etag`.
    pub fn put_backup_keys(&self, user_id: &str, version: &str, rooms: &Map<String, Value>) -> Result<Value> {
        for sessions in rooms.values() {
            let sessions = sessions.as_object().ok_or_else(|| Error::bad_json("sessions must be an object"))?;
            for data in sessions.values() {
                check_key_data(data)?;
            }
        }
        self.write(|txn| {
            let (n, mut v) = self.writable_version(user_id, version)?;
            let vs = n.to_string();
            let mut changed = false;
            for (room, sessions) in rooms {
                for (session, data) in sessions.as_object().into_iter().flatten() {
                    let k = key(&[user_id, &vs, room, session]);
                    let old: Option<Value> = self.get_json(BACKUP_KEYS, &k)?;
                    if old.as_ref().is_some_and(|old| !better(data, old)) {
                        continue;
                    }
                    if old.is_none() {
                        v.count += 1;
                    }
                    txn.put_json(BACKUP_KEYS, k, data);
                    changed = true;
                }
            }
            self.bump(txn, user_id, n, &mut v, changed);
            Ok(json!({ "count": v.count, "etag": v.etag.to_string() }))
        })
    }

    fn bump(&self, txn: &mut Txn, user_id: &str, n: u64, v: &mut Version, changed: bool) {
        if changed {
            v.etag += 1;
            txn.put_json(BACKUP_VERSIONS, key_pos(&[user_id], n), v);
        }
    }

    fn scope_prefix(user_id: &str, version: &str, scope: Scope<'_>) -> Vec<u8> {
        match scope {
            Scope::All => key(&[user_id, version]),
            Scope::Room(room) => key(&[user_id, version, room]),
            Scope::Session(room, session) => key(&[user_id, version, room, session]),
        }
    }

    /// `GET /room_keys/keys…`: `{rooms: {room: {sessions: {session: data}}}}` for all keys.
    pub fn get_backup_keys(&self, user_id: &str, version: &str, scope: Scope<'_>) -> Result<Value> {
        let n = parse_version(version).ok_or_else(unknown_version)?;
        self.backup_version(user_id, n)?.ok_or_else(unknown_version)?;
        let vs = n.to_string();
        if let Scope::Session(room, session) = scope {
            return self
                .get_json(BACKUP_KEYS, &key(&[user_id, &vs, room, session]))?
                .ok_or_else(|| Error::not_found("No room key found for this session"));
        }
        let mut rooms = Map::new();
        for entry in self.db.scan_prefix(BACKUP_KEYS, &Self::scope_prefix(user_id, &vs, scope))? {
            let (k, data) = entry?;
            let parts = crate::tables::split(&k);
            let (Some(room), Some(session)) = (parts.get(2), parts.get(3)) else { continue };
            let data: Value = serde_json::from_slice(&data)?;
            let room = rooms.entry(room.to_string()).or_insert_with(|| json!({ "sessions": {} }));
            room["sessions"][*session] = data;
        }
        Ok(match scope {
            Scope::Room(room) => rooms.remove(room).unwrap_or_else(|| json!({ "sessions": {} })),
            _ => json!({ "rooms": rooms }),
        })
    }

    /// `DELETE /room_keys/keys…`: returns `count` and `etag`.
    pub fn delete_backup_keys(&self, user_id: &str, version: &str, scope: Scope<'_>) -> Result<Value> {
        let n = parse_version(version).ok_or_else(unknown_version)?;
        self.write(|txn| {
            let mut v = self.backup_version(user_id, n)?.ok_or_else(unknown_version)?;
            let vs = n.to_string();
            let mut removed = 0;
            for entry in self.db.scan_prefix(BACKUP_KEYS, &Self::scope_prefix(user_id, &vs, scope))? {
                let (k, _) = entry?;
                txn.batch.delete(BACKUP_KEYS, k.into_vec());
                removed += 1;
            }
            v.count = v.count.saturating_sub(removed);
            self.bump(txn, user_id, n, &mut v, removed > 0);
            Ok(json!({ "count": v.count, "etag": v.etag.to_string() }))
        })
    }
}

fn algorithm_and_auth_data(body: &Value) -> Result<(String, Value)> {
    let algorithm = body
        .get("algorithm")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new(ErrorKind::MissingParam, "algorithm is required"))?;
    let auth_data = body
        .get("auth_data")
        .filter(|a| a.is_object())
        .ok_or_else(|| Error::new(ErrorKind::MissingParam, "auth_data is required and must be an object"))?;
    Ok((algorithm.to_owned(), auth_data.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(verified: bool, index: u64, forwarded: u64) -> Value {
        json!({ "is_verified": verified, "first_message_index": index, "forwarded_count": forwarded, "session_data": {} })
    }

    #[test]
    fn which_key_is_kept() {
        assert!(better(&data(true, 5, 5), &data(false, 0, 0)));
        assert!(!better(&data(false, 0, 0), &data(true, 5, 5)));
        assert!(better(&data(false, 1, 9), &data(false, 2, 0)));
        assert!(better(&data(false, 1, 0), &data(false, 1, 1)));
        assert!(!better(&data(false, 1, 1), &data(false, 1, 1)));
    }
}
