//! What clients do at start-up for encryption, between two local users.

use std::time::Duration;

use serde_json::json;
use tandem_conformance::server;

#[test]
fn keys_upload_query_claim() {
    let s = server();
    let alice = s.register("keysA");
    let bob = s.register("keysB");
    let device_keys = json!({
        "user_id": alice.user_id, "device_id": alice.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{}", alice.device_id): "curvekey", format!("ed25519:{}", alice.device_id): "edkey" },
        "signatures": { alice.user_id.clone(): { format!("ed25519:{}", alice.device_id): "sig" } },
    });
    let up = alice.post(
        "/_matrix/client/v3/keys/upload",
        json!({
            "device_keys": device_keys,
            "one_time_keys": {
                "signed_curve25519:AAAAAQ": { "key": "otk1", "signatures": {} },
                "signed_curve25519:AAAAAg": { "key": "otk2", "signatures": {} },
            },
            "fallback_keys": { "signed_curve25519:AAAAAw": { "key": "fb", "fallback": true, "signatures": {} } },
        }),
    );
    assert_eq!(up.expect(200)["one_time_key_counts"]["signed_curve25519"], 2);
    let q =
        bob.post("/_matrix/client/v3/keys/query", json!({ "device_keys": { alice.user_id.clone(): [] } })).expect(200);
    let dk = &q["device_keys"][&alice.user_id][&alice.device_id];
    assert_eq!(dk["keys"][format!("curve25519:{}", alice.device_id)], "curvekey", "{q}");
    let claim = |who: &tandem_conformance::User<'_>| {
        who.post(
            "/_matrix/client/v3/keys/claim",
            json!({ "one_time_keys": { alice.user_id.clone(): { alice.device_id.clone(): "signed_curve25519" } } }),
        )
        .expect(200)
    };
    let c1 = claim(&bob);
    let got = c1["one_time_keys"][&alice.user_id][&alice.device_id].as_object().expect("a key").clone();
    assert_eq!(got.len(), 1);
    claim(&bob);
    // One-time keys used up: the fallback key is handed out.
    let c3 = claim(&bob);
    let fb = c3["one_time_keys"][&alice.user_id][&alice.device_id].as_object().expect("the fallback key").clone();
    assert!(fb.contains_key("signed_curve25519:AAAAAw"), "{c3}");
    let counts = alice.sync(None, "");
    assert_eq!(
        counts["device_one_time_keys_count"]["signed_curve25519"].as_u64().unwrap_or(0),
        0,
        "{}",
        counts["device_one_time_keys_count"]
    );
    // A device may only upload its own keys.
    let wrong = json!({ "device_keys": { "user_id": bob.user_id, "device_id": "OTHER", "algorithms": [], "keys": {}, "signatures": {} } });
    let r = alice.post("/_matrix/client/v3/keys/upload", wrong);
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[test]
fn to_device_messages_are_delivered_once() {
    let s = server();
    let alice = s.register("tdA");
    let bob = s.register("tdB");
    let since = bob.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    let body = json!({ "messages": { bob.user_id.clone(): { bob.device_id.clone(): { "secret": 42 } } } });
    alice.put("/_matrix/client/v3/sendToDevice/org.example.ping/txn1", body.clone()).expect(200);
    alice.put("/_matrix/client/v3/sendToDevice/org.example.ping/txn1", body).expect(200);
    let (events, next) = bob.sync_until(Some(&since), Duration::from_secs(15), |r| {
        let e = r["to_device"]["events"].as_array()?;
        (!e.is_empty()).then(|| e.clone())
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["sender"], alice.user_id.as_str());
    assert_eq!(events[0]["type"], "org.example.ping");
    assert_eq!(events[0]["content"]["secret"], 42);
    let after = bob.sync(Some(&next), "");
    assert!(after["to_device"]["events"].as_array().is_none_or(|e| e.is_empty()), "{after}");
}
