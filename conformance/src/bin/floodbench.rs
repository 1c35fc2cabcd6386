//! `floodbench`: what a flooding server costs honest users. Two Tandems share a room (alice on
//! the first, bob on the second); a hostile server whose user joined the room on the second
//! floods it for a while with transactions (valid messages, forged signatures, events whose
//! past it cannot show, junk EDUs) and junk connections (garbage bytes, half-sent handshakes
//! held open). Meanwhile alice sends messages one at a time and each is timed until it shows
//! in bob's `/sync`. The same is measured without the flood, in the same run.
//!
//! cargo run -p tandem-conformance --bin floodbench -- [--seconds N] [--flooders N] [--held N]
//!   (TANDEM_BIN picks the tandem binary; default: the one beside this one)

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_conformance::attack::{self, VERSION};
use tandem_conformance::bench::stats::percentile;
use tandem_conformance::bench::workloads::sync_delays;
use tandem_conformance::enc;
use tandem_conformance::federation::{Kind, Peer};
use tandem_conformance::hostile::{Hostile, Reply, now_ms};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Default)]
struct Counts {
    transactions: AtomicU64,
    answered: AtomicU64,
    pdus: AtomicU64,
    connections: AtomicU64,
}

/// The flood's PDUs: valid messages of mallory, the same with a forged signature, and events
/// whose prev event nobody can show (each makes the victim ask the hostile server).
fn flood_pdus(hostile: &Hostile, room: &str, mallory: &str, auth: &[String], prev: &str, n: u64) -> Vec<Value> {
    let mut pdus = Vec::new();
    for i in 0..50u64 {
        let prev_event = if i % 3 == 2 { format!("$unknown{n}-{i}") } else { prev.to_owned() };
        let event = json!({
            "type": "m.room.message", "room_id": room, "sender": mallory,
            "content": { "msgtype": "m.text", "body": format!("flood {n}/{i}") },
            "origin_server_ts": now_ms(), "depth": 100, "prev_events": [prev_event], "auth_events": auth,
        });
        let (_, mut pdu) = hostile.identity.pdu(event);
        if i % 3 == 1 {
            pdu["content"]["body"] = "tampered".into();
            let server = hostile.name.clone();
            if let Some(sigs) = pdu["signatures"][server.as_str()].as_object_mut() {
                for v in sigs.values_mut() {
                    *v = "AAAA".into();
                }
            }
        }
        pdus.push(pdu);
    }
    pdus
}

fn flood_edus(room: &str, mallory: &str, victim: &str) -> Vec<Value> {
    (0..100)
        .map(|i| match i % 3 {
            0 => json!({ "edu_type": "m.typing", "content": { "room_id": room, "user_id": mallory, "typing": true } }),
            1 => json!({ "edu_type": "m.presence", "content": { "push": [{ "user_id": format!("@bob:{victim}"), "presence": "offline" }] } }),
            _ => json!({ "edu_type": "m.direct_to_device", "content": { "sender": mallory, "type": "m.junk", "message_id": format!("m{i}"), "messages": { format!("@nobody{i}:{victim}"): { "*": { "x": i } } } } }),
        })
        .collect()
}

fn main() {
    let seconds = Duration::from_secs(arg("--seconds", 60));
    let flooders = arg("--flooders", 4);
    let held = arg("--held", 1000);

    let a = Peer::start(Kind::Tandem, None);
    let b = Peer::start(Kind::Tandem, None);
    let alice = a.server.register("alice");
    let bob = b.server.register("bob");
    let room = alice.create_room(json!({ "preset": "public_chat", "room_version": VERSION }));
    let join = format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room), enc(&a.name));
    bob.post(&join, json!({})).expect(200);

    let hostile = Arc::new(Hostile::start());
    // The hostile server publishes its key and shows nothing else it is asked for.
    hostile.script(|r| {
        (!r.path.starts_with("/_matrix/key/")).then(|| Reply::Json(404, json!({ "errcode": "M_NOT_FOUND" })))
    });
    let mallory = hostile.user("mallory");
    let mallory_join = attack::join(&hostile, &b.name, &room, &mallory);
    let state = attack::state_of(&bob, &room);
    let id = |t: &str| state.iter().find(|(tt, k, _)| tt == t && k.is_empty()).map(|(_, _, i)| i.clone()).expect(t);
    let auth = vec![id("m.room.create"), id("m.room.power_levels"), mallory_join.clone()];

    eprintln!("measuring without the flood for {seconds:?}");
    let started = Instant::now();
    let quiet = sync_delays(&alice, &bob, &room, |_| started.elapsed() < seconds);

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut threads = Vec::new();
    for f in 0..flooders {
        let (hostile, stop, counts) = (hostile.clone(), stop.clone(), counts.clone());
        let (room, mallory, auth, prev, victim) =
            (room.clone(), mallory.clone(), auth.clone(), mallory_join.clone(), b.name.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let pdus = flood_pdus(&hostile, &room, &mallory, &auth, &prev, f * 1_000_000 + n);
                let edus = flood_edus(&room, &mallory, &victim);
                let txn = format!("flood-{f}-{n}");
                let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    hostile.send(&victim, &txn, pdus, edus).status
                }));
                counts.transactions.fetch_add(1, Ordering::Relaxed);
                counts.pdus.fetch_add(50, Ordering::Relaxed);
                if matches!(sent, Ok(200)) {
                    counts.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Junk connections: garbage, and half-sent handshakes kept open until the victim drops them.
    {
        let (stop, counts, victim) = (stop.clone(), counts.clone(), b.name.clone());
        threads.push(std::thread::spawn(move || {
            let mut open: Vec<TcpStream> = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                if let Ok(mut s) = TcpStream::connect(&victim) {
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    if i.is_multiple_of(2) {
                        let _ = s.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
                    } else {
                        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\x00\xff garbage");
                    }
                    open.push(s);
                }
                if open.len() as u64 >= held {
                    open.remove(0);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    eprintln!("measuring during the flood for {seconds:?}");
    let started = Instant::now();
    let flooded = sync_delays(&alice, &bob, &room, |_| started.elapsed() < seconds);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }

    println!(
        "| honest message Tandem → Tandem /sync, {}s each | samples | p50 ms | p99 ms | worst ms |",
        seconds.as_secs()
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (label, d) in [("no flood", &quiet), ("during the flood", &flooded)] {
        println!(
            "| {label} | {} | {:.1} | {:.1} | {:.1} |",
            d.len(),
            percentile(d, 0.5),
            percentile(d, 0.99),
            d.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "\nflood: {flooders} senders, {} transactions ({} answered 200; {} PDUs, 100 EDUs each), {} junk connections (up to {held} held open)",
        counts.transactions.load(Ordering::Relaxed),
        counts.answered.load(Ordering::Relaxed),
        counts.pdus.load(Ordering::Relaxed),
        counts.connections.load(Ordering::Relaxed),
    );
}
