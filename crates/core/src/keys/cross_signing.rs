//! Cross-signing: a user's master, self-signing and user-signing keys
//! (`/keys/device_signing/upload`), and signatures users make of their own devices and master
//! key and of other users' master keys (`/keys/signatures/upload`). Other servers' users'
//! master and self-signing keys are kept here too, as their servers report them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::server::{Homeserver, Txn};
use crate::tables::{CROSS_SIGNING_KEYS, KEY_SIGNATURES, key};

/// The three kinds of cross-signing key, with the `usage` each must declare.
pub const MASTER: &str = "master";
pub const SELF_SIGNING: &str = "self_signing";
pub const USER_SIGNING: &str = "user_signing";

/// The single ed25519 public key of a cross-signing key: `(key id, base64 public key)`.
pub fn ed25519_of(cross_signing_key: &Value) -> Option<(String, String)> {
    let keys = cross_signing_key.get("keys")?.as_object()?;
    let mut it = keys.iter().filter(|(id, _)| id.starts_with("ed25519:"));
    let (id, public) = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some((id.clone(), public.as_str()?.to_owned()))
}

/// Whether `object` carries a valid signature of `signer` by the ed25519 key `public`
/// (unpadded base64) under `key_id`, over its canonical JSON without `signatures` and
/// `unsigned`.
pub fn signed_by(object: &Value, signer: &str, key_id: &str, public: &str) -> bool {
    let Some(sig) =
        object.pointer(&format!("/signatures/{}/{}", escape(signer), escape(key_id))).and_then(Value::as_str)
    else {
        return false;
    };
    verify(object, sig, public)
}

/// JSON pointer escaping of one path segment.
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn verify(object: &Value, signature: &str, public: &str) -> bool {
    let mut stripped = object.clone();
    if let Some(obj) = stripped.as_object_mut() {
        obj.remove("signatures");
        obj.remove("unsigned");
    }
    let Ok(canonical) = ruma::CanonicalJsonValue::try_from(stripped) else { return false };
    let (Ok(public), Ok(signature)) = (STANDARD_NO_PAD.decode(public), STANDARD_NO_PAD.decode(signature)) else {
        return false;
    };
    let (Ok(public), Ok(signature)) = (<[u8; 32]>::try_from(public), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&public) else { return false };
    key.verify_strict(canonical.to_string().as_bytes(), &ed25519_dalek::Signature::from_bytes(&signature)).is_ok()
}

/// The object without its signatures and `unsigned`: what a signature covers.
fn signed_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("signatures");
        o.remove("unsigned");
    }
    v
}

impl Homeserver {
    /// A stored cross-signing key of `user_id` (`master`, `self_signing`, `user_signing`), as
    /// uploaded, without the signatures made of it since.
    pub(crate) fn stored_cross_signing_key(&self, user_id: &str, kind: &str) -> Result<Option<Value>> {
        self.get_json(CROSS_SIGNING_KEYS, &key(&[user_id, kind]))
    }

    /// A cross-signing key with the signatures `viewer` may see merged in: the owner's own
    /// signatures, and those `viewer` made.
    pub fn cross_signing_key(&self, viewer: &str, user_id: &str, kind: &str) -> Result<Option<Value>> {
        let Some(mut k) = self.stored_cross_signing_key(user_id, kind)? else { return Ok(None) };
        if let Some((_, public)) = ed25519_of(&k) {
            self.merge_signatures(viewer, user_id, &public, &mut k)?;
        }
        Ok(Some(k))
    }

    /// Adds the stored signatures of `(user_id, target)` (a device id, or a cross-signing
    /// public key) that `viewer` may see to `object.signatures`.
    pub(crate) fn merge_signatures(&self, viewer: &str, user_id: &str, target: &str, object: &mut Value) -> Result<()> {
        for entry in self.db.scan_prefix(KEY_SIGNATURES, &key(&[user_id, target]))? {
            let (k, sig) = entry?;
            let parts = crate::tables::split(&k);
            let (Some(signer), Some(key_id)) = (parts.get(2), parts.get(3)) else { continue };
            // Signatures of other users' keys are the signer's own business.
            if *signer != user_id && *signer != viewer {
                continue;
            }
            if !object.get("signatures").is_some_and(Value::is_object) {
                object["signatures"] = json!({});
            }
            object["signatures"][*signer][*key_id] = String::from_utf8_lossy(&sig).into_owned().into();
        }
        Ok(())
    }

    /// Whether an upload of cross-signing keys needs the user to authenticate: it replaces
    /// keys the user has (a first upload, or one that changes nothing, does not).
    pub fn cross_signing_upload_needs_auth(&self, user_id: &str, body: &Value) -> Result<bool> {
        let Some(master) = self.stored_cross_signing_key(user_id, MASTER)? else { return Ok(false) };
        for kind in [MASTER, SELF_SIGNING, USER_SIGNING] {
            let field = format!("{kind}_key");
            if let Some(new) = body.get(&field).filter(|v| !v.is_null()) {
                let old =
                    if kind == MASTER { Some(master.clone()) } else { self.stored_cross_signing_key(user_id, kind)? };
                if old.is_none_or(|old| signed_part(&old) != signed_part(new)) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// `/keys/device_signing/upload` (after any user-interactive auth): checks each key's
    /// owner, usage and single ed25519 key, and that the self- and user-signing keys are
    /// signed by the master key (the new one, or the stored one).
    pub fn upload_cross_signing_keys(&self, user_id: &str, body: &Value) -> Result<()> {
        let get = |kind: &str| body.get(format!("{kind}_key")).filter(|v| !v.is_null()).cloned();
        let master = match get(MASTER) {
            Some(m) => Some(check_key(user_id, MASTER, &m)?),
            None => None,
        };
        let master_public = match &master {
            Some(m) => ed25519_of(m),
            None => self.stored_cross_signing_key(user_id, MASTER)?.as_ref().and_then(ed25519_of),
        };
        let mut uploads = Vec::new();
        if let Some(m) = master {
            uploads.push((MASTER, m));
        }
        for kind in [SELF_SIGNING, USER_SIGNING] {
            let Some(k) = get(kind) else { continue };
            let k = check_key(user_id, kind, &k)?;
            let (id, public) =
                master_public.as_ref().ok_or_else(|| Error::invalid_param("A master key must be uploaded first"))?;
            if !signed_by(&k, user_id, id, public) {
                return Err(Error::new(
                    ErrorKind::InvalidSignature,
                    format!("The {kind} key is not signed by the master key"),
                ));
            }
            uploads.push((kind, k));
        }
        if uploads.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            for (kind, k) in &uploads {
                txn.put_json(CROSS_SIGNING_KEYS, key(&[user_id, kind]), k);
            }
            self.note_key_change(txn, user_id);
            self.note_unshared_change(txn, user_id, "", false);
            Ok(())
        })?;
        self.share_signing_keys(user_id)
    }

    /// `/keys/signatures/upload`: signatures by `user_id` of its own devices (with the
    /// self-signing key), its own master key (with a device key) and other users' master keys
    /// (with the user-signing key). Returns the `failures` object.
    pub fn upload_signatures(&self, user_id: &str, body: &Value) -> Result<Value> {
        let body = body.as_object().ok_or_else(|| Error::bad_json("The body must be an object"))?;
        let mut failures = Map::new();
        let mut accepted: Vec<(String, String, String, String)> = Vec::new();
        let mut devices_changed = Vec::new();
        for (target_user, keys) in body {
            let keys = keys.as_object().ok_or_else(|| Error::bad_json("Expected an object of keys"))?;
            for (key_id, object) in keys {
                match self.check_signature(user_id, target_user, key_id, object) {
                    Ok((signer_key, sig)) => {
                        if target_user == user_id && self.device(user_id, key_id)?.is_some() {
                            devices_changed.push(key_id.clone());
                        }
                        accepted.push((target_user.clone(), key_id.clone(), signer_key, sig));
                    }
                    Err(e) => {
                        let (_, errcode) = e.kind.status_and_errcode();
                        failures
                            .entry(target_user.clone())
                            .or_insert_with(|| json!({}))
                            .as_object_mut()
                            .map(|m| m.insert(key_id.clone(), json!({ "errcode": errcode, "error": e.message })));
                    }
                }
            }
        }
        if !accepted.is_empty() {
            self.write(|txn| {
                for (target_user, target, signer_key, sig) in &accepted {
                    self.store_signature(txn, target_user, target, user_id, signer_key, sig);
                    self.note_key_change(txn, target_user);
                }
                for device in &devices_changed {
                    self.note_unshared_change(txn, user_id, device, false);
                }
                if accepted.iter().any(|(t, _, _, _)| t == user_id) {
                    self.note_unshared_change(txn, user_id, "", false);
                }
                Ok(())
            })?;
            for device in devices_changed {
                self.share_device_change(user_id, &device, false)?;
            }
            if accepted.iter().any(|(t, _, _, _)| t == user_id) {
                self.share_signing_keys(user_id)?;
            }
        }
        Ok(Value::Object(failures))
    }

    fn store_signature(&self, txn: &mut Txn, target_user: &str, target: &str, signer: &str, key_id: &str, sig: &str) {
        txn.batch.put(KEY_SIGNATURES, key(&[target_user, target, signer, key_id]), sig.as_bytes().to_vec());
    }

    /// Checks one signature of `object` (the key `key_id` of `target_user`) by `signer`:
    /// the signing key's id and the signature, or why it is refused. `target` in storage is
    /// the device id, or the public key of a cross-signing key.
    fn check_signature(
        &self,
        signer: &str,
        target_user: &str,
        key_id: &str,
        object: &Value,
    ) -> Result<(String, String)> {
        let sigs = object
            .pointer(&format!("/signatures/{}", escape(signer)))
            .and_then(Value::as_object)
            .ok_or_else(|| Error::new(ErrorKind::InvalidSignature, "No signature of the uploader"))?;
        let invalid = || Error::new(ErrorKind::InvalidSignature, "Invalid signature");
        // The key that should have signed, by what is signed.
        let (stored, signing_keys): (Value, Vec<(String, String)>) = if target_user == signer {
            if let Some(device_keys) = self.uploaded_device_keys(signer, key_id)? {
                let ssk = self.stored_cross_signing_key(signer, SELF_SIGNING)?.as_ref().and_then(ed25519_of);
                (device_keys, ssk.into_iter().collect())
            } else {
                let master = self
                    .stored_cross_signing_key(signer, MASTER)?
                    .filter(|m| ed25519_of(m).is_some_and(|(_, p)| p == key_id))
                    .ok_or_else(|| Error::not_found("Unknown key"))?;
                // Any of the user's own devices may sign their master key.
                let mut device_signers = Vec::new();
                for device in self.devices(signer)? {
                    if let Some(dk) = self.uploaded_device_keys(signer, &device.device_id)?
                        && let Some(public) =
                            dk.pointer(&format!("/keys/ed25519:{}", escape(&device.device_id))).and_then(Value::as_str)
                    {
                        device_signers.push((format!("ed25519:{}", device.device_id), public.to_owned()));
                    }
                }
                (master, device_signers)
            }
        } else {
            let master = self
                .stored_cross_signing_key(target_user, MASTER)?
                .filter(|m| ed25519_of(m).is_some_and(|(_, p)| p == key_id))
                .ok_or_else(|| Error::not_found("Unknown key"))?;
            let usk = self.stored_cross_signing_key(signer, USER_SIGNING)?.as_ref().and_then(ed25519_of);
            (master, usk.into_iter().collect())
        };
        if signed_part(&stored) != signed_part(object) {
            return Err(Error::invalid_param("The signed object does not match the stored key"));
        }
        for (id, public) in signing_keys {
            if let Some(sig) = sigs.get(&id).and_then(Value::as_str)
                && verify(object, sig, &public)
            {
                return Ok((id, sig.to_owned()));
            }
        }
        Err(invalid())
    }

    /// Stores another server's report of one of its users' master or self-signing keys.
    pub fn store_remote_cross_signing_key(&self, user_id: &str, kind: &str, k: &Value) -> Result<()> {
        if self.is_local(user_id) || check_key(user_id, kind, k).is_err() {
            return Ok(());
        }
        if self.stored_cross_signing_key(user_id, kind)?.as_ref() == Some(k) {
            return Ok(());
        }
        self.write(|txn| {
            txn.put_json(CROSS_SIGNING_KEYS, key(&[user_id, kind]), k);
            self.note_key_change(txn, user_id);
            Ok(())
        })
    }
}

/// A cross-signing key's owner, usage and key.
fn check_key(user_id: &str, kind: &str, k: &Value) -> Result<Value> {
    if k.get("user_id").and_then(Value::as_str) != Some(user_id) {
        return Err(Error::invalid_param(format!("The {kind} key is not for this user")));
    }
    if !k.get("usage").and_then(Value::as_array).is_some_and(|u| u.iter().any(|x| x == kind)) {
        return Err(Error::invalid_param(format!("The {kind} key must have usage {kind}")));
    }
    if ed25519_of(k).is_none() {
        return Err(Error::invalid_param(format!("The {kind} key must hold exactly one ed25519 key")));
    }
    Ok(k.clone())
}
