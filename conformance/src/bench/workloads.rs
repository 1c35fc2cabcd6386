//! The workloads, each run the same way against any server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::bench::conn::Conn;
use crate::bench::stats::{percentile, to_ms};
use crate::client::{User, enc};

/// A user's keep-alive connection, registered as client apps register (the UIA dance from
/// `{}` with `m.login.dummy`).
pub fn register(addr: &str, localpart: &str) -> (String, Conn) {
    let mut c = Conn::new(addr, None);
    let (status, challenge) = c.call("POST", "/_matrix/client/v3/register", Some(&json!({})));
    assert_eq!(status, 401, "register {{}}: {challenge}");
    let session = challenge["session"].as_str().expect("session").to_owned();
    let password = format!("pw-{localpart}");
    let body = json!({
        "username": localpart,
        "password": password,
        "auth": { "type": "m.login.dummy", "session": session },
    });
    let r = c.ok("POST", "/_matrix/client/v3/register", Some(&body));
    c.token = r["access_token"].as_str().map(str::to_owned);
    (r["user_id"].as_str().expect("user_id").to_owned(), c)
}

pub fn create_room(c: &mut Conn, body: Value) -> String {
    c.ok("POST", "/_matrix/client/v3/createRoom", Some(&body))["room_id"].as_str().expect("room_id").to_owned()
}

pub fn send(c: &mut Conn, room: &str, txn: &str, body: &str) -> String {
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(room));
    c.ok("PUT", &path, Some(&json!({ "msgtype": "m.text", "body": body })))["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned()
}

/// Throughput and latency of `PUT /send`.
pub struct SendResult {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `messages` sends split over `senders` users, each in a room of their own, concurrently.
pub fn sending(addr: &str, tag: &str, messages: usize, senders: usize) -> SendResult {
    let setups: Vec<(Conn, String)> = (0..senders)
        .map(|i| {
            let (_, mut c) = register(addr, &format!("{tag}send{i}"));
            let room = create_room(&mut c, json!({}));
            (c, room)
        })
        .collect();
    let per_sender = messages / senders;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(messages)));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (i, (mut c, room)) in setups.into_iter().enumerate() {
            let latencies = latencies.clone();
            scope.spawn(move || {
                let mut mine = Vec::with_capacity(per_sender);
                for n in 0..per_sender {
                    let t = Instant::now();
                    send(&mut c, &room, &format!("{tag}-{i}-{n}"), "benchmark message");
                    mine.push(t.elapsed());
                }
                latencies.lock().expect("latencies").extend(mine);
            });
        }
    });
    let elapsed = started.elapsed();
    let mut lat = std::mem::take(&mut *latencies.lock().expect("latencies"));
    let ms = to_ms(&mut lat);
    SendResult {
        per_second: (per_sender * senders) as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
    }
}

/// Time from a send returning to a long-polling `/sync` of another user returning the event.
pub fn delivery(addr: &str, tag: &str, samples: usize) -> (f64, f64) {
    let (_, mut alice) = register(addr, &format!("{tag}delA"));
    let (_, mut bob) = register(addr, &format!("{tag}delB"));
    let room = create_room(&mut alice, json!({ "preset": "public_chat" }));
    bob.ok("POST", &format!("/_matrix/client/v3/join/{}", enc(&room)), Some(&json!({})));
    let filter = enc(r#"{"room":{"timeline":{"limit":5}},"presence":{"not_types":["*"]}}"#);
    let mut since = bob.ok("GET", &format!("/_matrix/client/v3/sync?filter={filter}"), None)["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut latencies = Vec::with_capacity(samples);
    std::thread::scope(|scope| {
        let (seen2, done2, room2) = (seen.clone(), done.clone(), room.clone());
        scope.spawn(move || {
            while !done2.load(Ordering::Acquire) {
                let r = bob.ok(
                    "GET",
                    &format!("/_matrix/client/v3/sync?timeout=5000&filter={filter}&since={}", enc(&since)),
                    None,
                );
                let now = Instant::now();
                since = r["next_batch"].as_str().expect("next_batch").to_owned();
                for e in r["rooms"]["join"][&room2]["timeline"]["events"].as_array().into_iter().flatten() {
                    if let Some(id) = e["event_id"].as_str() {
                        seen2.lock().expect("seen").push((id.to_owned(), now));
                    }
                }
            }
        });
        for n in 0..samples {
            let id = send(&mut alice, &room, &format!("{tag}-del-{n}"), "ping");
            let sent = Instant::now();
            let deadline = sent + Duration::from_secs(30);
            loop {
                if let Some((_, at)) = seen.lock().expect("seen").iter().find(|(e, _)| *e == id) {
                    latencies.push(at.saturating_duration_since(sent));
                    break;
                }
                assert!(Instant::now() < deadline, "event {id} never reached the other user's sync");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        done.store(true, Ordering::Release);
        // Wake the poller.
        send(&mut alice, &room, &format!("{tag}-del-end"), "end");
    });
    let ms = to_ms(&mut latencies);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// A user in `rooms` rooms of `per_room` messages each: initial sync time, and incremental
/// sync with nothing new (p50).
pub fn initial_sync(addr: &str, tag: &str, rooms: usize, per_room: usize) -> (f64, f64) {
    let (_, mut c) = register(addr, &format!("{tag}big"));
    for r in 0..rooms {
        let room = create_room(&mut c, json!({ "name": format!("room {r}") }));
        for m in 0..per_room {
            send(&mut c, &room, &format!("{tag}-big-{r}-{m}"), "history");
        }
    }
    // Best of three: a server's caches warm on the first.
    let mut initial = Vec::new();
    let mut since = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = c.ok("GET", "/_matrix/client/v3/sync", None);
        initial.push(t.elapsed());
        since = r["next_batch"].as_str().expect("next_batch").to_owned();
        assert_eq!(r["rooms"]["join"].as_object().map(|m| m.len()), Some(rooms), "initial sync misses rooms");
    }
    let mut incremental = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = c.ok("GET", &format!("/_matrix/client/v3/sync?timeout=0&since={}", enc(&since)), None);
        incremental.push(t.elapsed());
        since = r["next_batch"].as_str().expect("next_batch").to_owned();
    }
    let initial = to_ms(&mut initial);
    let incremental = to_ms(&mut incremental);
    (initial[0], percentile(&incremental, 0.5))
}

/// Rooms created per second by one user, and joins per second by another.
pub fn rooms_and_joins(addr: &str, tag: &str, count: usize) -> (f64, f64) {
    let (_, mut a) = register(addr, &format!("{tag}creator"));
    let (_, mut b) = register(addr, &format!("{tag}joiner"));
    let t = Instant::now();
    let rooms: Vec<String> = (0..count).map(|_| create_room(&mut a, json!({ "preset": "public_chat" }))).collect();
    let create_rate = count as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for room in &rooms {
        b.ok("POST", &format!("/_matrix/client/v3/join/{}", enc(room)), Some(&json!({})));
    }
    (create_rate, count as f64 / t.elapsed().as_secs_f64())
}

/// Sends messages from `from` one at a time while `more(samples so far)` holds, timing each
/// from the send until it is in `to`'s long-polling `/sync` (across servers, for `fedbench`
/// and `floodbench`); the delays in ms, sorted.
pub fn sync_delays(from: &User, to: &User, room: &str, mut more: impl FnMut(usize) -> bool) -> Vec<f64> {
    let (_, mut since) = to.sync_until(None, Duration::from_secs(30), |_| Some(()));
    let mut out = Vec::new();
    while more(out.len()) {
        let started = Instant::now();
        let id = from.send_text(room, &format!("ping {}", out.len()));
        let (_, next) = to.sync_until(Some(&since), Duration::from_secs(120), |s| {
            User::timeline(s, room).iter().any(|e| e["event_id"] == id.as_str()).then_some(())
        });
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        since = next;
    }
    out.sort_by(f64::total_cmp);
    out
}
