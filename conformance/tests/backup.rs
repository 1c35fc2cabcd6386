//! Server-side key backup: versions, keys per room and session, `count` and `etag`.

use serde_json::{Value, json};
use tandem_conformance::{enc, server};

const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";

fn key_data(first_message_index: u64, verified: bool, marker: &str) -> Value {
    json!({
        "first_message_index": first_message_index, "forwarded_count": 0, "is_verified": verified,
        "session_data": { "ephemeral": marker, "ciphertext": "c", "mac": "m" },
    })
}

#[test]
fn key_backup_versions_and_keys() {
    let s = server();
    let u = s.register("backup");
    let other = s.register("backup_other");
    let room = "!room:example.org";
    u.get("/_matrix/client/v3/room_keys/version").expect_err(404, "M_NOT_FOUND");

    let auth_data = json!({ "public_key": "abcdefg", "signatures": {} });
    let v1 = u
        .post("/_matrix/client/v3/room_keys/version", json!({ "algorithm": ALGORITHM, "auth_data": auth_data }))
        .expect(200)["version"]
        .as_str()
        .expect("version")
        .to_owned();
    let info = u.get("/_matrix/client/v3/room_keys/version").expect(200);
    assert_eq!(info["version"], v1.as_str());
    assert_eq!(info["algorithm"], ALGORITHM);
    assert_eq!(info["auth_data"], auth_data);
    assert_eq!(info["count"], 0);
    let etag0 = info["etag"].as_str().expect("etag").to_owned();
    // Backups are per user.
    other.get("/_matrix/client/v3/room_keys/version").expect_err(404, "M_NOT_FOUND");

    let session = |v: &str, sid: &str| format!("/_matrix/client/v3/room_keys/keys/{}/{sid}?version={v}", enc(room));
    let put = u.put(&session(&v1, "s1"), key_data(5, false, "first")).expect(200);
    assert_eq!(put["count"], 1);
    let etag1 = put["etag"].as_str().expect("etag").to_owned();
    assert_ne!(etag0, etag1, "the etag changes with the keys");
    // A worse key (later first message index) does not replace a better one; a better one does.
    u.put(&session(&v1, "s1"), key_data(9, false, "worse")).expect(200);
    assert_eq!(u.get(&session(&v1, "s1")).expect(200)["session_data"]["ephemeral"], "first");
    u.put(&session(&v1, "s1"), key_data(7, true, "verified")).expect(200);
    assert_eq!(u.get(&session(&v1, "s1")).expect(200)["session_data"]["ephemeral"], "verified");

    // Several rooms at once, then read back whole and per room.
    let body = json!({ "rooms": {
        room: { "sessions": { "s2": key_data(0, false, "two") } },
        "!second:example.org": { "sessions": { "s3": key_data(0, false, "three") } },
    }});
    let put = u.put(&format!("/_matrix/client/v3/room_keys/keys?version={v1}"), body).expect(200);
    assert_eq!(put["count"], 3);
    let all = u.get(&format!("/_matrix/client/v3/room_keys/keys?version={v1}")).expect(200);
    assert_eq!(all["rooms"][room]["sessions"]["s2"]["session_data"]["ephemeral"], "two", "{all}");
    assert_eq!(all["rooms"]["!second:example.org"]["sessions"]["s3"]["first_message_index"], 0);
    let one_room = u.get(&format!("/_matrix/client/v3/room_keys/keys/{}?version={v1}", enc(room))).expect(200);
    assert_eq!(one_room["sessions"].as_object().unwrap().len(), 2, "{one_room}");
    u.get(&session(&v1, "missing")).expect_err(404, "M_NOT_FOUND");
    assert_eq!(u.get("/_matrix/client/v3/room_keys/version").expect(200)["count"], 3);
    assert_eq!(u.get("/_matrix/client/v3/room_keys/keys").status, 400, "version is required");

    // Deleting keys.
    let del = u.delete(&session(&v1, "s2"), None).expect(200);
    assert_eq!(del["count"], 2);

    // A new version becomes the current one; the old one takes no more keys.
    let v2 = u
        .post("/_matrix/client/v3/room_keys/version", json!({ "algorithm": ALGORITHM, "auth_data": auth_data }))
        .expect(200)["version"]
        .as_str()
        .expect("version")
        .to_owned();
    assert_ne!(v1, v2);
    let wrong = u.put(&session(&v1, "s4"), key_data(0, false, "late")).expect_err(403, "M_WRONG_ROOM_KEYS_VERSION");
    // The spec says `current_version` names the current version; Synapse 1.163 names the one
    // asked for, so only its presence is checked here.
    assert!(wrong["current_version"].is_string(), "{wrong}");
    assert_eq!(u.get(&format!("/_matrix/client/v3/room_keys/version/{v2}")).expect(200)["count"], 0);
    assert_eq!(u.get(&format!("/_matrix/client/v3/room_keys/version/{v1}")).expect(200)["count"], 2);

    // auth_data can change, the algorithm cannot.
    let new_auth = json!({ "public_key": "hijklmn", "signatures": {} });
    let path = format!("/_matrix/client/v3/room_keys/version/{v2}");
    u.put(&path, json!({ "algorithm": ALGORITHM, "auth_data": new_auth, "version": v2 })).expect(200);
    assert_eq!(u.get(&path).expect(200)["auth_data"], new_auth);
    assert_eq!(u.put(&path, json!({ "algorithm": ALGORITHM, "auth_data": new_auth, "version": v1 })).status, 400);

    // Deleting the current version makes the one before it current again.
    u.delete(&path, None).expect(200);
    u.get(&path).expect_err(404, "M_NOT_FOUND");
    assert_eq!(u.get("/_matrix/client/v3/room_keys/version").expect(200)["version"], v1.as_str());
    u.get("/_matrix/client/v3/room_keys/version/999999").expect_err(404, "M_NOT_FOUND");
}
