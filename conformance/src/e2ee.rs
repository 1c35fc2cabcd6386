//! Encryption keys as a client makes them, with real ed25519 signatures: device keys and
//! cross-signing keys, for tests that upload, sign and query keys over HTTP.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::fedclient::canonical;

/// An ed25519 key pair.
pub struct Key(SigningKey);

impl Key {
    pub fn generate() -> Key {
        Key(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    pub fn public(&self) -> String {
        STANDARD_NO_PAD.encode(self.0.verifying_key().to_bytes())
    }

    /// Adds `signer`'s signature under `key_id` to `object` (over its canonical JSON without
    /// `signatures` and `unsigned`).
    pub fn sign(&self, object: &mut Value, signer: &str, key_id: &str) {
        let mut bare = object.clone();
        if let Some(o) = bare.as_object_mut() {
            o.remove("signatures");
            o.remove("unsigned");
        }
        let sig = STANDARD_NO_PAD.encode(self.0.sign(canonical(&bare).as_bytes()).to_bytes());
        if !object.get("signatures").is_some_and(Value::is_object) {
            object["signatures"] = json!({});
        }
        if !object["signatures"].get(signer).is_some_and(Value::is_object) {
            object["signatures"][signer] = json!({});
        }
        object["signatures"][signer][key_id] = sig.into();
    }

    /// A cross-signing key of `user_id` with `usage`, unsigned.
    pub fn cross_signing(&self, user_id: &str, usage: &str) -> Value {
        json!({ "user_id": user_id, "usage": [usage], "keys": { format!("ed25519:{}", self.public()): self.public() } })
    }

    /// `ed25519:<public key>`, the id this key signs under as a cross-signing key.
    pub fn cross_signing_id(&self) -> String {
        format!("ed25519:{}", self.public())
    }
}

/// A device's keys, signed by the device's own ed25519 key.
pub fn device_keys(user_id: &str, device_id: &str, key: &Key) -> Value {
    let mut keys = json!({
        "user_id": user_id, "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{device_id}"): STANDARD_NO_PAD.encode(rand::random::<[u8; 32]>()),
            format!("ed25519:{device_id}"): key.public(),
        },
    });
    key.sign(&mut keys, user_id, &format!("ed25519:{device_id}"));
    keys
}
