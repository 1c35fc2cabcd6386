//! An initial `/sync` of a user in many rooms, through the engine alone (no HTTP, no JSON
//! serialization of the answer): `cargo run --release -p tandem-core --example initial_sync --
//! [rooms] [messages per room] [syncs]`. Prints the best of the syncs (5) and the answer's size.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tandem_core::filter::Filter;
use tandem_core::sync::SyncRequest;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (rooms, per_room) = (args.first().copied().unwrap_or(500), args.get(1).copied().unwrap_or(20));
    let syncs = args.get(2).copied().unwrap_or(5);
    let (_dir, hs, user, _) = common::server_with_room(None);
    for r in 0..rooms {
        let room = hs.create_room(&user, Default::default()).expect("room");
        for m in 0..per_room {
            let content = json!({ "msgtype": "m.text", "body": "history" });
            hs.send_message(&user, "D", &room, "m.room.message", &format!("{r}-{m}"), content).expect("send");
        }
    }
    let filter = Filter::default();
    let req = SyncRequest { user_id: &user, device_id: "D", since: None, full_state: false, filter: &filter };
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..syncs {
        let started = Instant::now();
        let (body, _) = hs.sync_once(&req).expect("sync");
        best = best.min(started.elapsed());
        size = body.len();
    }
    println!(
        "{} rooms × {per_room} messages: best of {syncs} {:.1} ms, {} KB",
        rooms + 1,
        best.as_secs_f64() * 1000.0,
        size / 1024
    );
}
