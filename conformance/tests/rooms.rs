//! Creating rooms, membership, permissions, aliases and the directories.

use serde_json::json;
use tandem_conformance::client::unique;
use tandem_conformance::{User, enc, server};

fn membership(u: &User<'_>, room: &str, user: &str) -> Option<String> {
    let r = u.state(room, "m.room.member", user);
    (r.status == 200).then(|| r.body["membership"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn create_room_applies_presets_and_options() {
    let s = server();
    let alice = s.register("creator");
    let bob = s.register("invitee");
    let alias_name = unique("room");
    let room = alice.create_room(json!({
        "preset": "private_chat",
        "name": "Project",
        "topic": "Plans",
        "room_alias_name": alias_name,
        "invite": [bob.user_id],
        "initial_state": [{ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "joined" } }],
        "power_level_content_override": { "events_default": 10 },
        "creation_content": { "m.federate": false },
    }));
    assert_eq!(alice.state(&room, "m.room.name", "").expect(200)["name"], "Project");
    assert_eq!(alice.state(&room, "m.room.topic", "").expect(200)["topic"], "Plans");
    assert_eq!(alice.state(&room, "m.room.join_rules", "").expect(200)["join_rule"], "invite");
    assert_eq!(alice.state(&room, "m.room.history_visibility", "").expect(200)["history_visibility"], "joined");
    let pl = alice.state(&room, "m.room.power_levels", "").expect(200);
    assert_eq!(pl["events_default"], 10, "{pl}");
    let create = alice.state(&room, "m.room.create", "").expect(200);
    assert_eq!(create["room_version"], "12");
    assert_eq!(create["m.federate"], false);
    let alias = format!("#{alias_name}:{}", alice.server_name());
    assert_eq!(alice.state(&room, "m.room.canonical_alias", "").expect(200)["alias"], alias.as_str());
    assert_eq!(membership(&alice, &room, &bob.user_id).as_deref(), Some("invite"));
    let resolved = s
        .call("GET", &format!("/_matrix/client/v3/directory/room/{}", enc(&alias)), Some(&bob.token), None)
        .expect(200);
    assert_eq!(resolved["room_id"], room.as_str());

    // The same alias again is refused.
    let r = alice.post("/_matrix/client/v3/createRoom", json!({ "room_alias_name": alias_name }));
    r.expect_err(400, "M_ROOM_IN_USE");
}

#[test]
fn room_versions() {
    let s = server();
    let u = s.register("versions");
    for v in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"] {
        let room = u.create_room(json!({ "room_version": v }));
        assert_eq!(u.state(&room, "m.room.create", "").expect(200)["room_version"], v);
        u.send_text(&room, "works");
    }
    u.post("/_matrix/client/v3/createRoom", json!({ "room_version": "999" }))
        .expect_err(400, "M_UNSUPPORTED_ROOM_VERSION");
}

#[test]
fn invite_join_leave_forget() {
    let s = server();
    let alice = s.register("alice");
    let bob = s.register("bob");
    let room = alice.create_room(json!({ "preset": "private_chat" }));
    // Not invited: cannot join an invite-only room.
    bob.post(&format!("/_matrix/client/v3/rooms/{}/join", enc(&room)), json!({})).expect_err(403, "M_FORBIDDEN");
    alice.invite(&room, &bob.user_id);
    bob.join(&room);
    assert_eq!(membership(&alice, &room, &bob.user_id).as_deref(), Some("join"));
    let joined = bob.get("/_matrix/client/v3/joined_rooms").expect(200);
    assert!(joined["joined_rooms"].as_array().unwrap().iter().any(|r| r == room.as_str()));
    let members = alice.get(&format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room))).expect(200);
    assert!(members["joined"].get(&bob.user_id).is_some(), "{members}");

    // Forgetting a room one is in is refused.
    let r = bob.post(&format!("/_matrix/client/v3/rooms/{}/forget", enc(&room)), json!({}));
    assert_eq!(r.status, 400, "{:?}", r.body);
    bob.post(&format!("/_matrix/client/v3/rooms/{}/leave", enc(&room)), json!({})).expect(200);
    assert_eq!(membership(&alice, &room, &bob.user_id).as_deref(), Some("leave"));
    bob.post(&format!("/_matrix/client/v3/rooms/{}/forget", enc(&room)), json!({})).expect(200);
    let joined = bob.get("/_matrix/client/v3/joined_rooms").expect(200);
    assert!(!joined["joined_rooms"].as_array().unwrap().iter().any(|r| r == room.as_str()));
    // Reading a room one left and forgot is refused.
    let r = bob.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b", enc(&room)));
    assert_eq!(r.status, 403, "{:?}", r.body);
}

#[test]
fn kick_ban_unban_need_power() {
    let s = server();
    let alice = s.register("mod");
    let bob = s.register("member");
    let carol = s.register("other");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    carol.join(&room);
    let kick = |by: &User<'_>, who: &str| {
        by.post(&format!("/_matrix/client/v3/rooms/{}/kick", enc(&room)), json!({ "user_id": who, "reason": "test" }))
    };
    kick(&bob, &carol.user_id).expect_err(403, "M_FORBIDDEN");
    kick(&alice, &carol.user_id).expect(200);
    assert_eq!(membership(&alice, &room, &carol.user_id).as_deref(), Some("leave"));
    let ev = alice
        .get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.member/{}", enc(&room), enc(&carol.user_id)))
        .expect(200);
    assert_eq!(ev["reason"], "test");

    alice
        .post(&format!("/_matrix/client/v3/rooms/{}/ban", enc(&room)), json!({ "user_id": carol.user_id }))
        .expect(200);
    assert_eq!(membership(&alice, &room, &carol.user_id).as_deref(), Some("ban"));
    // Refused with 403 (Synapse says M_BAD_STATE, the spec's example M_FORBIDDEN).
    let r = carol.post(&format!("/_matrix/client/v3/rooms/{}/join", enc(&room)), json!({}));
    assert_eq!(r.status, 403, "{:?}", r.body);
    bob.post(&format!("/_matrix/client/v3/rooms/{}/unban", enc(&room)), json!({ "user_id": carol.user_id }))
        .expect_err(403, "M_FORBIDDEN");
    alice
        .post(&format!("/_matrix/client/v3/rooms/{}/unban", enc(&room)), json!({ "user_id": carol.user_id }))
        .expect(200);
    carol.join(&room);
}

#[test]
fn knocking() {
    let s = server();
    let alice = s.register("knockee");
    let bob = s.register("knocker");
    let room = alice.create_room(
        json!({ "initial_state": [{ "type": "m.room.join_rules", "content": { "join_rule": "knock" } }] }),
    );
    bob.post(&format!("/_matrix/client/v3/knock/{}", enc(&room)), json!({ "reason": "let me in" })).expect(200);
    assert_eq!(membership(&alice, &room, &bob.user_id).as_deref(), Some("knock"));
    alice.invite(&room, &bob.user_id);
    bob.join(&room);
    // Knocking on an invite-only room is refused.
    let closed = alice.create_room(json!({ "preset": "private_chat" }));
    let carol = s.register("knocker2");
    carol.post(&format!("/_matrix/client/v3/knock/{}", enc(&closed)), json!({})).expect_err(403, "M_FORBIDDEN");
}

#[test]
fn outsiders_and_unprivileged_members_are_refused() {
    let s = server();
    let alice = s.register("owner");
    let bob = s.register("outsider");
    let room = alice.create_room(json!({ "preset": "public_chat", "name": "Before" }));
    let txn = unique("t");
    let r = bob.put(
        &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(&room)),
        json!({ "msgtype": "m.text", "body": "x" }),
    );
    r.expect_err(403, "M_FORBIDDEN");
    bob.join(&room);
    bob.send_state(&room, "m.room.name", "", json!({ "name": "Hijacked" })).expect_err(403, "M_FORBIDDEN");
    bob.send_state(&room, "m.room.power_levels", "", json!({ "users": { bob.user_id.clone(): 100 } }))
        .expect_err(403, "M_FORBIDDEN");
    assert_eq!(alice.state(&room, "m.room.name", "").expect(200)["name"], "Before");
    // Inviting a user id that is not one is a bad request.
    let r = alice.post(&format!("/_matrix/client/v3/rooms/{}/invite", enc(&room)), json!({ "user_id": "not-a-user" }));
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[test]
fn state_put_get_and_members() {
    let s = server();
    let alice = s.register("state");
    let room = alice.create_room(json!({}));
    let r = alice.send_state(&room, "org.example.custom", "key one", json!({ "value": 1 })).expect(200);
    assert!(r["event_id"].as_str().unwrap().starts_with('$'));
    assert_eq!(alice.state(&room, "org.example.custom", "key one").expect(200)["value"], 1);
    alice.state(&room, "org.example.custom", "missing").expect_err(404, "M_NOT_FOUND");
    let all = alice.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&room))).expect(200);
    let kinds: Vec<&str> = all.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    for k in ["m.room.create", "m.room.member", "m.room.power_levels", "m.room.join_rules", "org.example.custom"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let members = alice.get(&format!("/_matrix/client/v3/rooms/{}/members", enc(&room))).expect(200);
    let chunk = members["chunk"].as_array().unwrap();
    assert_eq!(chunk.len(), 1);
    assert_eq!(chunk[0]["state_key"], alice.user_id.as_str());
    let other = s.register("stateout");
    let r = other.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&room)));
    r.expect_err(403, "M_FORBIDDEN");
}

#[test]
fn aliases_create_resolve_delete() {
    let s = server();
    let alice = s.register("aliaser");
    let bob = s.register("aliasother");
    let room = alice.create_room(json!({}));
    let alias = format!("#{}:{}", unique("a"), alice.server_name());
    let path = format!("/_matrix/client/v3/directory/room/{}", enc(&alias));
    alice.put(&path, json!({ "room_id": room })).expect(200);
    let r = alice.put(&path, json!({ "room_id": room }));
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(alice.get(&path).expect(200)["room_id"], room.as_str());
    let listed = alice.get(&format!("/_matrix/client/v3/rooms/{}/aliases", enc(&room))).expect(200);
    assert!(listed["aliases"].as_array().unwrap().iter().any(|a| a == alias.as_str()), "{listed}");
    bob.delete(&path, None).expect_err(403, "M_FORBIDDEN");
    alice.delete(&path, None).expect(200);
    alice.get(&path).expect_err(404, "M_NOT_FOUND");
    let missing =
        format!("/_matrix/client/v3/directory/room/{}", enc(&format!("#{}:{}", unique("none"), alice.server_name())));
    alice.get(&missing).expect_err(404, "M_NOT_FOUND");
}

#[test]
fn public_room_directory() {
    let s = server();
    let alice = s.register("publisher");
    let name = unique("Directory test ");
    let room = alice.create_room(json!({ "visibility": "public", "preset": "public_chat", "name": name }));
    let vis = alice.get(&format!("/_matrix/client/v3/directory/list/room/{}", enc(&room))).expect(200);
    assert_eq!(vis["visibility"], "public");
    let found = alice
        .post("/_matrix/client/v3/publicRooms", json!({ "filter": { "generic_search_term": name }, "limit": 10 }))
        .expect(200);
    let chunk = found["chunk"].as_array().unwrap();
    assert!(chunk.iter().any(|r| r["room_id"] == room.as_str() && r["num_joined_members"] == 1), "{found}");
    alice
        .put(&format!("/_matrix/client/v3/directory/list/room/{}", enc(&room)), json!({ "visibility": "private" }))
        .expect(200);
    let found =
        alice.post("/_matrix/client/v3/publicRooms", json!({ "filter": { "generic_search_term": name } })).expect(200);
    assert!(!found["chunk"].as_array().unwrap().iter().any(|r| r["room_id"] == room.as_str()), "{found}");
    let listing = s.call("GET", "/_matrix/client/v3/publicRooms?limit=1", Some(&alice.token), None).expect(200);
    assert!(listing["chunk"].is_array());
}

#[test]
fn user_directory_finds_people_sharing_a_room() {
    let s = server();
    let alice = s.register("finder");
    let bob = s.register("findme");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    let found = tandem_conformance::eventually(std::time::Duration::from_secs(10), "bob in the user directory", || {
        let r =
            alice.post("/_matrix/client/v3/user_directory/search", json!({ "search_term": bob.localpart })).expect(200);
        r["results"].as_array().unwrap().iter().any(|u| u["user_id"] == bob.user_id.as_str()).then_some(r)
    });
    assert!(found["limited"].is_boolean());
}

#[test]
fn profiles_propagate_to_rooms() {
    let s = server();
    let alice = s.register("profile");
    let room = alice.create_room(json!({}));
    let path = format!("/_matrix/client/v3/profile/{}/displayname", enc(&alice.user_id));
    alice.put(&path, json!({ "displayname": "Alice Liddell" })).expect(200);
    assert_eq!(s.call("GET", &path, None, None).expect(200)["displayname"], "Alice Liddell");
    let whole = s.call("GET", &format!("/_matrix/client/v3/profile/{}", enc(&alice.user_id)), None, None).expect(200);
    assert_eq!(whole["displayname"], "Alice Liddell");
    tandem_conformance::eventually(std::time::Duration::from_secs(10), "the new name in the member event", || {
        let m = alice.state(&room, "m.room.member", &alice.user_id).expect(200);
        (m["displayname"] == "Alice Liddell").then_some(())
    });
    let avatar = format!("/_matrix/client/v3/profile/{}/avatar_url", enc(&alice.user_id));
    alice.put(&avatar, json!({ "avatar_url": "mxc://example.org/abc" })).expect(200);
    assert_eq!(s.call("GET", &avatar, None, None).expect(200)["avatar_url"], "mxc://example.org/abc");
    let bob = s.register("profile2");
    let r = bob.put(&path, json!({ "displayname": "Not yours" }));
    assert_eq!(r.errcode(), Some("M_FORBIDDEN"), "{:?}", r.body);
    let unknown =
        format!("/_matrix/client/v3/profile/{}", enc(&format!("@{}:{}", unique("nobody"), alice.server_name())));
    // 404 (Synapse's errcode is M_UNKNOWN, the spec's example M_NOT_FOUND).
    assert_eq!(s.call("GET", &unknown, Some(&alice.token), None).status, 404);
}

/// The rooms two users share, for a client's "rooms in common".
#[test]
fn mutual_rooms_lists_the_rooms_both_are_joined_to() {
    let s = server();
    let alice = s.register("mutuala");
    let bob = s.register("mutualb");
    let shared = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&shared);
    let left = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&left);
    bob.post(&format!("/_matrix/client/v3/rooms/{}/leave", enc(&left)), json!({})).expect(200);
    let _alone = alice.create_room(json!({}));
    let _invited = alice.create_room(json!({ "invite": [bob.user_id] }));
    let path = |u: &str| format!("/_matrix/client/v1/mutual_rooms?user_id={}", enc(u));
    let r = alice.get(&path(&bob.user_id)).expect(200);
    assert_eq!(r["joined"], json!([shared]), "only the room both are joined to: {r}");
    assert_eq!(r["count"], 1);
    assert!(r.get("next_batch").is_none(), "{r}");
    alice.get(&path(&alice.user_id)).expect_err(400, "M_INVALID_PARAM");
    alice.get("/_matrix/client/v1/mutual_rooms?user_id=not-a-user").expect_err(400, "M_INVALID_PARAM");
    let nobody = format!("@{}:{}", unique("nobody"), alice.server_name());
    assert_eq!(alice.get(&path(&nobody)).expect(200)["joined"], json!([]));
}
