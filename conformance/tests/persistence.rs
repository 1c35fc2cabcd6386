//! Everything a client was told succeeded is still there after the server stops (and, for
//! Tandem, after it is killed with `kill -9`).

use serde_json::json;
use tandem_conformance::{User, enc, server};

#[test]
fn survives_restart_and_crash() {
    let s = server();
    if !s.can_restart() {
        eprintln!("skipped: this server cannot be restarted (set TANDEM_CONFORMANCE_RESTART)");
        return;
    }
    let alice = s.register("persistA");
    let bob = s.register("persistB");
    let room = alice.create_room(json!({ "preset": "public_chat", "name": "Durable" }));
    bob.join(&room);
    let ids: Vec<String> = (0..5).map(|i| alice.send_text(&room, &format!("p{i}"))).collect();
    alice.send_state(&room, "m.room.topic", "", json!({ "topic": "kept" })).expect(200);
    alice
        .put(
            &format!("/_matrix/client/v3/user/{}/account_data/org.example.kept", enc(&alice.user_id)),
            json!({ "v": 1 }),
        )
        .expect(200);
    alice
        .put(
            &format!("/_matrix/client/v3/profile/{}/displayname", enc(&alice.user_id)),
            json!({ "displayname": "Kept Name" }),
        )
        .expect(200);

    let check = |alice: &User<'_>, bob: &User<'_>| {
        alice.get("/_matrix/client/v3/account/whoami").expect(200);
        bob.get("/_matrix/client/v3/account/whoami").expect(200);
        assert_eq!(alice.state(&room, "m.room.name", "").expect(200)["name"], "Durable");
        assert_eq!(alice.state(&room, "m.room.topic", "").expect(200)["topic"], "kept");
        assert_eq!(alice.state(&room, "m.room.member", &bob.user_id).expect(200)["membership"], "join");
        let page = bob.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50", enc(&room))).expect(200);
        let seen: Vec<&str> = page["chunk"].as_array().unwrap().iter().filter_map(|e| e["event_id"].as_str()).collect();
        for id in &ids {
            assert!(seen.contains(&id.as_str()), "{id} lost");
        }
        let data = alice
            .get(&format!("/_matrix/client/v3/user/{}/account_data/org.example.kept", enc(&alice.user_id)))
            .expect(200);
        assert_eq!(data["v"], 1);
        let name = alice.get(&format!("/_matrix/client/v3/profile/{}/displayname", enc(&alice.user_id))).expect(200);
        assert_eq!(name["displayname"], "Kept Name");
        let devices = alice.get("/_matrix/client/v3/devices").expect(200);
        assert!(devices["devices"].as_array().unwrap().iter().any(|d| d["device_id"] == alice.device_id.as_str()));
        let joined = bob.get("/_matrix/client/v3/joined_rooms").expect(200);
        assert!(joined["joined_rooms"].as_array().unwrap().iter().any(|r| r == room.as_str()));
    };

    s.restart(false);
    check(&alice, &bob);
    // A message acknowledged right before a crash survives it.
    let last = alice.send_text(&room, "just before the crash");
    s.restart(true);
    check(&alice, &bob);
    let ev = bob.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&last))).expect(200);
    assert_eq!(ev["content"]["body"], "just before the crash");
    // The room still works.
    bob.send_text(&room, "after");
}
