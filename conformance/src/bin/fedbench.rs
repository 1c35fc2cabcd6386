//! `fedbench`: federation timings between Tandem and Synapse on this machine, in one run.
//!
//! cargo run -p tandem-conformance --bin fedbench -- [--members N] [--samples N]
//!   (TANDEM_BIN picks the tandem binary; default: the one beside this one)
//!
//! - joining a room of N members hosted on Synapse: from Tandem, and from a second Synapse;
//! - joining a room of N members hosted on Tandem: from Synapse;
//! - the delay from a message sent on one server to its arrival in a long-polling `/sync` on
//!   the other, both ways (median and worst of the samples).

use std::time::{Duration, Instant};

use serde_json::json;
use tandem_conformance::User;
use tandem_conformance::bench::workloads::sync_delays;
use tandem_conformance::federation::{Kind, Peer};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A public room on `host` with `members` joined users besides its creator.
fn populated_room<'a>(host: &'a Peer, members: usize) -> (User<'a>, String) {
    let admin = host.server.register("host");
    let room = admin.create_room(json!({ "preset": "public_chat" }));
    let started = Instant::now();
    for i in 0..members {
        let u = host.server.register("member");
        u.join(&room);
        if (i + 1) % 100 == 0 {
            eprintln!("{:?}: {} of {members} members on {}", started.elapsed(), i + 1, host.name);
        }
    }
    (admin, room)
}

fn timed_join(user: &User, room: &str, via: &str) -> Duration {
    let path = format!(
        "/_matrix/client/v3/join/{}?server_name={}",
        tandem_conformance::enc(room),
        tandem_conformance::enc(via)
    );
    let started = Instant::now();
    let r = user.post(&path, json!({}));
    let took = started.elapsed();
    assert_eq!(r.status, 200, "join failed: {}", r.body);
    took
}

fn main() {
    let members = arg("--members", 1000);
    let samples = arg("--samples", 20);
    let synapse_host = Peer::start(Kind::Synapse, None);
    let synapse_joiner = Peer::start(Kind::Synapse, None);
    let tandem = Peer::start(Kind::Tandem, None);

    let (_, s_room) = populated_room(&synapse_host, members);
    let t_user = tandem.server.register("joiner");
    let s2_user = synapse_joiner.server.register("joiner");
    let tandem_joins_synapse = timed_join(&t_user, &s_room, &synapse_host.name);
    let synapse_joins_synapse = timed_join(&s2_user, &s_room, &synapse_host.name);

    let (_, t_room) = populated_room(&tandem, members);
    let s_user = synapse_host.server.register("joiner");
    let synapse_joins_tandem = timed_join(&s_user, &t_room, &tandem.name);

    // Both servers in one room: the Tandem-hosted one, where both users are now joined.
    t_user.join(&t_room);
    let t_to_s = sync_delays(&t_user, &s_user, &t_room, |n| n < samples);
    let s_to_t = sync_delays(&s_user, &t_user, &t_room, |n| n < samples);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| federation, {members}-member rooms | ms |");
    println!("| --- | ---: |");
    println!("| Tandem user joins a room on Synapse | {:.0} |", ms(tandem_joins_synapse));
    println!("| Synapse user joins the same room on Synapse | {:.0} |", ms(synapse_joins_synapse));
    println!("| Synapse user joins a room on Tandem | {:.0} |", ms(synapse_joins_tandem));
    let med = |v: &[f64]| v[v.len() / 2];
    println!("| message Tandem → Synapse /sync: median of {samples} | {:.1} |", med(&t_to_s));
    println!("| message Tandem → Synapse /sync: worst | {:.1} |", t_to_s.last().copied().unwrap_or(0.0));
    println!("| message Synapse → Tandem /sync: median of {samples} | {:.1} |", med(&s_to_t));
    println!("| message Synapse → Tandem /sync: worst | {:.1} |", s_to_t.last().copied().unwrap_or(0.0));
}
