//! What the engine examples share: a server in a temporary directory with a public room.

use std::sync::Arc;

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

/// Adds local users `m{from}`..=`m{to}` to `room`, one join each.
#[allow(dead_code)]
pub fn join_members(hs: &Homeserver, room: &str, from: usize, to: usize) {
    for i in from..=to {
        let user = hs.create_account(&format!("m{i}"), None, false).expect("account");
        hs.set_membership(&user, room, &user, "join", None, None).expect("join");
    }
}
