//! Reporting content to the administrators (events, rooms: v1.13, users: v1.14), and the
//! third-party lookups of a server without bridges.

use serde_json::json;
use tandem_conformance::{enc, server, unique};

#[test]
fn events_rooms_and_users_can_be_reported() {
    let s = server();
    let alice = s.register("reporter");
    let mallory = s.register("spammer");
    let outsider = s.register("outsider");
    let room = alice.create_room(json!({ "preset": "private_chat", "invite": [mallory.user_id] }));
    mallory.join(&room);
    let spam = mallory.send_text(&room, "buy cheap watches");
    let path = format!("/_matrix/client/v3/rooms/{}/report/{}", enc(&room), enc(&spam));
    alice.post(&path, json!({ "reason": "spam", "score": -100 })).expect(200);
    alice.post(&path, json!({})).expect(200);
    alice.post(&path, json!({ "reason": 5 })).expect_err(400, "M_BAD_JSON");
    alice.post(&path, json!({ "score": "very bad" })).expect_err(400, "M_BAD_JSON");
    // An event one cannot see, or that does not exist, cannot be reported (nor found out about).
    outsider.post(&path, json!({ "reason": "spam" })).expect_err(404, "M_NOT_FOUND");
    let missing = format!("/_matrix/client/v3/rooms/{}/report/{}", enc(&room), enc("$nothing-here"));
    alice.post(&missing, json!({ "reason": "spam" })).expect_err(404, "M_NOT_FOUND");

    let room_path = format!("/_matrix/client/v3/rooms/{}/report", enc(&room));
    alice.post(&room_path, json!({ "reason": "a room for spam" })).expect(200);
    alice.post(&room_path, json!({})).expect_err(400, "M_MISSING_PARAM");
    let nowhere =
        format!("/_matrix/client/v3/rooms/{}/report", enc(&format!("!{}:{}", unique("none"), alice.server_name())));
    alice.post(&nowhere, json!({ "reason": "gone" })).expect_err(404, "M_NOT_FOUND");

    let user_path = |u: &str| format!("/_matrix/client/v3/users/{}/report", enc(u));
    alice.post(&user_path(&mallory.user_id), json!({ "reason": "sends spam" })).expect(200);
    alice.post(&user_path(&mallory.user_id), json!({ "reason": 1 })).expect_err(400, "M_BAD_JSON");
    alice.post(&user_path(&mallory.user_id), json!({ "reason": "x".repeat(1001) })).expect_err(400, "M_BAD_JSON");
    // Whether a user exists is not given away.
    let nobody = format!("@{}:{}", unique("nobody"), alice.server_name());
    alice.post(&user_path(&nobody), json!({ "reason": "who?" })).expect(200);
    s.call("POST", &user_path(&mallory.user_id), None, Some(&json!({ "reason": "x" })))
        .expect_err(401, "M_MISSING_TOKEN");
}

#[test]
fn no_bridges_means_no_protocols_users_or_locations() {
    let s = server();
    let u = s.register("thirdparty");
    assert_eq!(u.get("/_matrix/client/v3/thirdparty/protocols").expect(200), json!({}));
    assert_eq!(u.get("/_matrix/client/v3/thirdparty/protocol/irc").status, 404);
    assert_eq!(u.get("/_matrix/client/v3/thirdparty/location?alias=%23a%3Ab").expect(200), json!([]));
    assert_eq!(u.get("/_matrix/client/v3/thirdparty/user?userid=%40a%3Ab").expect(200), json!([]));
    assert_eq!(u.get("/_matrix/client/v3/thirdparty/location/irc?channel=x").expect(200), json!([]));
    assert_eq!(u.get("/_matrix/client/v3/thirdparty/user/irc?nick=x").expect(200), json!([]));
}
