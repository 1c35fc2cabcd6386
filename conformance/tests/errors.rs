//! Bad input gets the Matrix error the spec names, with its status, and changes nothing.

use serde_json::json;
use tandem_conformance::client::unique;
use tandem_conformance::{enc, server};

#[test]
fn unknown_endpoints_are_unrecognized() {
    let s = server();
    s.call("GET", "/_matrix/client/v3/no_such_thing", None, None).expect_err(404, "M_UNRECOGNIZED");
}

#[test]
fn malformed_bodies() {
    let s = server();
    let u = s.register("badjson");
    let auth = format!("Bearer {}", u.token);
    let h = [("Authorization", auth.as_str())];
    let r = s.raw("POST", "/_matrix/client/v3/createRoom", &h, Some(b"{not json"));
    r.expect_err(400, "M_NOT_JSON");
    let r = s.raw("POST", "/_matrix/client/v3/createRoom", &h, Some(b"[1,2,3]"));
    r.expect_err(400, "M_BAD_JSON");
    // Wrong types in a known field: 400 (Synapse says M_UNKNOWN here, Tandem M_BAD_JSON).
    let r = u.post("/_matrix/client/v3/createRoom", json!({ "invite": "not-a-list" }));
    assert_eq!(r.status, 400, "{:?}", r.body);
    // Nothing was created by the failed attempts.
    let rooms = u.get("/_matrix/client/v3/joined_rooms").expect(200);
    assert_eq!(rooms["joined_rooms"], json!([]));
}

#[test]
fn oversized_events_are_refused() {
    let s = server();
    let u = s.register("big");
    let room = u.create_room(json!({}));
    let huge = "x".repeat(70_000);
    let r = u.put(
        &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(&room), unique("t")),
        json!({ "msgtype": "m.text", "body": huge }),
    );
    r.expect_err(413, "M_TOO_LARGE");
    let page = u.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50", enc(&room))).expect(200);
    assert!(!page.to_string().contains("xxxxxxxxxx"), "the refused event was stored");
}

#[test]
fn unknown_rooms_and_users() {
    let s = server();
    let u = s.register("unknowns");
    let fake = format!("!{}:{}", unique("nope"), u.server_name());
    let r = u.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&fake)));
    assert!(r.status == 403 || r.status == 404, "{:?}", r.body);
    let r = u.put(
        &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(&fake), unique("t")),
        json!({ "body": "x", "msgtype": "m.text" }),
    );
    assert!(r.status == 403 || r.status == 404, "{:?}", r.body);
    let r = u.post(
        &format!("/_matrix/client/v3/join/{}", enc(&format!("#{}:{}", unique("none"), u.server_name()))),
        json!({}),
    );
    r.expect_err(404, "M_NOT_FOUND");
    let r = s.call("GET", &format!("/_matrix/client/v3/profile/{}", enc("not a user id")), Some(&u.token), None);
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[test]
fn registration_and_login_reject_bad_input() {
    let s = server();
    let r = s.call("POST", "/_matrix/client/v3/login", None, Some(&json!({ "type": "m.login.bogus" })));
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = s.call(
        "POST",
        "/_matrix/client/v3/register",
        None,
        Some(&json!({ "username": "UPPER case", "password": "x", "auth": { "type": "m.login.dummy" } })),
    );
    r.expect_err(400, "M_INVALID_USERNAME");
    let r = s.call("POST", "/_matrix/client/v3/register?kind=guest", None, Some(&json!({})));
    assert_eq!(r.status, 403, "{:?}", r.body);
}
