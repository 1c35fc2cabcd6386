//! Devices and their tokens: login, refresh, logout, the device list.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{ACCESS_TOKENS, DEVICES, REFRESH_TOKENS, key};

/// How long a refreshable access token lives, as Synapse's default.
pub const REFRESHABLE_TOKEN_LIFETIME_MS: u64 = 5 * 60 * 1000;

/// Who an access token belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    pub device_id: String,
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// How a token is stored: its SHA-256, so that the database (a backup, a stolen disk) holds
/// nothing that logs anyone in. Tokens are long random strings, so no salt or slow hash is
/// needed.
fn stored_token(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub last_seen_ts: Option<u64>,
    #[serde(default)]
    pub last_seen_ip: Option<String>,
    /// The current access token as stored ([`stored_token`]; plain in databases written
    /// before tokens were hashed).
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// What a login or registration hands the client.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub user_id: String,
    pub device_id: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in_ms: Option<u64>,
}

impl Homeserver {
    /// Starts a session on `device_id` (a new device if `None`); an existing device of that id
    /// keeps its keys but its previous token stops working.
    pub fn login(
        &self,
        user_id: &str,
        device_id: Option<&str>,
        display_name: Option<&str>,
        refreshable: bool,
    ) -> Result<NewSession> {
        let device_id = device_id.map(str::to_owned).unwrap_or_else(|| Homeserver::random_string(10).to_uppercase());
        if device_id.is_empty() || device_id.len() > 255 {
            return Err(Error::invalid_param("device_id must be 1 to 255 characters"));
        }
        let access_token = format!("tdm_{}", Homeserver::random_string(40));
        let refresh_token = refreshable.then(|| format!("tdr_{}", Homeserver::random_string(40)));
        let expires_in_ms = refreshable.then_some(REFRESHABLE_TOKEN_LIFETIME_MS);
        let new_device = self.write(|txn| {
            let old: Option<Device> = self.get_json(DEVICES, &key(&[user_id, &device_id]))?;
            let mut device = old.clone().unwrap_or_else(|| Device {
                device_id: device_id.clone(),
                display_name: display_name.map(str::to_owned),
                ..Device::default()
            });
            if let Some(old) = &old {
                self.drop_tokens(txn, old);
            }
            let (stored_access, stored_refresh) =
                (stored_token(&access_token), refresh_token.as_deref().map(stored_token));
            device.access_token = stored_access.clone();
            device.refresh_token = stored_refresh.clone();
            device.last_seen_ts = Some(Self::now_ms());
            let session = Session {
                user_id: user_id.to_owned(),
                device_id: device_id.clone(),
                expires_at: expires_in_ms.map(|ms| Self::now_ms() + ms),
                refresh_token: stored_refresh.clone(),
            };
            txn.put_json(DEVICES, key(&[user_id, &device_id]), &device);
            txn.put_json(ACCESS_TOKENS, key(&[&stored_access]), &session);
            if let Some(rt) = &stored_refresh {
                txn.put_json(REFRESH_TOKENS, key(&[rt]), &session);
            }
            if old.is_none() {
                self.note_key_change(txn, user_id);
                self.note_unshared_change(txn, user_id, &device_id, false);
            }
            Ok(old.is_none())
        })?;
        if new_device {
            self.share_device_change(user_id, &device_id, false)?;
        }
        Ok(NewSession { user_id: user_id.to_owned(), device_id, access_token, refresh_token, expires_in_ms })
    }

    /// The session a token names in `table`: stored hashed, or plain if it was issued before
    /// tokens were stored hashed.
    fn token_session(&self, table: tandem_storage::Table, token: &str) -> Result<Option<Session>> {
        match self.get_json(table, &key(&[&stored_token(token)]))? {
            Some(session) => Ok(Some(session)),
            None => self.get_json(table, &key(&[token])),
        }
    }

    /// The session of an access token.
    pub fn authenticate(&self, access_token: &str) -> Result<Session> {
        let unknown = |soft_logout| Error::new(ErrorKind::UnknownToken { soft_logout }, "Unknown access token");
        let session = self.token_session(ACCESS_TOKENS, access_token)?.ok_or_else(|| unknown(false))?;
        if session.expires_at.is_some_and(|t| t <= Self::now_ms()) {
            return Err(Error::new(ErrorKind::UnknownToken { soft_logout: true }, "Access token has expired"));
        }
        Ok(session)
    }

    /// Swaps a refresh token for a new access token and refresh token.
    pub fn refresh(&self, refresh_token: &str) -> Result<NewSession> {
        let unknown = || Error::new(ErrorKind::UnknownToken { soft_logout: false }, "Unknown refresh token");
        let session = self.token_session(REFRESH_TOKENS, refresh_token)?.ok_or_else(unknown)?;
        self.login(&session.user_id, Some(&session.device_id), None, true)
    }

    fn drop_tokens(&self, txn: &mut Txn, device: &Device) {
        txn.batch.delete(ACCESS_TOKENS, key(&[&device.access_token]));
        if let Some(rt) = &device.refresh_token {
            txn.batch.delete(REFRESH_TOKENS, key(&[rt]));
        }
    }

    pub fn devices(&self, user_id: &str) -> Result<Vec<Device>> {
        Ok(self.scan_json::<Device>(DEVICES, &key(&[user_id]))?.into_iter().map(|(_, d)| d).collect())
    }

    pub fn device(&self, user_id: &str, device_id: &str) -> Result<Option<Device>> {
        self.get_json(DEVICES, &key(&[user_id, device_id]))
    }

    pub fn rename_device(&self, user_id: &str, device_id: &str, name: Option<&str>) -> Result<()> {
        self.write(|txn| {
            let mut device = self.device(user_id, device_id)?.ok_or_else(|| Error::not_found("Unknown device"))?;
            device.display_name = name.map(str::to_owned);
            txn.put_json(DEVICES, key(&[user_id, device_id]), &device);
            self.note_key_change(txn, user_id);
            self.note_unshared_change(txn, user_id, device_id, false);
            Ok(())
        })?;
        self.share_device_change(user_id, device_id, false)
    }

    /// Adds or replaces a device of `user_id` in the write.
    pub(crate) fn stage_device(&self, txn: &mut Txn, user_id: &str, device: &Device) {
        txn.put_json(DEVICES, key(&[user_id, &device.device_id]), device);
    }

    /// Removes devices with their tokens, keys and pending to-device messages.
    pub fn delete_devices(&self, user_id: &str, device_ids: &[String]) -> Result<()> {
        self.write(|txn| {
            for device_id in device_ids {
                self.stage_delete_device_pushers(txn, user_id, device_id)?;
                let Some(device) = self.device(user_id, device_id)? else { continue };
                self.note_unshared_change(txn, user_id, device_id, true);
                self.drop_tokens(txn, &device);
                txn.batch.delete(DEVICES, key(&[user_id, device_id]));
                self.stage_delete_device_keys(txn, user_id, device_id)?;
                self.stage_delete_inbox(txn, user_id, device_id)?;
            }
            self.note_key_change(txn, user_id);
            Ok(())
        })?;
        for device_id in device_ids {
            self.share_device_change(user_id, device_id, true)?;
        }
        Ok(())
    }

    /// `admin/whois`: a user's devices and where they were last seen, for the user or a
    /// server admin.
    pub fn whois(&self, requester: &str, user_id: &str) -> Result<Vec<Device>> {
        if requester != user_id && !self.account(requester)?.is_some_and(|a| a.admin) {
            return Err(Error::forbidden("You are not a server admin"));
        }
        if !self.is_local(user_id) {
            return Err(Error::new(crate::error::ErrorKind::Unknown, "Can only whois a local user"));
        }
        self.devices(user_id)
    }

    /// Logs out every device but `keep`.
    pub fn delete_all_devices(&self, user_id: &str, keep: Option<&str>) -> Result<()> {
        let ids: Vec<String> =
            self.devices(user_id)?.into_iter().map(|d| d.device_id).filter(|d| Some(d.as_str()) != keep).collect();
        self.delete_devices(user_id, &ids)
    }

    /// Records that a device was used, at most once a minute per device.
    pub fn touch_device(&self, session: &Session, ip: Option<&str>) -> Result<()> {
        let Some(device) = self.device(&session.user_id, &session.device_id)? else { return Ok(()) };
        let now = Self::now_ms();
        if device.last_seen_ts.is_some_and(|t| now < t + 60_000) && device.last_seen_ip.as_deref() == ip {
            return Ok(());
        }
        // Read again under the writer: a logout that deleted the device in between must not
        // see it written back.
        self.write(|txn| {
            let Some(mut device) = self.device(&session.user_id, &session.device_id)? else { return Ok(()) };
            device.last_seen_ts = Some(now);
            device.last_seen_ip = ip.map(str::to_owned);
            txn.put_json(DEVICES, key(&[&session.user_id, &session.device_id]), &device);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::tables::{ACCESS_TOKENS, DEVICES, REFRESH_TOKENS};

    /// Nothing stored logs anyone in: not the token tables' keys, not the device records.
    #[test]
    fn tokens_are_stored_hashed() {
        let (_dir, hs) = crate::server::test_server();
        let user = hs.create_account("alice", Some("pw"), false).unwrap();
        let s = hs.login(&user, None, None, true).unwrap();
        let (access, refresh) = (s.access_token.clone(), s.refresh_token.clone().unwrap());
        for table in [ACCESS_TOKENS, REFRESH_TOKENS, DEVICES] {
            for entry in hs.db.scan_prefix(table, &[]).unwrap() {
                let (k, v) = entry.unwrap();
                let text = format!("{}{}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v));
                assert!(!text.contains(&access) && !text.contains(&refresh), "a token stored in plain: {text}");
            }
        }
        assert_eq!(hs.authenticate(&access).unwrap().user_id, user);
        let renewed = hs.refresh(&refresh).unwrap();
        assert!(hs.authenticate(&access).is_err(), "the refreshed token still works");
        assert_eq!(hs.authenticate(&renewed.access_token).unwrap().device_id, s.device_id);
        hs.delete_devices(&user, std::slice::from_ref(&s.device_id)).unwrap();
        assert!(hs.authenticate(&renewed.access_token).is_err(), "a token outlived its device");
    }
}
