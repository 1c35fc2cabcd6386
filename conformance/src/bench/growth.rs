//! One room growing by single joins: what a join costs as the room grows, in time, disk and
//! memory. Users are registered in batches before each stretch of joins (registration hashes
//! passwords and is not what is measured), then join one after another on one connection.
//! Then users of other servers join the grown room over federation.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::bench::conn::Conn;
use crate::bench::servers::Running;
use crate::bench::stats::memory_kb;
use crate::bench::workloads::{create_room, register, send};
use crate::client::enc;

/// Registrations run side by side on this many connections.
const REGISTERING: usize = 4;

/// The numbers at one size of the room.
pub struct AtSize {
    pub members: usize,
    /// Mean join time over the last joins before this size (at most 1,000 of them).
    pub ms_per_join: f64,
    /// Disk growth over the joins since the previous size, per join.
    pub kb_per_join: f64,
    /// Resident memory once the room reached this size (the peak while joining would count
    /// what registration's password hashing left resident just before).
    pub rss_mb: f64,
}

/// Access tokens of `count` new users, registered as apps register.
fn register_batch(addr: &str, tag: &str, first: usize, count: usize) -> Vec<String> {
    let per = count.div_ceil(REGISTERING);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..REGISTERING)
            .map(|t| {
                let start = first + t * per;
                let end = (start + per).min(first + count);
                scope.spawn(move || {
                    (start..end)
                        .map(|i| register(addr, &format!("{tag}g{i}")).1.token.expect("access token"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("registering thread")).collect()
    })
}

/// A grown room: its id, its creator's connection, and the numbers at each size.
pub struct Grown {
    pub room: String,
    pub owner: Conn,
    pub sizes: Vec<AtSize>,
}

/// Grows one public room to each of `sizes` (ascending) members on `server`.
pub fn growth(server: &Running, tag: &str, sizes: &[usize]) -> Grown {
    let addr = server.addr.as_str();
    let (_, mut owner) = register(addr, &format!("{tag}gowner"));
    let room = create_room(&mut owner, json!({ "preset": "public_chat" }));
    let join_path = format!("/_matrix/client/v3/join/{}", enc(&room));
    let mut joiner = Conn::new(addr, None);
    let mut members = 1;
    let mut out = Vec::new();
    for &size in sizes {
        let tokens = register_batch(addr, tag, members, size.saturating_sub(members));
        eprintln!("[{}] {} users registered; joining them", server.name, tokens.len());
        let disk_before = server.disk_bytes();
        let mut times: Vec<Duration> = Vec::with_capacity(tokens.len());
        for token in &tokens {
            joiner.token = Some(token.clone());
            let started = Instant::now();
            let (status, body) = joiner.call("POST", &join_path, Some(&json!({})));
            times.push(started.elapsed());
            assert_eq!(status, 200, "join: {body}");
        }
        members += tokens.len();
        let last = &times[times.len().saturating_sub(1000)..];
        let ms_per_join = last.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / last.len().max(1) as f64;
        let grown = server.disk_bytes().saturating_sub(disk_before);
        let rss = memory_kb(server.pid).0;
        let at = AtSize {
            members,
            ms_per_join,
            kb_per_join: grown as f64 / 1024.0 / tokens.len().max(1) as f64,
            rss_mb: rss as f64 / 1024.0,
        };
        eprintln!(
            "[{}] {} members: {:.2} ms/join, {:.2} KB/join, RSS {:.1} MB",
            server.name, at.members, at.ms_per_join, at.kb_per_join, at.rss_mb
        );
        out.push(at);
    }
    Grown { room, owner, sizes: out }
}

/// A new user of `joiner` joins the grown room on `resident` over federation: seconds until
/// the join returned, and until the user's `/sync` (lazy-loading members, as apps do) showed a
/// message the room's creator sent as soon as the join returned.
pub fn remote_join(resident: &Running, grown: &mut Grown, joiner: &Running, localpart: &str) -> (f64, f64) {
    let via = resident.server_name.as_deref().expect("the resident server federates");
    let (_, mut user) = register(&joiner.addr, localpart);
    let started = Instant::now();
    let path = format!("/_matrix/client/v3/join/{}?server_name={}", enc(&grown.room), enc(via));
    let (status, body) = user.call("POST", &path, Some(&json!({})));
    assert_eq!(status, 200, "{} joining over federation: {body}", joiner.name);
    let joined = started.elapsed().as_secs_f64();
    let id = send(&mut grown.owner, &grown.room, &format!("{localpart}-hello"), "welcome");
    let filter = enc(r#"{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}"#);
    let mut since: Option<String> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let query = match &since {
            Some(s) => format!("filter={filter}&timeout=5000&since={}", enc(s)),
            None => format!("filter={filter}"),
        };
        let r = user.ok("GET", &format!("/_matrix/client/v3/sync?{query}"), None);
        let timeline = r["rooms"]["join"][&grown.room]["timeline"]["events"].as_array().cloned().unwrap_or_default();
        if timeline.iter().any(|e| e["event_id"].as_str() == Some(id.as_str())) {
            return (joined, started.elapsed().as_secs_f64());
        }
        assert!(Instant::now() < deadline, "{} never showed the message {id}", joiner.name);
        since = r["next_batch"].as_str().map(str::to_owned);
    }
}
