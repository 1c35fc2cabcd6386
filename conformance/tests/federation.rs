//! Federation between two Tandem servers and a Synapse, over TLS on loopback: rooms created on
//! each server, invites and joins across every pair in both directions, messages, concurrent
//! state changes; then every server must report the same state and the same messages. As the
//! oracle (`TANDEM_CONFORMANCE_URL` set) all three peers are Synapse.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_conformance::federation::{Kind, Peer};
use tandem_conformance::{User, enc, eventually};

const WAIT: Duration = Duration::from_secs(90);

fn join_via(user: &User, room: &str, via: &str) {
    let path = format!("/_matrix/client/v3/join/{}?server_name={}", enc(room), enc(via));
    eventually(WAIT, &format!("{} to join {room}", user.user_id), || {
        let r = user.post(&path, json!({}));
        if r.status != 200 {
            eprintln!("join {room} via {via}: {} {}", r.status, r.body);
        }
        (r.status == 200).then_some(())
    });
}

fn wait_invite(user: &User, room: &str) {
    user.sync_until(None, WAIT, |s| s["rooms"]["invite"].get(room).map(|_| ()));
}

/// The room's state as `(type, state_key, event_id)`, from `/state`.
fn state_of(user: &User, room: &str) -> Option<BTreeSet<(String, String, String)>> {
    let r = user.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room)));
    if r.status != 200 {
        return None;
    }
    Some(
        r.body
            .as_array()?
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (s("type"), s("state_key"), s("event_id"))
            })
            .collect(),
    )
}

/// The ids of the room's messages, from `/messages` (newest first, paginated to the start).
fn messages_of(user: &User, room: &str) -> Option<BTreeSet<String>> {
    messages_by_pages_of(user, room, 100)
}

/// [`messages_of`], `limit` events a page.
fn messages_by_pages_of(user: &User, room: &str, limit: usize) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut from: Option<String> = None;
    for _ in 0..40 {
        let mut path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit={limit}", enc(room));
        if let Some(f) = &from {
            path.push_str(&format!("&from={}", enc(f)));
        }
        let r = user.get(&path);
        if r.status != 200 {
            return None;
        }
        let chunk = r.body["chunk"].as_array()?;
        for e in chunk {
            if e["type"] == "m.room.message" {
                out.insert(e["event_id"].as_str()?.to_owned());
            }
        }
        match r.body["end"].as_str() {
            Some(end) if !chunk.is_empty() => from = Some(end.to_owned()),
            _ => break,
        }
    }
    Some(out)
}

fn set_power(admin: &User, room: &str, users: &[&User]) {
    let mut pl = admin.state(room, "m.room.power_levels", "").expect(200);
    // The creator is not listed: from room version 12 creators have unlimited power.
    for u in users.iter().filter(|u| u.user_id != admin.user_id) {
        pl["users"][&u.user_id] = json!(50);
    }
    pl["state_default"] = json!(50);
    admin.send_state(room, "m.room.power_levels", "", pl).expect(200);
}

#[test]
fn rooms_shared_by_tandem_tandem_and_synapse_converge() {
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let users: Vec<User> = peers.iter().map(|p| p.server.register("fed")).collect();

    // Each user creates a room; the two others are invited and join through the creator's server.
    let mut rooms = Vec::new();
    for (i, creator) in users.iter().enumerate() {
        let room = creator.create_room(json!({ "preset": "private_chat", "name": format!("room of {i}") }));
        for (j, other) in users.iter().enumerate() {
            if i != j {
                creator.invite(&room, &other.user_id);
                wait_invite(other, &room);
                join_via(other, &room, &peers[i].name);
            }
        }
        set_power(creator, &room, &users.iter().collect::<Vec<_>>());
        rooms.push(room);
    }

    let mut sent = Vec::new();
    for room in &rooms {
        for u in &users {
            sent.push((room.clone(), u.send_text(room, &format!("hello from {}", u.user_id))));
        }
    }

    // Concurrent state changes on three servers at once.
    std::thread::scope(|scope| {
        for (k, u) in users.iter().enumerate() {
            let room = &rooms[0];
            scope.spawn(move || {
                u.send_state(room, "m.room.topic", "", json!({ "topic": format!("topic {k}") })).expect(200);
                u.send_state(room, "m.room.name", "", json!({ "name": format!("name {k}") })).expect(200);
            });
        }
    });
    // Join rules changed by one server while another renames: different keys, same room.
    users[1].send_state(&rooms[2], "m.room.topic", "", json!({ "topic": "from B" })).expect(200);

    for room in &rooms {
        let (state, messages) = eventually(WAIT, "every server to report the same state and messages", || {
            let states: Vec<_> = users.iter().map(|u| state_of(u, room)).collect::<Option<_>>()?;
            let messages: Vec<_> = users.iter().map(|u| messages_of(u, room)).collect::<Option<_>>()?;
            let same = states.windows(2).all(|w| w[0] == w[1]) && messages.windows(2).all(|w| w[0] == w[1]);
            let complete = sent.iter().filter(|(r, _)| r == room).all(|(_, id)| messages[0].contains(id));
            (same && complete).then(|| (states[0].clone(), messages[0].clone()))
        });
        let members: Vec<_> = state.iter().filter(|(t, _, _)| t == "m.room.member").collect();
        assert_eq!(members.len(), 3, "three members in {room}: {state:?}");
        assert_eq!(messages.len(), 3, "three messages in {room}");
    }
    // All three agree on one topic for the room changed concurrently.
    let topics: Vec<Value> = users.iter().map(|u| u.state(&rooms[0], "m.room.topic", "").expect(200)).collect();
    assert!(topics.windows(2).all(|w| w[0] == w[1]), "{topics:?}");
}

/// Rooms of the versions before 10 (the default of Synapse for years, so most rooms that exist
/// are of them), created on either server and joined from the other: both end with the same
/// state and messages, power level changes, a topic and a name set on both sides at once
/// included.
#[test]
fn rooms_of_older_versions_federate_both_ways() {
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let users: Vec<User> = peers.iter().map(|p| p.server.register("versions")).collect();
    let mut rooms = Vec::new();
    for v in ["1", "2", "3", "4", "5", "6", "7", "8", "9"] {
        for (host, (creator, joiner)) in [(0, (&users[0], &users[1])), (1, (&users[1], &users[0]))] {
            let room = creator.create_room(json!({ "room_version": v, "preset": "public_chat" }));
            join_via(joiner, &room, &peers[host].name);
            set_power(creator, &room, &[creator, joiner]);
            eventually(WAIT, "the power levels to reach the joining server", || {
                let pl = joiner.state(&room, "m.room.power_levels", "");
                (pl.body["users"][&joiner.user_id] == 50).then_some(())
            });
            joiner.send_state(&room, "m.room.topic", "", json!({ "topic": format!("v{v}") })).expect(200);
            let sent = [creator.send_text(&room, "from the creator"), joiner.send_text(&room, "from the joiner")];
            // The same key set on both servers at once: a fork, resolved by the version's
            // algorithm (v1 for room version 1) on each side.
            std::thread::scope(|scope| {
                for u in [creator, joiner] {
                    let room = &room;
                    scope
                        .spawn(move || u.send_state(room, "m.room.name", "", json!({ "name": u.user_id })).expect(200));
                }
            });
            rooms.push((v, room, sent));
        }
    }
    for (v, room, sent) in &rooms {
        eventually(WAIT, &format!("both servers to agree on the v{v} room {room}"), || {
            let states: Vec<_> = users.iter().map(|u| state_of(u, room)).collect::<Option<_>>()?;
            let messages: Vec<_> = users.iter().map(|u| messages_of(u, room)).collect::<Option<_>>()?;
            let complete = messages.iter().all(|m| sent.iter().all(|id| m.contains(id)));
            (states[0] == states[1] && complete).then_some(())
        });
        for u in &users {
            assert_eq!(u.state(room, "m.room.create", "").expect(200)["room_version"], *v);
            assert_eq!(u.state(room, "m.room.topic", "").expect(200)["topic"], format!("v{v}"));
        }
    }
}

/// A server joining a room may ask for its members to be left out of the answer and fetch them
/// afterwards (`omit_members`, which Synapse asks for): whatever the join answered, the joining
/// server ends up with the whole state (every member of a room without a name) and the
/// messages sent after its join.
#[test]
fn a_server_joining_a_room_ends_with_its_whole_state() {
    let host = Peer::start(Kind::Tandem, None);
    let joiner_server = Peer::start(Kind::Synapse, None);
    let creator = host.server.register("host");
    let room = creator.create_room(json!({ "preset": "public_chat" }));
    let members: Vec<User> = (0..6).map(|_| host.server.register("member")).collect();
    for m in &members {
        m.join(&room);
    }
    let joiner = joiner_server.server.register("joiner");
    join_via(&joiner, &room, &host.name);
    let after = members[0].send_text(&room, "after the join");

    let expected = state_of(&creator, &room).expect("the host's state");
    let joined: BTreeSet<String> =
        members.iter().map(|m| m.user_id.clone()).chain([creator.user_id.clone(), joiner.user_id.clone()]).collect();
    eventually(WAIT, "the joining server to hold the whole state and the message", || {
        let state = state_of(&joiner, &room)?;
        let r = joiner.get(&format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room)));
        let listed: BTreeSet<String> = r.body["joined"].as_object()?.keys().cloned().collect();
        let messages = messages_of(&joiner, &room)?;
        (listed == joined && expected.iter().all(|e| state.contains(e)) && messages.contains(&after)).then_some(())
    });
}

#[test]
fn a_server_killed_mid_stream_loses_nothing() {
    let a = Peer::start(Kind::Tandem, None);
    let b = Peer::start(Kind::Tandem, None);
    let (ua, ub) = (a.server.register("crash"), b.server.register("crash"));
    let room = ua.create_room(json!({ "preset": "public_chat" }));
    join_via(&ub, &room, &a.name);
    eventually(WAIT, "A to see B's user join", || {
        (ua.state(&room, "m.room.member", &ub.user_id).body["membership"] == "join").then_some(())
    });
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    std::thread::scope(|scope| {
        // B keeps sending to A while A is killed and restarted.
        let sender = scope.spawn(|| (0..30).map(|i| ub.send_text(&room, &format!("b{i}"))).collect::<Vec<_>>());
        for i in 0..20 {
            from_a.push(ua.send_text(&room, &format!("a{i}")));
            if i == 9 {
                a.crash_and_restart();
            }
        }
        from_b = sender.join().expect("B's sender");
    });
    let all: BTreeSet<String> = from_a.iter().chain(&from_b).cloned().collect();
    for (who, user) in [("A", &ua), ("B", &ub)] {
        eventually(WAIT * 2, &format!("every acknowledged message on {who}"), || {
            let seen = messages_of(user, &room)?;
            all.is_subset(&seen).then_some(())
        });
    }
}

#[test]
fn a_server_not_allowed_gets_nothing() {
    let (port_a, _) = Peer::reserve_name();
    let (port_b, name_b) = Peer::reserve_name();
    let a = Peer::start_on(Kind::Tandem, port_a, Some(std::slice::from_ref(&name_b)));
    let b = Peer::start_on(Kind::Tandem, port_b, None);
    let c = Peer::start(Kind::Tandem, None);
    let (ua, ub, uc) = (a.server.register("allow"), b.server.register("allow"), c.server.register("deny"));
    let room = ua.create_room(json!({ "preset": "public_chat", "room_version": "12" }));

    // The allowed server works: the check below is not vacuous.
    join_via(&ub, &room, &a.name);

    // The other cannot join, through its own server or by asking A directly.
    let path = format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room), enc(&a.name));
    assert_ne!(uc.post(&path, json!({})).status, 200, "a denied server's user joined");
    let c_id = c.identity();
    let make_join = format!("/_matrix/federation/v1/make_join/{}/{}?ver=12", enc(&room), enc(&uc.user_id));
    c_id.request(&a.name, "GET", &make_join, None).expect_err(403, "M_FORBIDDEN");
    // Nor send a transaction, nor query.
    let txn = serde_json::to_vec(&json!({ "origin": c.name, "origin_server_ts": 1, "pdus": [], "edus": [] })).unwrap();
    c_id.request(&a.name, "PUT", "/_matrix/federation/v1/send/denied1", Some(&txn)).expect_err(403, "M_FORBIDDEN");
    let query = format!("/_matrix/federation/v1/query/profile?user_id={}", enc(&ua.user_id));
    c_id.request(&a.name, "GET", &query, None).expect_err(403, "M_FORBIDDEN");
    // And A does not reach out to it.
    assert_ne!(
        ua.post(&format!("/_matrix/client/v3/rooms/{}/invite", enc(&room)), json!({ "user_id": uc.user_id })).status,
        200,
        "A invited a user of a server it does not federate with"
    );
    let members = state_of(&ua, &room).expect("state");
    assert!(!members.iter().any(|(t, k, _)| t == "m.room.member" && k == &uc.user_id), "{members:?}");
}

#[test]
fn hostile_federation_input_is_refused() {
    let a = Peer::start(Kind::Tandem, None);
    let b = Peer::start(Kind::Tandem, None);
    let (ua, ub) = (a.server.register("victim"), b.server.register("peer"));
    let outsider = b.server.register("outsider");
    let room = ua.create_room(json!({ "preset": "public_chat", "room_version": "11" }));
    join_via(&ub, &room, &a.name);
    eventually(WAIT, "A to see B's user join", || {
        (ua.state(&room, "m.room.member", &ub.user_id).body["membership"] == "join").then_some(())
    });
    let state_before = state_of(&ua, &room).expect("state");
    let id = |t: &str, k: &str| state_before.iter().find(|(tt, kk, _)| tt == t && kk == k).expect(t).2.clone();
    let latest = ua.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1", enc(&room))).expect(200)["chunk"][0]
        ["event_id"]
        .as_str()
        .expect("latest event")
        .to_owned();
    let b_id = b.identity();
    let message = |sender: &str, auth: Vec<String>, body: &str| {
        json!({
            "type": "m.room.message", "room_id": room, "sender": sender, "depth": 1000,
            "origin_server_ts": 1_700_000_000_000u64, "prev_events": [latest], "auth_events": auth,
            "content": { "msgtype": "m.text", "body": body },
        })
    };
    let member_auth = vec![id("m.room.create", ""), id("m.room.power_levels", ""), id("m.room.member", &ub.user_id)];
    let send = |pdus: Vec<Value>, txn: &str| {
        let body =
            serde_json::to_vec(&json!({ "origin": b.name, "origin_server_ts": 1, "pdus": pdus, "edus": [] })).unwrap();
        b_id.request(&a.name, "PUT", &format!("/_matrix/federation/v1/send/{txn}"), Some(&body)).expect(200)
    };
    let event_on_a =
        |event_id: &str| ua.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(event_id)));

    // Servers may take a transaction's PDUs after answering it (Synapse stages them), so each
    // batch ends with a well-formed event: once that one shows, the others were handled.
    let settled = |label: &str| {
        let (sentinel, pdu) = b_id.pdu(message(&ub.user_id, member_auth.clone(), label));
        send(vec![pdu], &format!("sentinel-{label}"));
        eventually(WAIT, "a well-formed event from B to be taken", || {
            let seen = event_on_a(&sentinel);
            (seen.status == 200 && seen.body["content"]["body"] == label).then_some(())
        });
    };
    // A well-formed event from B's user is taken: the builder is right.
    settled("fine");

    // A signature that does not verify.
    let (forged, mut pdu) = b_id.pdu(message(&ub.user_id, member_auth.clone(), "forged"));
    pdu["signatures"][&b.name] = json!({ b_id.key_id.clone(): "A".repeat(86) });
    send(vec![pdu], "forged");
    // A content hash that does not match: the event is redacted before anything else.
    let (tampered, mut pdu) = b_id.pdu(message(&ub.user_id, member_auth.clone(), "original"));
    pdu["content"]["body"] = json!("tampered");
    send(vec![pdu], "tampered");
    // An event the authorization rules reject: its sender never joined.
    let (unauthorized, pdu) =
        b_id.pdu(message(&outsider.user_id, vec![id("m.room.create", ""), id("m.room.power_levels", "")], "intruder"));
    send(vec![pdu], "unauthorized");
    // An event over 65,536 bytes.
    let (huge, pdu) = b_id.pdu(message(&ub.user_id, member_auth.clone(), &"x".repeat(70_000)));
    send(vec![pdu], "huge");
    settled("after");

    assert_ne!(event_on_a(&forged).status, 200, "an event with a bad signature was taken");
    let seen = event_on_a(&tampered);
    if seen.status == 200 {
        assert!(seen.body["content"].get("body").is_none(), "a tampered event kept its content: {}", seen.body);
    }
    assert_ne!(event_on_a(&unauthorized).status, 200, "an unauthorized event was taken");
    assert_ne!(event_on_a(&huge).status, 200, "an oversized event was taken");

    // Malformed JSON, and a request signed by one server claiming to come from another.
    let auth = b_id.x_matrix("PUT", &a.name, "/_matrix/federation/v1/send/bad", None);
    let r = tandem_conformance::fedclient::send(
        &a.name,
        "PUT",
        "/_matrix/federation/v1/send/bad",
        &[("Authorization", &auth)],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400, "malformed JSON: {}", r.body);
    let body = serde_json::to_vec(&json!({ "origin": a.name, "origin_server_ts": 1, "pdus": [], "edus": [] })).unwrap();
    let spoofed = b_id
        .x_matrix("PUT", &a.name, "/_matrix/federation/v1/send/spoof", Some(&serde_json::from_slice(&body).unwrap()))
        .replace(&format!("origin=\"{}\"", b.name), &format!("origin=\"{}\"", a.name));
    let r = tandem_conformance::fedclient::send(
        &a.name,
        "PUT",
        "/_matrix/federation/v1/send/spoof",
        &[("Authorization", &spoofed)],
        Some(&body),
    );
    assert_eq!(r.status, 401, "a request signed by another server: {}", r.body);

    // None of it changed the room's state, and the server still answers.
    let state_after = state_of(&ua, &room).expect("state");
    assert_eq!(state_before, state_after);
    ua.send_text(&room, "still here");
}

#[test]
fn history_from_before_a_join_is_backfilled() {
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let users: Vec<User> = peers.iter().map(|p| p.server.register("history")).collect();
    // A room with history on the first Tandem and one on Synapse; users of the other servers
    // join afterwards and page back through everything said before they came, in pages small
    // enough that the history comes in several backfills. What was said while the room's
    // history was for its members only stays hidden from them: each event is seen with the
    // history visibility of its own time, not the room's when they joined.
    for (host, joiners) in [(0, [1, 2]), (2, [1, 0])] {
        let owner = &users[host];
        let room = owner.create_room(json!({ "preset": "public_chat", "name": "history" }));
        let said: BTreeSet<String> = (0..30).map(|i| owner.send_text(&room, &format!("before {i}"))).collect();
        let members_only = json!({ "history_visibility": "joined" });
        owner.send_state(&room, "m.room.history_visibility", "", members_only).expect(200);
        let hidden: BTreeSet<String> = (0..15).map(|i| owner.send_text(&room, &format!("members only {i}"))).collect();
        for j in joiners {
            join_via(&users[j], &room, &peers[host].name);
            eventually(WAIT, &format!("{} to page back through the history of {room}", users[j].user_id), || {
                let seen = messages_by_pages_of(&users[j], &room, 10)?;
                let leaked: Vec<_> = seen.intersection(&hidden).collect();
                assert!(leaked.is_empty(), "{} sees what was said to members only: {leaked:?}", users[j].user_id);
                said.is_subset(&seen).then_some(())
            });
        }
    }
}

fn hierarchy_ids(user: &User, space: &str) -> Option<Vec<String>> {
    let r = user.get(&format!("/_matrix/client/v1/rooms/{}/hierarchy", enc(space)));
    (r.status == 200).then(|| {
        r.body["rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["room_id"].as_str().map(str::to_owned))
            .collect()
    })
}

#[test]
fn directories_and_spaces_of_other_servers() {
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let users: Vec<User> = peers.iter().map(|p| p.server.register("dir")).collect();
    for (i, j) in [(0, 1), (1, 0)] {
        let (owner, reader, owner_server) = (&users[i], &users[j], &peers[i].name);
        let name = format!("listed on {owner_server}");
        let room = owner.create_room(json!({ "preset": "public_chat", "visibility": "public", "name": name }));

        // The other server's public room directory, plain and searched.
        let listed = |r: tandem_conformance::Response| {
            r.status == 200
                && r.body["chunk"].as_array().is_some_and(|c| c.iter().any(|e| e["room_id"] == room.as_str()))
        };
        eventually(WAIT, "the room in the other server's directory", || {
            listed(reader.get(&format!("/_matrix/client/v3/publicRooms?server={}", enc(owner_server)))).then_some(())
        });
        let search = json!({ "filter": { "generic_search_term": name }, "limit": 10 });
        let path = format!("/_matrix/client/v3/publicRooms?server={}", enc(owner_server));
        assert!(listed(reader.post(&path, search)), "a search of the other server's directory");

        // A space on the reader's server with the room as child: its summary comes from the
        // owner's server.
        let space = reader.create_room(json!({ "preset": "public_chat", "creation_content": { "type": "m.space" } }));
        reader.send_state(&space, "m.space.child", &room, json!({ "via": [owner_server] })).expect(200);
        let found = eventually(WAIT, "the remote child in the hierarchy", || {
            hierarchy_ids(reader, &space).filter(|ids| ids.contains(&room))
        });
        assert_eq!(found[0], space);
    }
}

/// Logs `user` in on a new device: its access token and device id.
fn login(user: &User) -> (String, String) {
    let body = json!({
        "type": "m.login.password", "password": user.password,
        "identifier": { "type": "m.id.user", "user": user.user_id },
    });
    let r = user.server.call("POST", "/_matrix/client/v3/login", None, Some(&body)).expect(200);
    (r["access_token"].as_str().expect("token").to_owned(), r["device_id"].as_str().expect("device").to_owned())
}

#[test]
fn encryption_keys_and_to_device_messages_cross_servers() {
    use tandem_conformance::e2ee::{Key, device_keys};
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    for (i, j) in [(0, 1), (1, 0)] {
        let (alice, bob) = (peers[i].server.register("keys_a"), peers[j].server.register("keys_b"));
        let room = alice.create_room(json!({ "preset": "private_chat" }));
        alice.invite(&room, &bob.user_id);
        wait_invite(&bob, &room);
        join_via(&bob, &room, &peers[i].name);

        // Bob's device keys, a one-time key and a master key.
        let dk = device_keys(&bob.user_id, &bob.device_id, &Key::generate());
        let otk = json!({ "signed_curve25519:AAAAHQ": { "key": "onetime", "signatures": {} } });
        bob.post("/_matrix/client/v3/keys/upload", json!({ "device_keys": dk, "one_time_keys": otk })).expect(200);
        let master = Key::generate();
        bob.post(
            "/_matrix/client/v3/keys/device_signing/upload",
            json!({ "master_key": master.cross_signing(&bob.user_id, "master") }),
        )
        .expect(200);

        let query = || {
            alice
                .post("/_matrix/client/v3/keys/query", json!({ "device_keys": { bob.user_id.clone(): [] } }))
                .expect(200)
        };
        eventually(WAIT, "bob's keys through his server", || {
            let q = query();
            let device = &q["device_keys"][&bob.user_id][&bob.device_id];
            (device["keys"] == dk["keys"]
                && q["master_keys"][&bob.user_id]["keys"][master.cross_signing_id()].is_string())
            .then_some(())
        });
        let claim = json!({ "one_time_keys": { bob.user_id.clone(): { bob.device_id.clone(): "signed_curve25519" } } });
        let claimed = alice.post("/_matrix/client/v3/keys/claim", claim).expect(200);
        assert_eq!(
            claimed["one_time_keys"][&bob.user_id][&bob.device_id]["signed_curve25519:AAAAHQ"]["key"], "onetime",
            "{claimed}"
        );

        // A to-device message reaches bob's device once.
        let txn = format!("fed{}", rand_suffix());
        let message = json!({ "messages": { bob.user_id.clone(): { bob.device_id.clone(): { "hello": "bob" } } } });
        alice.put(&format!("/_matrix/client/v3/sendToDevice/m.test/{txn}"), message).expect(200);
        bob.sync_until(None, WAIT, |s| {
            s["to_device"]["events"]
                .as_array()?
                .iter()
                .find(|e| e["content"]["hello"] == "bob" && e["sender"] == alice.user_id.as_str())
                .map(|_| ())
        });

        // A new device of bob's: alice hears of the change and sees it; deleted, it is gone.
        let since = alice.sync(None, "")["next_batch"].as_str().expect("next_batch").to_owned();
        let (token2, device2) = login(&bob);
        let dk2 = device_keys(&bob.user_id, &device2, &Key::generate());
        let up = bob.server.call(
            "POST",
            "/_matrix/client/v3/keys/upload",
            Some(&token2),
            Some(&json!({ "device_keys": dk2 })),
        );
        up.expect(200);
        alice.sync_until(Some(&since), WAIT, |s| {
            s["device_lists"]["changed"].as_array()?.iter().any(|u| u == bob.user_id.as_str()).then_some(())
        });
        eventually(WAIT, "bob's second device at alice", || {
            query()["device_keys"][&bob.user_id].get(&device2).map(|_| ())
        });
        let path = format!("/_matrix/client/v3/devices/{device2}");
        let challenge = bob.delete(&path, Some(json!({})));
        let session = challenge.body["session"].as_str().unwrap_or_default().to_owned();
        let auth = json!({ "auth": {
            "type": "m.login.password", "session": session, "password": bob.password,
            "identifier": { "type": "m.id.user", "user": bob.user_id },
        }});
        bob.delete(&path, Some(auth)).expect(200);
        eventually(WAIT, "bob's deleted device to leave alice's view", || {
            let q = query();
            (q["device_keys"][&bob.user_id].get(&device2).is_none()
                && q["device_keys"][&bob.user_id].get(&bob.device_id).is_some())
            .then_some(())
        });
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}
