//! Talking to a server under test as another homeserver would: over TLS to its federation
//! port, with requests signed (`X-Matrix`) by a key the test holds. The tests borrow a real
//! peer's identity (its server name and signing key file), so the server under test can fetch
//! that key from the peer as it would for any request.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::http::Response;

/// A server identity: its name and signing key.
pub struct Identity {
    pub name: String,
    pub key_id: String,
    key: SigningKey,
}

impl Identity {
    /// A fresh identity with a key of its own (a server of the test's making).
    pub fn generate(name: &str) -> Identity {
        let seed: [u8; 32] = rand::random();
        let version: String = (0..6).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
        Identity { name: name.to_owned(), key_id: format!("ed25519:{version}"), key: SigningKey::from_bytes(&seed) }
    }

    /// The unpadded base64 public key.
    pub fn public_key(&self) -> String {
        STANDARD_NO_PAD.encode(self.key.verifying_key().to_bytes())
    }

    /// Reads a key file in the `ed25519 <version> <seed>` format Tandem and Synapse share.
    pub fn from_key_file(name: &str, path: &Path) -> Identity {
        let text = std::fs::read_to_string(path).expect("signing key file");
        let mut parts = text.split_whitespace();
        let (Some("ed25519"), Some(version), Some(seed)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("not a signing key file: {}", path.display());
        };
        let seed =
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(seed.trim_end_matches('=')).expect("base64 seed");
        let seed: [u8; 32] = seed.try_into().expect("32-byte seed");
        Identity { name: name.to_owned(), key_id: format!("ed25519:{version}"), key: SigningKey::from_bytes(&seed) }
    }

    /// Signs `value` (canonical JSON without `signatures` and `unsigned`), adding the signature.
    pub fn sign(&self, value: &mut Value) {
        let mut bare = value.clone();
        if let Some(obj) = bare.as_object_mut() {
            obj.remove("signatures");
            obj.remove("unsigned");
        }
        let sig = STANDARD_NO_PAD.encode(self.key.sign(canonical(&bare).as_bytes()).to_bytes());
        value["signatures"][&self.name][&self.key_id] = json!(sig);
    }

    /// The `Authorization` header for a request to `destination`.
    pub fn x_matrix(&self, method: &str, destination: &str, uri: &str, body: Option<&Value>) -> String {
        let mut request = json!({ "method": method, "uri": uri, "origin": self.name, "destination": destination });
        if let Some(b) = body {
            request["content"] = b.clone();
        }
        let sig = STANDARD_NO_PAD.encode(self.key.sign(canonical(&request).as_bytes()).to_bytes());
        format!(r#"X-Matrix origin="{}",destination="{destination}",key="{}",sig="{sig}""#, self.name, self.key_id)
    }

    /// A signed request to `destination`'s federation port over TLS (any certificate).
    pub fn request(&self, destination: &str, method: &str, uri: &str, body: Option<&[u8]>) -> Response {
        let json: Option<Value> = body.and_then(|b| serde_json::from_slice(b).ok());
        let auth = self.x_matrix(method, destination, uri, json.as_ref());
        send(destination, method, uri, &[("Authorization", &auth)], body)
    }
}

/// Top-level keys a redacted event keeps (room versions 11 and 12).
const KEPT: &[&str] = &[
    "event_id",
    "type",
    "room_id",
    "sender",
    "state_key",
    "content",
    "hashes",
    "signatures",
    "depth",
    "prev_events",
    "auth_events",
    "origin_server_ts",
];

/// The content keys redaction keeps, by event type (room versions 11 and 12).
fn kept_content(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "m.room.member" => &["membership", "join_authorised_via_users_server"],
        "m.room.join_rules" => &["join_rule", "allow"],
        "m.room.history_visibility" => &["history_visibility"],
        "m.room.redaction" => &["redacts"],
        "m.room.power_levels" => {
            &["ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"]
        }
        // The create event keeps all of its content.
        "m.room.create" => return None,
        _ => &[],
    })
}

/// The redacted form of an event (room versions 11 and 12).
fn redacted(event: &Value) -> Value {
    let kind = event["type"].as_str().unwrap_or_default();
    let mut out = serde_json::Map::new();
    for (k, v) in event.as_object().expect("object") {
        if !KEPT.contains(&k.as_str()) {
            continue;
        }
        let value = match (k.as_str(), kept_content(kind)) {
            ("content", Some(keep)) => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(ck, _)| keep.contains(&ck.as_str()))
                    .map(|(ck, cv)| (ck.clone(), cv.clone()))
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    Value::Object(out)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

impl Identity {
    /// A PDU with its content hash, this identity's signature and its event id (the reference
    /// hash), by the redaction rules of room versions 11 and 12.
    pub fn pdu(&self, mut event: Value) -> (String, Value) {
        let mut for_hash = event.clone();
        for k in ["unsigned", "signatures", "hashes"] {
            for_hash.as_object_mut().expect("object").remove(k);
        }
        event["hashes"] = json!({ "sha256": STANDARD_NO_PAD.encode(sha256(canonical(&for_hash).as_bytes())) });
        let mut red = redacted(&event);
        self.sign(&mut red);
        event["signatures"] = red["signatures"].clone();
        (event_id(&event), event)
    }
}

/// The reference-hash event id of a PDU (room versions 4 on).
pub fn event_id(event: &Value) -> String {
    let mut red = redacted(event);
    let obj = red.as_object_mut().expect("object");
    obj.remove("signatures");
    obj.remove("unsigned");
    let hash = sha256(canonical(&red).as_bytes());
    format!("${}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash))
}

/// A request over TLS to `host:port`, any certificate accepted.
pub fn send(destination: &str, method: &str, uri: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, format!("https://{destination}{uri}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b.to_vec());
    }
    let r = req.send().expect("federation request");
    let status = r.status().as_u16();
    let headers = r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned())).collect();
    let raw = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Response { status, headers, raw, body }
}

/// Canonical JSON: keys sorted at every level, no insignificant whitespace.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::to_string(k).expect("string"), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => serde_json::to_string(other).expect("serializable"),
    }
}
