//! The server's own merge path: a room of `members` local members in which another server's
//! users fork the graph into two branches of `changes` state events each (each branch renames
//! its own half of those users, and every user once on both), then an event joins the branches.
//! Times, through the engine alone (no HTTP, no signature checks), the receipt of the event
//! that makes the second forward extremity (the current state is resolved) and of the event
//! that cites both (the state before it is resolved). Meanwhile another thread sends messages
//! in another room, one after another, and the longest of those sends is reported: a merge
//! that held the writer lock would show there (`bystander` 0 leaves it out, to time the
//! receipts alone).
//! `cold` 1 restarts the server before the timed receipts (nothing of the room cached).
//! `cargo run --release -p tandem-core --example room_merge -- [members] [changes] [bystander] [cold]`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tandem_core::inbound::{Pdu, Received};
use tandem_core::server::Homeserver;

fn pdu(event: Value) -> Pdu {
    let rules = ruma::RoomVersionId::V11.rules().expect("v11");
    let obj = ruma::canonical_json::try_from_json_map(event.as_object().expect("object").clone()).expect("json");
    Pdu { event_id: tandem_core::pdu::event_id(&rules, &obj).expect("id"), json: event }
}

/// Receives `pdu` while a bystander sends in `other`: the time of the receipt, and the longest
/// of the bystander's sends.
fn timed_receipt(hs: &Arc<Homeserver>, room: &str, pdu: &Pdu, user: &str, other: Option<&str>) -> (Duration, Duration) {
    common::with_bystander(hs, user, other, || {
        assert_eq!(hs.receive_pdu(room, pdu, None).expect("receive"), Received::Accepted);
    })
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (members, changes) = (args.first().copied().unwrap_or(10_000), args.get(1).copied().unwrap_or(200));
    let with_bystander = args.get(2) != Some(&0);
    let cold = args.get(3) == Some(&1);
    let (dir, hs, creator, room) = common::server_with_room(Some("11"));
    let other = hs.create_room(&creator, Default::default()).expect("room");
    let other = with_bystander.then_some(other.as_str());
    common::join_members(&hs, &room, 1, members);
    let id = |kind: &str| hs.current_state_id(&room, kind, "").expect("read").expect("state");
    let (create, power, rules) = (id("m.room.create"), id("m.room.power_levels"), id("m.room.join_rules"));
    let remote_users: Vec<String> = (0..changes).map(|i| format!("@r{i}:remote.example")).collect();
    let mut depth = hs.room_info(&room).expect("read").expect("room").depth;
    let member = |user: &str, name: &str, auth: Vec<String>, prev: &str, depth: i64, ts: i64| {
        pdu(json!({
            "type": "m.room.member", "state_key": user, "sender": user, "room_id": room,
            "content": { "membership": "join", "displayname": name }, "auth_events": auth,
            "prev_events": [prev], "depth": depth, "origin_server_ts": ts, "hashes": { "sha256": "x" },
            "signatures": {},
        }))
    };
    // The remote users join, one after another.
    let mut tip = hs.room_info(&room).expect("read").expect("room").extremities[0].clone();
    let mut joins = Vec::new();
    for user in &remote_users {
        depth += 1;
        let join = member(user, "joined", vec![create.clone(), power.clone(), rules.clone()], &tip, depth, 1);
        assert_eq!(hs.receive_pdu(&room, &join, None).expect("receive"), Received::Accepted);
        tip = join.event_id.clone();
        joins.push(join.event_id);
    }
    // Two branches from `tip`: each user renames themself on one branch, and every other user
    // on both, so half the keys conflict.
    let fork_point = tip.clone();
    let mut branches: Vec<Vec<Pdu>> = vec![Vec::new(), Vec::new()];
    for (b, branch) in branches.iter_mut().enumerate() {
        let mut prev = fork_point.clone();
        for (i, user) in remote_users.iter().enumerate() {
            if i % 2 != b && i % 4 != 0 {
                continue;
            }
            let auth = vec![create.clone(), power.clone(), rules.clone(), joins[i].clone()];
            let event =
                member(user, &format!("branch {b}"), auth, &prev, depth + 1 + branch.len() as i64, 2 + b as i64);
            prev = event.event_id.clone();
            branch.push(event);
        }
    }
    for event in &branches[0] {
        assert_eq!(hs.receive_pdu(&room, event, None).expect("receive"), Received::Accepted);
    }
    let (last, rest) = branches[1].split_last().expect("a branch");
    for event in rest {
        assert!(matches!(hs.receive_pdu(&room, event, None).expect("receive"), Received::Accepted));
    }
    // A server just restarted has none of the room's events in memory.
    let hs = if cold {
        drop(hs);
        common::reopen(&dir)
    } else {
        hs
    };
    let (second_extremity, worst_during_second) = timed_receipt(&hs, &room, last, &creator, other);

    let tips: Vec<String> = branches.iter().map(|b| b.last().expect("event").event_id.clone()).collect();
    let sender = &remote_users[0];
    let joined = hs.current_state_id(&room, "m.room.member", sender).expect("read").expect("member");
    let merge = pdu(json!({
        "type": "m.room.message", "sender": sender, "room_id": room,
        "content": { "msgtype": "m.text", "body": "merged" }, "auth_events": [create, power, joined],
        "prev_events": tips, "depth": depth + changes as i64 + 2, "origin_server_ts": 3,
        "hashes": { "sha256": "x" }, "signatures": {},
    }));
    let (merged, worst_during_merge) = timed_receipt(&hs, &room, &merge, &creator, other);
    let state = hs.state_at_event(&merge.event_id, false).expect("state");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| members | branch events | second extremity ms | longest send meanwhile ms | merge event ms | longest send meanwhile ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} + {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        members + changes + 1,
        branches[0].len(),
        branches[1].len(),
        ms(second_extremity),
        ms(worst_during_second),
        ms(merged),
        ms(worst_during_merge),
    );
    assert!(state.len() > members);
}
