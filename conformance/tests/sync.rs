//! `/sync`: initial and incremental, long polling, limited timelines, lazy-loaded members,
//! invites and leaves, ephemeral events, account data, unread counts, full state.

use std::time::Duration;

use serde_json::{Value, json};

use tandem_conformance::{User, enc, server};

const WAIT: Duration = Duration::from_secs(15);

fn bodies(events: &[&Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn initial_then_incremental() {
    let s = server();
    let u = s.register("sync");
    let room = u.create_room(json!({ "name": "Sync room" }));
    u.send_text(&room, "hello");
    let first = u.sync(None, "");
    let joined = &first["rooms"]["join"][&room];
    let timeline = User::timeline(&first, &room);
    assert!(bodies(&timeline).contains(&"hello".to_owned()), "{joined}");
    let all_state: Vec<&Value> =
        joined["state"]["events"].as_array().unwrap().iter().chain(timeline.iter().copied()).collect();
    assert!(all_state.iter().any(|e| e["type"] == "m.room.name"), "{joined}");
    let since = first["next_batch"].as_str().unwrap().to_owned();

    // Nothing new: the room is not in the response.
    let empty = u.sync(Some(&since), "");
    assert!(empty["rooms"]["join"].get(&room).is_none(), "{empty}");

    u.send_text(&room, "second");
    let (next, _) = u.sync_until(Some(&since), WAIT, |r| r["rooms"]["join"].get(&room).map(|_| r.clone()));
    assert_eq!(bodies(&User::timeline(&next, &room)), ["second"]);
    assert_eq!(next["rooms"]["join"][&room]["timeline"]["limited"], false);
}

#[test]
fn long_polling_wakes_on_a_new_message() {
    let s = server();
    let alice = s.register("poller");
    let bob = s.register("poked");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    let since = bob.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let started = std::time::Instant::now();
            let r = bob.get(&format!("/_matrix/client/v3/sync?timeout=20000&since={}", enc(&since))).expect(200);
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        alice.send_text(&room, "wake up");
        let (r, took) = waiter.join().unwrap();
        let got = bodies(&User::timeline(&r, &room));
        assert_eq!(got, ["wake up"], "{r}");
        assert!(took < Duration::from_secs(15), "the sync waited for its timeout ({took:?})");
    });
}

#[test]
fn limited_timeline_and_prev_batch() {
    let s = server();
    let u = s.register("limited");
    let room = u.create_room(json!({}));
    let since = u.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    for i in 0..6 {
        u.send_text(&room, &format!("l{i}"));
    }
    let filter = enc(r#"{"room":{"timeline":{"limit":2}}}"#);
    let r = u.sync(Some(&since), &format!("&filter={filter}"));
    let tl = &r["rooms"]["join"][&room]["timeline"];
    assert_eq!(tl["limited"], true, "{tl}");
    assert_eq!(bodies(&User::timeline(&r, &room)), ["l4", "l5"]);
    let prev = tl["prev_batch"].as_str().expect("prev_batch");
    let older = u
        .get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=2&from={}", enc(&room), enc(prev)))
        .expect(200);
    let got: Vec<&str> =
        older["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert_eq!(got, ["l3", "l2"]);
}

#[test]
fn stored_filter_with_lazy_loaded_members() {
    let s = server();
    let alice = s.register("lazyA");
    // Named, so that no member is needed to name the room (Synapse sends the heroes' members).
    let room = alice.create_room(json!({ "preset": "public_chat", "name": "Lazy" }));
    let quiet = s.register("lazyQuiet");
    quiet.join(&room);
    let talker = s.register("lazyTalk");
    talker.join(&room);
    for i in 0..3 {
        talker.send_text(&room, &format!("t{i}"));
    }
    let filter = json!({ "room": { "timeline": { "limit": 3 }, "state": { "lazy_load_members": true } } });
    let id =
        alice.post(&format!("/_matrix/client/v3/user/{}/filter", enc(&alice.user_id)), filter).expect(200)["filter_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let stored = alice.get(&format!("/_matrix/client/v3/user/{}/filter/{}", enc(&alice.user_id), enc(&id))).expect(200);
    assert_eq!(stored["room"]["state"]["lazy_load_members"], true);
    let r = alice.sync(None, &format!("&filter={}", enc(&id)));
    let state = r["rooms"]["join"][&room]["state"]["events"].as_array().unwrap();
    let members: Vec<&str> =
        state.iter().filter(|e| e["type"] == "m.room.member").filter_map(|e| e["state_key"].as_str()).collect();
    assert!(members.contains(&talker.user_id.as_str()), "{members:?}");
    assert!(!members.contains(&quiet.user_id.as_str()), "{members:?}");
    alice
        .get(&format!("/_matrix/client/v3/user/{}/filter/{}", enc(&alice.user_id), "9999"))
        .expect_err(404, "M_NOT_FOUND");
}

#[test]
fn invites_and_leaves_appear() {
    let s = server();
    let alice = s.register("inviter");
    let bob = s.register("invited");
    let since = bob.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    let room = alice.create_room(json!({ "preset": "private_chat", "name": "Secret plans" }));
    alice.invite(&room, &bob.user_id);
    let (state, since) = bob.sync_until(Some(&since), WAIT, |r| {
        r["rooms"]["invite"].get(&room).map(|i| i["invite_state"]["events"].clone())
    });
    let events = state.as_array().unwrap();
    assert!(events.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Secret plans"), "{state}");
    assert!(events.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == bob.user_id.as_str()), "{state}");
    bob.join(&room);
    let (_, since) = bob.sync_until(Some(&since), WAIT, |r| r["rooms"]["join"].get(&room).map(|_| ()));
    alice.post(&format!("/_matrix/client/v3/rooms/{}/kick", enc(&room)), json!({ "user_id": bob.user_id })).expect(200);
    let (left, _) = bob.sync_until(Some(&since), WAIT, |r| r["rooms"]["leave"].get(&room).cloned());
    let tl = left["timeline"]["events"].as_array().unwrap();
    assert!(tl.iter().any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "leave"), "{left}");
}

#[test]
fn typing_and_receipts_are_ephemeral_events() {
    let s = server();
    let alice = s.register("typer");
    let bob = s.register("reader");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    let since = bob.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    alice
        .put(
            &format!("/_matrix/client/v3/rooms/{}/typing/{}", enc(&room), enc(&alice.user_id)),
            json!({ "typing": true, "timeout": 10000 }),
        )
        .expect(200);
    let (_, since) = bob.sync_until(Some(&since), WAIT, |r| {
        let eph = r["rooms"]["join"][&room]["ephemeral"]["events"].as_array()?;
        eph.iter()
            .find(|e| {
                e["type"] == "m.typing"
                    && e["content"]["user_ids"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|x| x == alice.user_id.as_str()))
            })
            .map(|_| ())
    });
    alice
        .put(
            &format!("/_matrix/client/v3/rooms/{}/typing/{}", enc(&room), enc(&alice.user_id)),
            json!({ "typing": false }),
        )
        .expect(200);
    let (_, since) = bob.sync_until(Some(&since), WAIT, |r| {
        let eph = r["rooms"]["join"][&room]["ephemeral"]["events"].as_array()?;
        eph.iter().find(|e| e["type"] == "m.typing" && e["content"]["user_ids"] == json!([])).map(|_| ())
    });
    let ev = alice.send_text(&room, "read me");
    bob.post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room), enc(&ev)), json!({})).expect(200);
    let (_, _) = alice.sync_until(None, WAIT, |r| {
        let eph = r["rooms"]["join"][&room]["ephemeral"]["events"].as_array()?;
        eph.iter()
            .find(|e| e["type"] == "m.receipt" && e["content"][&ev]["m.read"].get(&bob.user_id).is_some())
            .map(|_| ())
    });
    // Private receipts are only for their owner.
    let ev2 = alice.send_text(&room, "private");
    bob.post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.read.private/{}", enc(&room), enc(&ev2)), json!({}))
        .expect(200);
    let (_, _) = bob.sync_until(Some(&since), WAIT, |r| {
        let eph = r["rooms"]["join"][&room]["ephemeral"]["events"].as_array()?;
        eph.iter().find(|e| e["content"][&ev2]["m.read.private"].get(&bob.user_id).is_some()).map(|_| ())
    });
    let seen_by_alice = alice.sync(None, "");
    let eph = seen_by_alice["rooms"]["join"][&room]["ephemeral"]["events"].to_string();
    assert!(!eph.contains("m.read.private"), "{eph}");
    let r = bob.post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.bogus/{}", enc(&room), enc(&ev2)), json!({}));
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[test]
fn account_data_and_tags_sync() {
    let s = server();
    let u = s.register("acct");
    let room = u.create_room(json!({}));
    let since = u.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    let global = format!("/_matrix/client/v3/user/{}/account_data/org.example.settings", enc(&u.user_id));
    u.get(&global).expect_err(404, "M_NOT_FOUND");
    u.put(&global, json!({ "theme": "dark" })).expect(200);
    assert_eq!(u.get(&global).expect(200)["theme"], "dark");
    let per_room =
        format!("/_matrix/client/v3/user/{}/rooms/{}/account_data/org.example.room", enc(&u.user_id), enc(&room));
    u.put(&per_room, json!({ "pinned": true })).expect(200);
    u.put(
        &format!("/_matrix/client/v3/user/{}/rooms/{}/tags/m.favourite", enc(&u.user_id), enc(&room)),
        json!({ "order": 0.5 }),
    )
    .expect(200);
    let tags = u.get(&format!("/_matrix/client/v3/user/{}/rooms/{}/tags", enc(&u.user_id), enc(&room))).expect(200);
    assert_eq!(tags["tags"]["m.favourite"]["order"], 0.5);
    let (r, _) = u.sync_until(Some(&since), WAIT, |r| {
        let g = r["account_data"]["events"].as_array()?;
        g.iter().any(|e| e["type"] == "org.example.settings").then(|| r.clone())
    });
    let room_data = r["rooms"]["join"][&room]["account_data"]["events"].as_array().cloned().unwrap_or_default();
    assert!(room_data.iter().any(|e| e["type"] == "org.example.room"), "{r}");
    assert!(room_data.iter().any(|e| e["type"] == "m.tag"), "{r}");
    let other = s.register("acct2");
    other.put(&global, json!({ "x": 1 })).expect_err(403, "M_FORBIDDEN");
}

#[test]
fn unread_notification_counts() {
    let s = server();
    let alice = s.register("countA");
    let bob = s.register("countB");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    let since = bob.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    alice.send_text(&room, "one");
    let last = alice.send_text(&room, &format!("hey {}", bob.localpart));
    let counts = |r: &Value| -> Option<(u64, u64)> {
        let c = r["rooms"]["join"].get(&room)?.get("unread_notifications")?;
        Some((c["notification_count"].as_u64().unwrap_or(0), c["highlight_count"].as_u64().unwrap_or(0)))
    };
    let (_, since) = bob.sync_until(Some(&since), WAIT, |r| (counts(r) == Some((2, 1))).then_some(()));
    bob.post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room), enc(&last)), json!({})).expect(200);
    bob.sync_until(Some(&since), WAIT, |r| (counts(r) == Some((0, 0))).then_some(()));
}

#[test]
fn full_state_and_presence() {
    let s = server();
    let u = s.register("fullstate");
    let room = u.create_room(json!({ "name": "Full" }));
    let since = u.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    let r = u.sync(Some(&since), "&full_state=true");
    let state = r["rooms"]["join"][&room]["state"]["events"].as_array().expect("state");
    assert!(state.iter().any(|e| e["type"] == "m.room.name"), "{r}");
    u.put(
        &format!("/_matrix/client/v3/presence/{}/status", enc(&u.user_id)),
        json!({ "presence": "online", "status_msg": "busy" }),
    )
    .expect(200);
    let p = u.get(&format!("/_matrix/client/v3/presence/{}/status", enc(&u.user_id))).expect(200);
    assert_eq!(p["presence"], "online");
    assert_eq!(p["status_msg"], "busy");
}
