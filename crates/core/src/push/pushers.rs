//! Pushers: where a user's devices want notifications sent (`/pushers`, `/pushers/set`).
//! Only `http` pushers exist here: an `email` pusher needs an address bound to the account,
//! and this server binds none.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{PUSHERS, key};

/// The path the spec gives a push gateway's notify endpoint.
pub const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

/// One pusher, as stored under its user, app id and pushkey.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pusher {
    pub user_id: String,
    pub kind: String,
    pub app_id: String,
    pub pushkey: String,
    pub app_display_name: String,
    pub device_display_name: String,
    #[serde(default)]
    pub profile_tag: String,
    pub lang: String,
    /// The client's `data`: the gateway's `url`, the `format`, and whatever the app adds.
    pub data: Value,
    /// When it was set, ms since the epoch (sent to the gateway as `pushkey_ts`, in seconds).
    pub ts: u64,
    /// The stream position when it was set: only events after it are pushed.
    pub since: u64,
    /// The device whose session set it; deleting the device deletes it.
    pub device_id: Option<String>,
    /// Since when deliveries fail, ms since the epoch.
    #[serde(default)]
    pub failing_since: Option<u64>,
    /// The badge count the gateway was last told.
    #[serde(default)]
    pub last_badge: Option<u64>,
}

/// A pusher's identity: user, app id, pushkey.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PusherId {
    pub user_id: String,
    pub app_id: String,
    pub pushkey: String,
}

impl Pusher {
    pub fn id(&self) -> PusherId {
        PusherId { user_id: self.user_id.clone(), app_id: self.app_id.clone(), pushkey: self.pushkey.clone() }
    }

    /// The gateway's notify URL.
    pub fn url(&self) -> Option<&str> {
        self.data.get("url").and_then(Value::as_str)
    }

    /// The `GET /pushers` form.
    pub fn to_client(&self) -> Value {
        json!({
            "app_display_name": self.app_display_name,
            "app_id": self.app_id,
            "data": self.data,
            "device_display_name": self.device_display_name,
            "kind": self.kind,
            "lang": self.lang,
            "profile_tag": self.profile_tag,
            "pushkey": self.pushkey,
        })
    }
}

fn pusher_key(id: &PusherId) -> Vec<u8> {
    key(&[&id.user_id, &id.app_id, &id.pushkey])
}

/// A required string of the request.
fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str> {
    match body.get(name) {
        None => Err(Error::new(ErrorKind::MissingParam, format!("Missing params: ['{name}']"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Error::bad_json(format!("'{name}' must be a string"))),
    }
}

impl Homeserver {
    /// A user's pushers.
    pub fn pushers(&self, user_id: &str) -> Result<Vec<Pusher>> {
        Ok(self.scan_json::<Pusher>(PUSHERS, &key(&[user_id]))?.into_iter().map(|(_, p)| p).collect())
    }

    /// Every pusher of the server.
    pub fn all_pushers(&self) -> Result<Vec<Pusher>> {
        Ok(self.scan_json::<Pusher>(PUSHERS, &[])?.into_iter().map(|(_, p)| p).collect())
    }

    pub fn pusher(&self, id: &PusherId) -> Result<Option<Pusher>> {
        self.get_json(PUSHERS, &pusher_key(id))
    }

    /// `POST /pushers/set` for `user_id`, from the session of `device_id`.
    pub fn set_pusher(&self, user_id: &str, device_id: Option<&str>, body: &Value) -> Result<()> {
        if !body.is_object() {
            return Err(Error::bad_json("The body must be a JSON object"));
        }
        if body.get("kind") == Some(&Value::Null) && body.get("app_id").is_some() && body.get("pushkey").is_some() {
            let id = PusherId {
                user_id: user_id.to_owned(),
                app_id: text(body, "app_id")?.to_owned(),
                pushkey: text(body, "pushkey")?.to_owned(),
            };
            return self.write(|txn| self.stage_delete_pusher(txn, &id));
        }
        let missing: Vec<&str> =
            ["kind", "app_id", "app_display_name", "device_display_name", "pushkey", "lang", "data"]
                .into_iter()
                .filter(|k| body.get(*k).is_none())
                .collect();
        if !missing.is_empty() {
            return Err(Error::new(ErrorKind::MissingParam, format!("Missing params: {missing:?}")));
        }
        let kind = text(body, "kind")?;
        let app_id = text(body, "app_id")?;
        let pushkey = text(body, "pushkey")?;
        if app_id.len() > 64 {
            return Err(Error::invalid_param("app_id may be at most 64 characters"));
        }
        if pushkey.len() > 512 {
            return Err(Error::invalid_param("pushkey may be at most 512 bytes"));
        }
        let data = body["data"].clone();
        match kind {
            "http" => {
                let Some(url) = data.get("url") else {
                    return Err(Error::new(
                        ErrorKind::MissingParam,
                        "Config Error: 'url' required in data for HTTP pusher",
                    ));
                };
                let Some(url) = url.as_str() else {
                    return Err(Error::new(ErrorKind::MissingParam, "Config Error: 'url' must be a string"));
                };
                if url_path(url) != Some(NOTIFY_PATH) {
                    return Err(Error::new(
                        ErrorKind::MissingParam,
                        format!("Config Error: 'url' must have a path of '{NOTIFY_PATH}'"),
                    ));
                }
            }
            "email" => return Err(Error::new(ErrorKind::ThreepidNotFound, "Email not found")),
            _ => return Err(Error::invalid_param(format!("Unknown pusher kind {kind:?}"))),
        }
        let append = match body.get("append") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::bad_json("'append' must be a boolean")),
        };
        let profile_tag = match body.get("profile_tag") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::bad_json("'profile_tag' must be a string")),
        };
        let id = PusherId { user_id: user_id.to_owned(), app_id: app_id.to_owned(), pushkey: pushkey.to_owned() };
        // The same pusher set again keeps the device that first set it.
        let device_id = match self.pusher(&id)? {
            Some(old) => old.device_id,
            None => device_id.map(str::to_owned),
        };
        let others: Vec<PusherId> = if append {
            Vec::new()
        } else {
            self.all_pushers()?
                .into_iter()
                .filter(|p| p.app_id == app_id && p.pushkey == pushkey && p.user_id != user_id)
                .map(|p| p.id())
                .collect()
        };
        let pusher = Pusher {
            user_id: user_id.to_owned(),
            kind: kind.to_owned(),
            app_id: app_id.to_owned(),
            pushkey: pushkey.to_owned(),
            app_display_name: text(body, "app_display_name")?.to_owned(),
            device_display_name: text(body, "device_display_name")?.to_owned(),
            profile_tag,
            lang: text(body, "lang")?.to_owned(),
            data,
            ts: Self::now_ms(),
            since: self.stream_pos(),
            device_id,
            failing_since: None,
            last_badge: None,
        };
        // Before the write: events stored from now on are noted for the push queue.
        self.pushers_exist.store(true, std::sync::atomic::Ordering::Release);
        self.write(|txn| {
            for other in &others {
                self.stage_delete_pusher(txn, other)?;
            }
            txn.put_json(PUSHERS, pusher_key(&id), &pusher);
            Ok(())
        })
    }

    /// Stores a changed pusher.
    pub(crate) fn stage_pusher(&self, txn: &mut Txn, pusher: &Pusher) {
        txn.put_json(PUSHERS, pusher_key(&pusher.id()), pusher);
    }

    /// Deletes a pusher and what is queued for it.
    pub(crate) fn stage_delete_pusher(&self, txn: &mut Txn, id: &PusherId) -> Result<()> {
        txn.batch.delete(PUSHERS, pusher_key(id));
        self.stage_clear_queue(txn, id)
    }

    /// Deletes the pushers a device set (the device is being deleted).
    pub(crate) fn stage_delete_device_pushers(&self, txn: &mut Txn, user_id: &str, device_id: &str) -> Result<()> {
        for p in self.pushers(user_id)? {
            if p.device_id.as_deref() == Some(device_id) {
                self.stage_delete_pusher(txn, &p.id())?;
            }
        }
        Ok(())
    }
}

/// The path of an `http(s)://host[:port]/path[?query]` URL.
fn url_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let path = &rest[rest.find('/')?..];
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_urls() {
        assert_eq!(url_path("https://push.example.org/_matrix/push/v1/notify"), Some(NOTIFY_PATH));
        assert_eq!(url_path("http://127.0.0.1:9/_matrix/push/v1/notify?x=1"), Some(NOTIFY_PATH));
        assert_eq!(url_path("https://push.example.org"), None);
        assert_eq!(url_path("ftp://push.example.org/_matrix/push/v1/notify"), None);
    }
}
