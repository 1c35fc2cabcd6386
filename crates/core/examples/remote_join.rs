//! Joining another server's room of `members` members, through the engine alone (no HTTP, no
//! signature checks): the time `join_remote` takes to check and store the room's state and the
//! join, and, meanwhile, the longest of another thread's sends in another room (a join that
//! checked the whole state inside one write would hold every other write up that long).
//! `cargo run --release -p tandem-core --example remote_join -- [members]`.

mod common;

use serde_json::{Value, json};
use tandem_core::inbound::Pdu;

fn pdu(event: Value) -> Pdu {
    let rules = ruma::RoomVersionId::V11.rules().expect("v11");
    let obj = ruma::canonical_json::try_from_json_map(event.as_object().expect("object").clone()).expect("json");
    Pdu { event_id: tandem_core::pdu::event_id(&rules, &obj).expect("id"), json: event }
}

fn main() {
    let members: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let (_dir, hs, creator, other) = common::server_with_room(Some("11"));
    let room = "!big:remote.example";
    let owner = "@owner:remote.example";
    let mut depth = 0;
    let mut prev: Vec<String> = Vec::new();
    let mut event = |kind: &str, sender: &str, state_key: &str, content: Value, auth: &[&String]| {
        depth += 1;
        let made = pdu(json!({
            "type": kind, "sender": sender, "state_key": state_key, "room_id": room, "content": content,
            "auth_events": auth, "prev_events": prev, "depth": depth, "origin_server_ts": depth,
            "hashes": { "sha256": "x" }, "signatures": {},
        }));
        prev = vec![made.event_id.clone()];
        made
    };
    let create = event("m.room.create", owner, "", json!({ "room_version": "11" }), &[]);
    let joined = event("m.room.member", owner, owner, json!({ "membership": "join" }), &[&create.event_id]);
    let power = event(
        "m.room.power_levels",
        owner,
        "",
        json!({ "users": { owner: 100 } }),
        &[&create.event_id, &joined.event_id],
    );
    let rules = event(
        "m.room.join_rules",
        owner,
        "",
        json!({ "join_rule": "public" }),
        &[&create.event_id, &power.event_id, &joined.event_id],
    );
    let base = [create.event_id.clone(), power.event_id.clone(), rules.event_id.clone()];
    let mut state = vec![create.clone(), joined.clone(), power.clone(), rules.clone()];
    for i in 0..members {
        let user = format!("@u{i}:remote.example");
        state.push(event(
            "m.room.member",
            &user,
            &user,
            json!({ "membership": "join" }),
            &[&base[0], &base[1], &base[2]],
        ));
    }
    let join =
        event("m.room.member", &creator, &creator, json!({ "membership": "join" }), &[&base[0], &base[1], &base[2]]);

    let (took, worst) = common::with_bystander(&hs, &creator, Some(&other), || {
        hs.join_remote(room, "11", &join, &state, &[]).expect("join");
    });
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!("| state events | join_remote ms | longest send meanwhile ms |");
    println!("| ---: | ---: | ---: |");
    println!("| {} | {:.1} | {:.1} |", state.len(), ms(took), ms(worst));
    assert_eq!(
        hs.current_state_id(room, "m.room.member", &creator).expect("read").as_deref(),
        Some(join.event_id.as_str())
    );
}
