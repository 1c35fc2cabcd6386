//! What the engine examples share: a server in a temporary directory with a public room.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use tandem_core::rooms::create::CreateRoom;
use tandem_core::server::Homeserver;
use tandem_core::server_key::ServerKey;

/// A server named `example.org` (dropped with the directory), its first user and a public
/// room that user created, of `version` (the server's default if `None`).
pub fn server_with_room(version: Option<&str>) -> (tempfile::TempDir, Arc<Homeserver>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hs = Homeserver::open(dir.path(), "example.org", ServerKey::generate("t")).expect("open");
    let creator = hs.create_account("creator", None, false).expect("account");
    let public = CreateRoom {
        preset: Some("public_chat".into()),
        room_version: version.map(str::to_owned),
        ..Default::default()
    };
    let room = hs.create_room(&creator, public).expect("room");
    (dir, hs, creator, room)
}

/// The server of `dir` opened again (after the caller dropped it), as after a restart.
#[allow(dead_code)]
pub fn reopen(dir: &tempfile::TempDir) -> Arc<Homeserver> {
    Homeserver::open(dir.path(), "example.org", ServerKey::generate("t")).expect("open again")
}

/// Adds local users `m{from}`..=`m{to}` to `room`, one join each.
#[allow(dead_code)]
pub fn join_members(hs: &Homeserver, room: &str, from: usize, to: usize) {
    for i in from..=to {
        let user = hs.create_account(&format!("m{i}"), None, false).expect("account");
        hs.set_membership(&user, room, &user, "join", None, None).expect("join");
    }
}

/// Runs `work` while another thread sends messages in `other` as `user`, one after another:
/// the time `work` took, and the longest of those sends (zero without `other`). Work that held
/// the writer lock shows in the second figure.
#[allow(dead_code)]
pub fn with_bystander(
    hs: &Arc<Homeserver>,
    user: &str,
    other: Option<&str>,
    work: impl FnOnce(),
) -> (Duration, Duration) {
    // Transaction ids unique across calls: a repeated one would be answered without a write.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let side = other.map(|other| {
        let (hs, user, other, stop) = (hs.clone(), user.to_owned(), other.to_owned(), stop.clone());
        std::thread::spawn(move || {
            let (mut sent, mut worst) = (0, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let content = json!({ "msgtype": "m.text", "body": "meanwhile" });
                hs.send_message(&user, "D", &other, "m.room.message", &format!("b{call}-{sent}"), content)
                    .expect("send");
                worst = worst.max(started.elapsed());
                sent += 1;
            }
            (sent, worst)
        })
    });
    let started = Instant::now();
    work();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let Some(side) = side else { return (took, Duration::ZERO) };
    let (sent, worst) = side.join().expect("bystander");
    assert!(sent > 0, "the bystander sent nothing");
    (took, worst)
}
