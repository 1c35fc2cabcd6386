//! Devices and their tokens: login, refresh, logout, the device list.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{ACCESS_TOKENS, DEVICE_KEYS, DEVICES, ONE_TIME_KEYS, REFRESH_TOKENS, TO_DEVICE, key};

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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub last_seen_ts: Option<u64>,
    #[serde(default)]
    pub last_seen_ip: Option<String>,
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
            device.access_token = access_token.clone();
            device.refresh_token = refresh_token.clone();
            device.last_seen_ts = Some(Self::now_ms());
            let session = Session {
                user_id: user_id.to_owned(),
                device_id: device_id.clone(),
                expires_at: expires_in_ms.map(|ms| Self::now_ms() + ms),
                refresh_token: refresh_token.clone(),
            };
            txn.put_json(DEVICES, key(&[user_id, &device_id]), &device);
            txn.put_json(ACCESS_TOKENS, key(&[&access_token]), &session);
            if let Some(rt) = &refresh_token {
                txn.put_json(REFRESH_TOKENS, key(&[rt]), &session);
            }
            if old.is_none() {
                self.note_key_change(txn, user_id);
            }
            Ok(old.is_none())
        })?;
        if new_device {
            self.share_device_change(user_id, &device_id, false)?;
        }
        Ok(NewSession { user_id: user_id.to_owned(), device_id, access_token, refresh_token, expires_in_ms })
    }

    /// The session of an access token.
    pub fn authenticate(&self, access_token: &str) -> Result<Session> {
        let unknown = |soft_logout| Error::new(ErrorKind::UnknownToken { soft_logout }, "Unknown access token");
        let session: Session = self.get_json(ACCESS_TOKENS, &key(&[access_token]))?.ok_or_else(|| unknown(false))?;
        if session.expires_at.is_some_and(|t| t <= Self::now_ms()) {
            return Err(Error::new(ErrorKind::UnknownToken { soft_logout: true }, "Access token has expired"));
        }
        Ok(session)
    }

    /// Swaps a refresh token for a new access token and refresh token.
    pub fn refresh(&self, refresh_token: &str) -> Result<NewSession> {
        let session: Session = self
            .get_json(REFRESH_TOKENS, &key(&[refresh_token]))?
            .ok_or_else(|| Error::new(ErrorKind::UnknownToken { soft_logout: false }, "Unknown refresh token"))?;
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
            Ok(())
        })?;
        self.share_device_change(user_id, device_id, false)
    }

    /// Removes devices with their tokens, keys and pending to-device messages.
    pub fn delete_devices(&self, user_id: &str, device_ids: &[String]) -> Result<()> {
        self.write(|txn| {
            for device_id in device_ids {
                let Some(device) = self.device(user_id, device_id)? else { continue };
                self.drop_tokens(txn, &device);
                txn.batch.delete(DEVICES, key(&[user_id, device_id]));
                txn.batch.delete(DEVICE_KEYS, key(&[user_id, device_id]));
                for table in [ONE_TIME_KEYS, TO_DEVICE] {
                    for entry in self.db.scan_prefix(table, &key(&[user_id, device_id]))? {
                        txn.batch.delete(table, entry?.0.into_vec());
                    }
                }
            }
            self.note_key_change(txn, user_id);
            Ok(())
        })?;
        for device_id in device_ids {
            self.share_device_change(user_id, device_id, true)?;
        }
        Ok(())
    }

    /// Logs out every device but `keep`.
    pub fn delete_all_devices(&self, user_id: &str, keep: Option<&str>) -> Result<()> {
        let ids: Vec<String> =
            self.devices(user_id)?.into_iter().map(|d| d.device_id).filter(|d| Some(d.as_str()) != keep).collect();
        self.delete_devices(user_id, &ids)
    }

    /// Records that a device was used, at most once a minute per device.
    pub fn touch_device(&self, session: &Session, ip: Option<&str>) -> Result<()> {
        let Some(mut device) = self.device(&session.user_id, &session.device_id)? else { return Ok(()) };
        let now = Self::now_ms();
        if device.last_seen_ts.is_some_and(|t| now < t + 60_000) && device.last_seen_ip.as_deref() == ip {
            return Ok(());
        }
        device.last_seen_ts = Some(now);
        device.last_seen_ip = ip.map(str::to_owned);
        self.write(|txn| {
            txn.put_json(DEVICES, key(&[&session.user_id, &session.device_id]), &device);
            Ok(())
        })
    }
}
