//! Room upgrades.

use serde_json::json;
use tandem_conformance::client::unique;
use tandem_conformance::{enc, server};

#[test]
fn upgrade_carries_settings_and_tombstones_the_old_room() {
    let s = server();
    let alice = s.register("upgrader");
    let bob = s.register("upgradee");
    let alias_name = unique("up");
    let old = alice.create_room(json!({
        "room_version": "11", "preset": "public_chat", "name": "Old name", "topic": "Kept topic", "room_alias_name": alias_name,
    }));
    bob.join(&old);
    let path = format!("/_matrix/client/v3/rooms/{}/upgrade", enc(&old));
    bob.post(&path, json!({ "new_version": "12" })).expect_err(403, "M_FORBIDDEN");
    alice.post(&path, json!({ "new_version": "999" })).expect_err(400, "M_UNSUPPORTED_ROOM_VERSION");
    let new =
        alice.post(&path, json!({ "new_version": "12" })).expect(200)["replacement_room"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let tomb = alice.state(&old, "m.room.tombstone", "").expect(200);
    assert_eq!(tomb["replacement_room"], new.as_str());
    let create = alice.state(&new, "m.room.create", "").expect(200);
    assert_eq!(create["room_version"], "12");
    assert_eq!(create["predecessor"]["room_id"], old.as_str());
    assert_eq!(alice.state(&new, "m.room.name", "").expect(200)["name"], "Old name");
    assert_eq!(alice.state(&new, "m.room.topic", "").expect(200)["topic"], "Kept topic");
    assert_eq!(alice.state(&new, "m.room.join_rules", "").expect(200)["join_rule"], "public");
    let alias = format!("#{alias_name}:{}", alice.server_name());
    let resolved = alice.get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).expect(200);
    assert_eq!(resolved["room_id"], new.as_str());
    // Members follow the tombstone by joining the new room.
    bob.join(&new);
    bob.send_text(&new, "made it");
}

/// Power levels a client sends must be integers, even in rooms of versions that take strings
/// over federation; upgrading a room of such a version keeps every level.
#[test]
fn levels_are_integers_and_survive_an_upgrade() {
    let s = server();
    let alice = s.register("upgrader");
    let bob = s.register("moderator");
    let old = alice.create_room(json!({ "room_version": "9", "preset": "public_chat" }));
    bob.join(&old);
    let mut levels = alice.state(&old, "m.room.power_levels", "").expect(200);
    let mut stringy = levels.clone();
    stringy["kick"] = json!("40");
    alice.send_state(&old, "m.room.power_levels", "", stringy).expect_err(400, "M_BAD_JSON");
    let mut stringy = levels.clone();
    stringy["users"][&bob.user_id] = json!("50");
    alice.send_state(&old, "m.room.power_levels", "", stringy).expect_err(400, "M_BAD_JSON");
    alice
        .post("/_matrix/client/v3/createRoom", json!({ "power_level_content_override": { "ban": 1.5 } }))
        .expect_err(400, "M_BAD_JSON");
    levels["users"][&bob.user_id] = json!(50);
    levels["kick"] = json!(40);
    alice.send_state(&old, "m.room.power_levels", "", levels).expect(200);

    let path = format!("/_matrix/client/v3/rooms/{}/upgrade", enc(&old));
    let new =
        alice.post(&path, json!({ "new_version": "11" })).expect(200)["replacement_room"].as_str().unwrap().to_owned();
    let levels = alice.state(&new, "m.room.power_levels", "").expect(200);
    assert_eq!(levels["users"][&bob.user_id], 50, "{levels}");
    assert_eq!(levels["kick"], 40, "{levels}");
    bob.join(&new);
    bob.send_state(&new, "m.room.topic", "", json!({ "topic": "still a moderator" })).expect(200);
}
