//! Accounts: user ids, passwords (Argon2id), admin flags, deactivation, profiles.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;
use crate::tables::{PROFILES, USERS, key};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Account {
    /// Argon2id PHC string; `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub deactivated: bool,
    #[serde(default)]
    pub created_ts: u64,
}

/// Checks a localpart as the spec's user identifier grammar and Synapse's registration do:
/// `a-z 0-9 . _ = - / +`, not starting with `_` (kept for application services).
pub fn check_localpart(localpart: &str, server_name: &str) -> Result<()> {
    let invalid = |msg: &str| Error::new(ErrorKind::InvalidUsername, msg);
    if localpart.is_empty() {
        return Err(invalid("User ID cannot be empty"));
    }
    if !localpart.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+')) {
        return Err(invalid("User ID can only contain characters a-z, 0-9, or '=_-./+'"));
    }
    if localpart.starts_with('_') {
        return Err(invalid("User ID may not begin with _"));
    }
    if localpart.len() + server_name.len() + 2 > 255 {
        return Err(invalid("User ID may not be longer than 255 characters"));
    }
    Ok(())
}

/// A user id the server accepts as a target (invites, kicks, profile lookups).
pub fn is_valid_user_id(user_id: &str) -> bool {
    ruma::UserId::parse(user_id).is_ok()
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| Error::internal(format!("salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing: {e}")))
}

/// A hash of nothing anyone knows, verified against when there is no account to check.
fn timing_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&format!("{:x}", rand::random::<u128>())).unwrap_or_default())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

impl Homeserver {
    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }

    /// Every local user's id, in order.
    pub(crate) fn user_ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(USERS, &[])? {
            let (k, _) = entry?;
            if let Some(user) = crate::tables::split(&k).first() {
                out.push(user.to_string());
            }
        }
        Ok(out)
    }

    pub fn account(&self, user_id: &str) -> Result<Option<Account>> {
        self.get_json(USERS, &key(&[user_id]))
    }

    /// Whether `localpart` is free to register.
    pub fn username_available(&self, localpart: &str) -> Result<()> {
        check_localpart(localpart, &self.server_name)?;
        if self.account(&self.user_id(localpart))?.is_some() {
            return Err(Error::new(ErrorKind::UserInUse, "User ID already taken."));
        }
        Ok(())
    }

    /// Creates an account; its display name starts as the localpart, as Synapse does.
    pub fn create_account(&self, localpart: &str, password: Option<&str>, admin: bool) -> Result<String> {
        check_localpart(localpart, &self.server_name)?;
        self.create_account_hashed(localpart, password.map(hash_password).transpose()?, admin)
    }

    /// [`Homeserver::create_account`] with a password hashed already (by [`hash_password`]).
    pub fn create_account_hashed(&self, localpart: &str, password_hash: Option<String>, admin: bool) -> Result<String> {
        check_localpart(localpart, &self.server_name)?;
        let user_id = self.user_id(localpart);
        self.write(|txn| {
            if self.account(&user_id)?.is_some() {
                return Err(Error::new(ErrorKind::UserInUse, "User ID already taken."));
            }
            let account = Account { password_hash, admin, deactivated: false, created_ts: Self::now_ms() };
            txn.put_json(USERS, key(&[&user_id]), &account);
            txn.put_json(PROFILES, key(&[&user_id]), &serde_json::json!({ "displayname": localpart }));
            Ok(())
        })?;
        tracing::info!(%user_id, admin, "account created");
        Ok(user_id)
    }

    /// Checks a user's password; the error is the same whether the user exists or not.
    pub fn check_password(&self, user_id: &str, password: &str) -> Result<Account> {
        let wrong = || Error::forbidden("Invalid username or password");
        let account = self.account(user_id)?;
        let Some(hash) = account.as_ref().and_then(|a| a.password_hash.as_deref()) else {
            // As slow as a wrong password, so the answer's timing does not tell who exists.
            let _ = verify_password(password, timing_hash());
            return Err(wrong());
        };
        if !verify_password(password, hash) {
            return Err(wrong());
        }
        let account = account.ok_or_else(wrong)?;
        if account.deactivated {
            return Err(Error::new(ErrorKind::UserDeactivated, "This account has been deactivated"));
        }
        Ok(account)
    }

    pub fn set_password(&self, user_id: &str, password: &str) -> Result<()> {
        let hash = hash_password(password)?;
        self.write(|txn| {
            let mut account = self.account(user_id)?.ok_or_else(|| Error::not_found("Unknown user"))?;
            account.password_hash = Some(hash);
            txn.put_json(USERS, key(&[user_id]), &account);
            Ok(())
        })
    }

    pub fn set_admin(&self, user_id: &str, admin: bool) -> Result<()> {
        self.write(|txn| {
            let mut account = self.account(user_id)?.ok_or_else(|| Error::not_found("Unknown user"))?;
            account.admin = admin;
            txn.put_json(USERS, key(&[user_id]), &account);
            Ok(())
        })
    }

    /// Deactivates an account: no password, no sessions, out of every room, profile erased.
    pub fn deactivate(&self, user_id: &str) -> Result<()> {
        self.write(|txn| {
            let mut account = self.account(user_id)?.ok_or_else(|| Error::not_found("Unknown user"))?;
            account.deactivated = true;
            account.password_hash = None;
            txn.put_json(USERS, key(&[user_id]), &account);
            txn.put_json(PROFILES, key(&[user_id]), &serde_json::json!({}));
            Ok(())
        })?;
        self.delete_all_devices(user_id, None)?;
        for (room_id, row) in self.memberships(user_id)? {
            if matches!(row.membership.as_str(), "join" | "invite" | "knock") {
                let _ = self.set_membership(user_id, &room_id, user_id, "leave", None, None);
            }
        }
        Ok(())
    }

    /// A user's profile, another server's user's asked of their server.
    pub async fn profile_anywhere(self: &std::sync::Arc<Self>, user_id: &str) -> Result<Map<String, Value>> {
        if !self.is_local(user_id) {
            let server = crate::server_name::server_of(user_id)
                .ok_or_else(|| Error::invalid_param(format!("Invalid user id {user_id:?}")))?;
            let request = crate::network::Request::Profile { user_id: user_id.to_owned(), field: None };
            let profile = self.ask(server, request).await?;
            return Ok(profile.as_object().cloned().unwrap_or_default());
        }
        let u = user_id.to_owned();
        self.blocking(move |hs| hs.profile(&u)).await?.ok_or_else(|| Error::not_found("Profile was not found"))
    }

    pub fn profile(&self, user_id: &str) -> Result<Option<Map<String, Value>>> {
        match self.get_json::<Value>(PROFILES, &key(&[user_id]))? {
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Ok(Some(Map::new())),
            None => Ok(None),
        }
    }

    /// Sets one profile field (`None` removes it) and sends an updated member event to each
    /// room the user is joined to, as Synapse does.
    pub fn set_profile_field(&self, user_id: &str, field: &str, value: Option<Value>) -> Result<()> {
        self.write(|txn| {
            let mut profile = self.profile(user_id)?.ok_or_else(|| Error::not_found("Profile not found"))?;
            match value.clone() {
                Some(v) => profile.insert(field.to_owned(), v),
                None => profile.remove(field),
            };
            txn.put_json(PROFILES, key(&[user_id]), &profile);
            Ok(())
        })?;
        if !matches!(field, "displayname" | "avatar_url") {
            return Ok(());
        }
        for (room_id, row) in self.memberships(user_id)? {
            if row.membership != "join" {
                continue;
            }
            let result = self.update_own_member_event(user_id, &room_id, |content| {
                match &value {
                    Some(v) => content.insert(field.to_owned(), v.clone()),
                    None => content.remove(field),
                };
            });
            if let Err(e) = result {
                tracing::warn!(%room_id, "profile not propagated: {e}");
            }
        }
        Ok(())
    }
}
