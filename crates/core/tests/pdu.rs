//! The signing test vectors of the spec's appendices, and PDUs that verify.

use base64::Engine;
use ruma::signatures::Verified;
use ruma::{CanonicalJsonObject, RoomVersionId};
use serde_json::{Value, json};
use tandem_core::pdu::hash_sign_and_id;
use tandem_core::server_key::{LENIENT_BASE64, ServerKey};

/// `SIGNING_KEY_SEED`, `SERVER_NAME` and `KEY_ID` of the appendix "Cryptographic test vectors".
fn spec_key() -> ServerKey {
    let seed = LENIENT_BASE64.decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1").unwrap();
    ServerKey::from_seed(seed.try_into().unwrap(), "1")
}

fn object(v: Value) -> CanonicalJsonObject {
    serde_json::from_value(v).unwrap()
}

fn signature(obj: &CanonicalJsonObject) -> Value {
    serde_json::to_value(obj).unwrap()["signatures"]["domain"]["ed25519:1"].clone()
}

#[test]
fn json_signing_vectors() {
    let key = spec_key();
    let mut empty = object(json!({}));
    key.sign_json("domain", &mut empty).unwrap();
    assert_eq!(
        signature(&empty),
        "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
    );
    let mut data = object(json!({"one": 1, "two": "Two"}));
    key.sign_json("domain", &mut data).unwrap();
    assert_eq!(
        signature(&data),
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    );
}

#[test]
fn event_signing_vectors() {
    let rules = RoomVersionId::V1.rules().unwrap();
    let key = spec_key();
    let mut message = object(json!({
        "content": {"body": "Here is the message content"}, "event_id": "$0:domain", "origin": "domain",
        "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
        "signatures": {}, "unsigned": {"age_ts": 1000000}
    }));
    let id = hash_sign_and_id(&rules, "domain", &key, &mut message).unwrap();
    assert_eq!(id, "$0:domain");
    let v = serde_json::to_value(&message).unwrap();
    assert_eq!(v["hashes"]["sha256"], "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g");
    assert_eq!(
        signature(&message),
        "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
    );
}

#[test]
fn the_minimal_event_signature_matches_the_spec() {
    // The spec's minimal event carries no event_id, so it is hashed and signed as given rather
    // than through `hash_sign_and_id`, which needs the id of a v1 event.
    let rules = RoomVersionId::V1.rules().unwrap();
    let key = spec_key();
    let mut minimal = object(json!({
        "room_id": "!x:domain", "sender": "@a:domain", "origin": "domain", "origin_server_ts": 1000000,
        "signatures": {}, "hashes": {}, "type": "X", "content": {}, "prev_events": [], "auth_events": [],
        "depth": 3, "unsigned": {"age_ts": 1000000}
    }));
    ruma::signatures::hash_and_sign_event("domain", key.pair(), &mut minimal, &rules.redaction).unwrap();
    assert_eq!(
        signature(&minimal),
        "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
    );
}

#[test]
fn pdus_of_current_room_versions_verify_and_ids_are_reference_hashes() {
    let key = ServerKey::generate("test");
    for version in [RoomVersionId::V10, RoomVersionId::V11, RoomVersionId::V12] {
        let rules = version.rules().unwrap();
        let mut create = object(json!({
            "type": "m.room.create", "sender": "@alice:tandem.test", "state_key": "",
            "content": {"room_version": version.as_str()}, "origin_server_ts": 1, "depth": 1,
            "prev_events": [], "auth_events": [], "room_id": "!r:tandem.test"
        }));
        if version == RoomVersionId::V12 {
            create.remove("room_id");
        }
        let id = hash_sign_and_id(&rules, "tandem.test", &key, &mut create).unwrap();
        assert!(id.starts_with('$') && !id.contains(':'), "{id}");
        let verified = ruma::signatures::verify_event(&key.public_key_map("tandem.test"), &create, &rules).unwrap();
        assert_eq!(verified, Verified::All);
        // Tampering with the content breaks the hash (the signature, over the redacted event,
        // still holds); tampering with a protected field breaks the signature.
        let mut tampered = create.clone();
        tampered.insert("content".into(), serde_json::from_value(json!({"room_version": "1"})).unwrap());
        let v = ruma::signatures::verify_event(&key.public_key_map("tandem.test"), &tampered, &rules);
        assert!(matches!(v, Ok(Verified::Signatures)) || v.is_err(), "{v:?}");
        let mut forged = create.clone();
        forged.insert("sender".into(), ruma::CanonicalJsonValue::String("@mallory:tandem.test".into()));
        assert!(ruma::signatures::verify_event(&key.public_key_map("tandem.test"), &forged, &rules).is_err());
    }
}

#[test]
fn the_key_file_is_created_once_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.key");
    let first = ServerKey::load_or_generate(&path).unwrap();
    let again = ServerKey::load_or_generate(&path).unwrap();
    assert_eq!(first.public_key_base64(), again.public_key_base64());
    assert_eq!(first.key_id(), again.key_id());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("ed25519 a_"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(ServerKey::parse("ed25519 1").is_err());
    assert!(ServerKey::parse("rsa 1 AAAA").is_err());
    assert!(ServerKey::parse("ed25519 1 not-base64!").is_err());
    assert!(ServerKey::parse("ed25519 1 AAAA").is_err());
    // Synapse's format, with the spec's test seed.
    let key = ServerKey::parse("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n").unwrap();
    assert_eq!(key.key_id(), "ed25519:1");
}
