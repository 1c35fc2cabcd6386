//! Sending and reading events: transaction ids, `/event`, `/messages`, `/context`,
//! redactions, relations and threads.

use serde_json::{Value, json};
use tandem_conformance::client::unique;
use tandem_conformance::{User, enc, server};

fn bodies(chunk: &Value) -> Vec<String> {
    chunk
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn messages(u: &User<'_>, room: &str, query: &str) -> Value {
    u.get(&format!("/_matrix/client/v3/rooms/{}/messages?{query}", enc(room))).expect(200)
}

#[test]
fn a_retried_transaction_sends_once() {
    let s = server();
    let u = s.register("txn");
    let room = u.create_room(json!({}));
    let txn = unique("t");
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(&room));
    let first = u.put(&path, json!({ "msgtype": "m.text", "body": "once" })).expect(200);
    let second = u.put(&path, json!({ "msgtype": "m.text", "body": "once" })).expect(200);
    assert_eq!(first["event_id"], second["event_id"]);
    let page = messages(&u, &room, "dir=b&limit=50");
    assert_eq!(bodies(&page["chunk"]).iter().filter(|b| *b == "once").count(), 1);
    let event = u
        .get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(first["event_id"].as_str().unwrap())))
        .expect(200);
    assert_eq!(event["content"]["body"], "once");
    assert_eq!(event["sender"], u.user_id.as_str());
    assert_eq!(event["room_id"], room.as_str());
    assert_eq!(event["unsigned"]["transaction_id"], txn.as_str(), "{event}");
    u.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc("$nope"))).expect_err(404, "M_NOT_FOUND");
}

#[test]
fn messages_paginate_both_ways() {
    let s = server();
    let u = s.register("pager");
    let room = u.create_room(json!({}));
    for i in 0..7 {
        u.send_text(&room, &format!("m{i}"));
    }
    let page1 = messages(&u, &room, "dir=b&limit=3");
    assert_eq!(bodies(&page1["chunk"]), ["m6", "m5", "m4"]);
    let end = page1["end"].as_str().expect("end token");
    let page2 = messages(&u, &room, &format!("dir=b&limit=3&from={}", enc(end)));
    assert_eq!(bodies(&page2["chunk"]), ["m3", "m2", "m1"]);
    // Forward from the second page's end goes back over what we saw.
    let fwd = messages(&u, &room, &format!("dir=f&limit=4&from={}", enc(page2["end"].as_str().unwrap())));
    let f = bodies(&fwd["chunk"]);
    assert!(
        f.starts_with(&["m1".to_owned(), "m2".to_owned()]) || f.starts_with(&["m0".to_owned(), "m1".to_owned()]),
        "{f:?}"
    );
    // Paging back to the beginning ends with the room's creation and no `end`.
    let mut from = end.to_owned();
    let mut guard = 0;
    loop {
        let p = messages(&u, &room, &format!("dir=b&limit=10&from={}", enc(&from)));
        match p["end"].as_str() {
            Some(e) if !p["chunk"].as_array().unwrap().is_empty() => from = e.to_owned(),
            _ => {
                break;
            }
        }
        guard += 1;
        assert!(guard < 10, "pagination does not end");
    }
    // A filter by type.
    let only_state = messages(&u, &room, &format!("dir=b&limit=50&filter={}", enc(r#"{"types":["m.room.create"]}"#)));
    let kinds: Vec<&str> = only_state["chunk"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["m.room.create"]);
    let r = u.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=sideways", enc(&room)));
    assert_eq!(r.status, 400, "{:?}", r.body);
}

#[test]
fn history_visibility_joined_hides_earlier_messages() {
    let s = server();
    let alice = s.register("histA");
    let bob = s.register("histB");
    let room = alice.create_room(json!({
        "preset": "public_chat",
        "initial_state": [{ "type": "m.room.history_visibility", "content": { "history_visibility": "joined" } }],
    }));
    alice.send_text(&room, "before bob");
    bob.join(&room);
    alice.send_text(&room, "after bob");
    let seen = bodies(&messages(&bob, &room, "dir=b&limit=50")["chunk"]);
    assert!(seen.contains(&"after bob".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"before bob".to_owned()), "{seen:?}");
}

#[test]
fn context_around_an_event() {
    let s = server();
    let u = s.register("context");
    let room = u.create_room(json!({}));
    let ids: Vec<String> = (0..5).map(|i| u.send_text(&room, &format!("c{i}"))).collect();
    let ctx = u.get(&format!("/_matrix/client/v3/rooms/{}/context/{}?limit=2", enc(&room), enc(&ids[2]))).expect(200);
    assert_eq!(ctx["event"]["event_id"], ids[2].as_str());
    assert_eq!(ctx["events_before"][0]["event_id"], ids[1].as_str(), "{ctx}");
    assert_eq!(ctx["events_after"][0]["event_id"], ids[3].as_str(), "{ctx}");
    assert!(ctx["start"].is_string() && ctx["end"].is_string());
    assert!(ctx["state"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"));
}

#[test]
fn redaction_strips_content() {
    let s = server();
    let alice = s.register("redactor");
    let bob = s.register("redactee");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    let mine = bob.send_text(&room, "oops");
    let theirs = alice.send_text(&room, "admin text");
    // Read once before the redaction: a server that keeps what it read must not keep serving it.
    let before = alice.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&mine))).expect(200);
    assert_eq!(before["content"]["body"], "oops", "{before}");
    // Bob may redact his own event, not Alice's.
    let r =
        bob.put(&format!("/_matrix/client/v3/rooms/{}/redact/{}/{}", enc(&room), enc(&theirs), unique("r")), json!({}));
    r.expect_err(403, "M_FORBIDDEN");
    let red = bob.put(
        &format!("/_matrix/client/v3/rooms/{}/redact/{}/{}", enc(&room), enc(&mine), unique("r")),
        json!({ "reason": "typo" }),
    );
    let redaction_id = red.expect(200)["event_id"].as_str().unwrap().to_owned();
    let ev = alice.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&mine))).expect(200);
    assert_eq!(ev["content"], json!({}), "{ev}");
    assert_eq!(ev["unsigned"]["redacted_because"]["event_id"], redaction_id.as_str(), "{ev}");
    // The room moderator may redact anyone's event.
    alice
        .put(&format!("/_matrix/client/v3/rooms/{}/redact/{}/{}", enc(&room), enc(&theirs), unique("r")), json!({}))
        .expect(200);
}

#[test]
fn relations_and_threads() {
    let s = server();
    let u = s.register("threads");
    let room = u.create_room(json!({}));
    let root = u.send_text(&room, "root");
    let reply = |body: &str| {
        let content = json!({
            "msgtype": "m.text", "body": body,
            "m.relates_to": { "rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": { "event_id": root } },
        });
        u.put(&format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(&room), unique("t")), content)
            .expect(200)["event_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let r1 = reply("first");
    let r2 = reply("second");
    let edit = json!({
        "msgtype": "m.text", "body": "* root (edited)",
        "m.new_content": { "msgtype": "m.text", "body": "root (edited)" },
        "m.relates_to": { "rel_type": "m.replace", "event_id": root },
    });
    u.put(&format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(&room), unique("t")), edit).expect(200);

    let all = u.get(&format!("/_matrix/client/v1/rooms/{}/relations/{}", enc(&room), enc(&root))).expect(200);
    assert_eq!(all["chunk"].as_array().unwrap().len(), 3, "{all}");
    let thread =
        u.get(&format!("/_matrix/client/v1/rooms/{}/relations/{}/m.thread", enc(&room), enc(&root))).expect(200);
    let ids: Vec<&str> = thread["chunk"].as_array().unwrap().iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids, [r2.as_str(), r1.as_str()]);
    let paged = u
        .get(&format!("/_matrix/client/v1/rooms/{}/relations/{}/m.thread?limit=1", enc(&room), enc(&root)))
        .expect(200);
    assert_eq!(paged["chunk"].as_array().unwrap().len(), 1);
    assert!(paged["next_batch"].is_string(), "{paged}");

    let ev = u.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&root))).expect(200);
    let summary = &ev["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(summary["count"], 2, "{ev}");
    assert_eq!(summary["latest_event"]["event_id"], r2.as_str());
    assert_eq!(summary["current_user_participated"], true);

    let threads = u.get(&format!("/_matrix/client/v1/rooms/{}/threads", enc(&room))).expect(200);
    let roots: Vec<&str> = threads["chunk"].as_array().unwrap().iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(roots, [root.as_str()]);
}

#[test]
fn timestamp_to_event_finds_the_nearest_event() {
    let s = server();
    let u = s.register("jump");
    let room = u.create_room(json!({}));
    let first = u.send_text(&room, "first");
    let event = |id: &str| u.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(id))).expect(200);
    let ts_first = event(&first)["origin_server_ts"].as_u64().unwrap();
    // The clock must move on between the two messages for the lookups to tell them apart.
    tandem_conformance::eventually(std::time::Duration::from_secs(5), "the clock to move", || {
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 > ts_first + 2)
            .then_some(())
    });
    let second = u.send_text(&room, "second");
    let ts_second = event(&second)["origin_server_ts"].as_u64().unwrap();
    assert!(ts_second > ts_first);
    let jump = |ts: u64, dir: &str| {
        u.get(&format!("/_matrix/client/v1/rooms/{}/timestamp_to_event?ts={ts}&dir={dir}", enc(&room)))
    };
    let found = jump(ts_first + 1, "f").expect(200);
    assert_eq!(found["event_id"], second.as_str(), "{found}");
    assert_eq!(found["origin_server_ts"], ts_second);
    assert_eq!(jump(ts_second - 1, "b").expect(200)["event_id"], first.as_str());
    assert_eq!(jump(ts_second, "b").expect(200)["event_id"], second.as_str());
    jump(ts_second + 60_000, "f").expect_err(404, "M_NOT_FOUND");
    let path = format!("/_matrix/client/v1/rooms/{}/timestamp_to_event?dir=f", enc(&room));
    assert_eq!(u.get(&path).status, 400, "ts is required");
    // Not a member: refused.
    let other = s.register("jump_out");
    let path = format!("/_matrix/client/v1/rooms/{}/timestamp_to_event?ts={ts_first}&dir=f", enc(&room));
    other.get(&path).expect_err(403, "M_FORBIDDEN");
}
