//! Simplified sliding sync (MSC4186), the sync Element X uses.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_conformance::{User, enc, server};

const PATH: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

fn sliding(u: &User<'_>, pos: Option<&str>, timeout_ms: u64, body: &Value) -> Value {
    let mut path = format!("{PATH}?timeout={timeout_ms}");
    if let Some(p) = pos {
        path.push_str(&format!("&pos={}", enc(p)));
    }
    u.post(&path, body.clone()).expect(200)
}

fn request() -> Value {
    json!({
        "conn_id": "room-list",
        "lists": { "all": {
            "ranges": [[0, 19]],
            "timeline_limit": 3,
            "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"], ["m.room.create", ""]],
        }},
        "extensions": { "e2ee": { "enabled": true }, "to_device": { "enabled": true }, "account_data": { "enabled": true } },
    })
}

#[test]
fn room_list_window_then_increments() {
    let s = server();
    let alice = s.register("ssA");
    let bob = s.register("ssB");
    let named = alice.create_room(json!({ "preset": "public_chat", "name": "Sliding" }));
    let older = alice.create_room(json!({ "preset": "public_chat", "name": "Older" }));
    bob.join(&older);
    bob.join(&named);
    alice.send_text(&older, "old news");
    alice.send_text(&named, "first");
    let invite_room = alice.create_room(json!({ "preset": "private_chat", "name": "Invite me" }));
    alice.invite(&invite_room, &bob.user_id);

    let deadline = Instant::now() + Duration::from_secs(15);
    let first = loop {
        let r = sliding(&bob, None, 0, &request());
        if r["lists"]["all"]["count"] == 3 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(first["lists"]["all"]["count"], 3, "{first}");
    let room = &first["rooms"][&named];
    assert_eq!(room["initial"], true, "{first}");
    assert_eq!(room["name"], "Sliding");
    let bodies: Vec<&str> =
        room["timeline"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert!(bodies.contains(&"first"), "{room}");
    let state = room["required_state"].as_array().unwrap();
    assert!(state.iter().any(|e| e["type"] == "m.room.create"), "{room}");
    assert!(room["bump_stamp"].is_number(), "{room}");
    assert!(first["rooms"][&invite_room]["invite_state"].is_array(), "{first}");
    assert!(
        first["extensions"]["e2ee"]["device_one_time_keys_count"].is_object()
            || first["extensions"]["e2ee"].is_object(),
        "{first}"
    );
    let pos = first["pos"].as_str().expect("pos").to_owned();

    // A new message wakes a long poll and arrives alone, not as an initial room.
    let (next, took) = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let started = Instant::now();
            let mut r = sliding(&bob, Some(&pos), 20_000, &request());
            // A server may answer early with nothing new for this window; ask again.
            while r["rooms"].get(&named).is_none() && started.elapsed() < Duration::from_secs(15) {
                let p = r["pos"].as_str().unwrap().to_owned();
                r = sliding(&bob, Some(&p), 10_000, &request());
            }
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        alice.send_text(&named, "second");
        waiter.join().unwrap()
    });
    assert!(took < Duration::from_secs(15), "{took:?}");
    let room = &next["rooms"][&named];
    let bodies: Vec<&str> =
        room["timeline"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert_eq!(bodies, ["second"], "{next}");
    assert_ne!(room["initial"], true, "{next}");
    assert!(next["rooms"].get(&older).is_none(), "{next}");
}

#[test]
fn an_unknown_pos_is_refused() {
    let s = server();
    let u = s.register("ssPos");
    u.create_room(json!({}));
    let first = sliding(&u, None, 0, &request());
    let pos = first["pos"].as_str().unwrap();
    // A position of one connection means nothing to another: the client must start over.
    let mut other = request();
    other["conn_id"] = "another-connection".into();
    let r = u.post(&format!("{PATH}?pos={}", enc(pos)), other);
    r.expect_err(400, "M_UNKNOWN_POS");
}
