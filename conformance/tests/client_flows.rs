//! What real client apps do that friendly tests skip: registering from an empty body, declining
//! an invite to a room nobody is in any more, forgetting right after leaving, previews of rooms
//! one is not in, `unsigned.membership`, transaction ids used in several rooms, counts after a
//! read receipt, the features Element Web looks for, and where `.well-known` sends clients.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_conformance::{User, enc, server, unique};

const REGISTER: &str = "/_matrix/client/v3/register";

/// Element Web and the SDKs open with `{}` (Element: only `initial_device_display_name`) and
/// expect the flows; the password may come in any round.
#[test]
fn registration_starts_from_an_empty_body() {
    let s = server();
    for opening in [json!({}), json!({ "initial_device_display_name": "Element" })] {
        let challenge = s.call("POST", REGISTER, None, Some(&opening)).expect(401);
        assert!(challenge.get("errcode").is_none(), "a first challenge has no errcode: {challenge}");
        assert!(challenge["session"].is_string(), "{challenge}");
        assert!(challenge["params"].is_object(), "{challenge}");
        let stages: Vec<&Value> = challenge["flows"].as_array().expect("flows").iter().map(|f| &f["stages"]).collect();
        assert!(stages.contains(&&json!(["m.login.dummy"])), "{challenge}");
    }

    // The password in the opening round only, as a client may send it: remembered by the session.
    let name = unique("regpw");
    let first = json!({ "username": name, "password": "opening-round", "initial_device_display_name": "app" });
    let challenge = s.call("POST", REGISTER, None, Some(&first)).expect(401);
    let session = challenge["session"].as_str().expect("session");
    let done = s
        .call(
            "POST",
            REGISTER,
            None,
            Some(&json!({ "username": name, "auth": { "type": "m.login.dummy", "session": session } })),
        )
        .expect(200);
    assert!(done["access_token"].is_string(), "{done}");
    let login = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": name },
        "password": "opening-round",
    });
    s.call("POST", "/_matrix/client/v3/login", None, Some(&login)).expect(200);

    // A flow completed without any password is refused with a 400, not a 500.
    let name = unique("regnopw");
    let challenge = s.call("POST", REGISTER, None, Some(&json!({ "username": name }))).expect(401);
    let session = challenge["session"].as_str().expect("session");
    let r = s.call(
        "POST",
        REGISTER,
        None,
        Some(&json!({ "username": name, "auth": { "type": "m.login.dummy", "session": session } })),
    );
    r.expect_err(400, "M_MISSING_PARAM");

    // A taken name is refused before any round trip of authentication.
    let taken = s.register("regtaken");
    let r = s.call("POST", REGISTER, None, Some(&json!({ "username": taken.localpart, "password": "x" })));
    r.expect_err(400, "M_USER_IN_USE");
}

fn leave(u: &User<'_>, room: &str) {
    u.post(&format!("/_matrix/client/v3/rooms/{}/leave", enc(room)), json!({})).expect(200);
}

fn left_room<'a>(sync: &'a Value, room: &str) -> Option<&'a Value> {
    sync["rooms"]["leave"].get(room)
}

fn leave_event_of<'a>(left: &'a Value, user: &str) -> Option<&'a Value> {
    left["timeline"]["events"]
        .as_array()?
        .iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == user && e["content"]["membership"] == "leave")
}

/// The inviter, the room's only member, leaves; the invitee can still decline.
#[test]
fn an_invite_to_an_emptied_room_can_be_declined() {
    let s = server();
    let alice = s.register("declA");
    let bob = s.register("declB");
    let room = alice.create_room(json!({ "preset": "private_chat", "name": "emptied" }));
    alice.invite(&room, &bob.user_id);
    let (_, since) = bob.sync_until(None, Duration::from_secs(20), |b| b["rooms"]["invite"].get(&room).map(drop));
    leave(&alice, &room);
    leave(&bob, &room);
    let (left, _) = bob.sync_until(Some(&since), Duration::from_secs(20), |b| left_room(b, &room).cloned());
    assert!(leave_event_of(&left, &bob.user_id).is_some(), "the declined invite's leave: {left}");
    // The invite is gone from an initial sync too.
    let fresh = bob.sync(None, "");
    assert!(fresh["rooms"]["invite"].get(&room).is_none(), "{fresh}");
}

/// The SDK declines with `/leave` then `/forget`: the next sync still carries the leave.
#[test]
fn a_leave_forgotten_at_once_still_reaches_the_next_sync() {
    let s = server();
    let alice = s.register("forgA");
    let bob = s.register("forgB");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    alice.send_text(&room, "before the leave");
    let (_, since) = bob.sync_until(None, Duration::from_secs(20), |b| b["rooms"]["join"].get(&room).map(drop));
    leave(&bob, &room);
    bob.post(&format!("/_matrix/client/v3/rooms/{}/forget", enc(&room)), json!({})).expect(200);
    let (left, _) = bob.sync_until(Some(&since), Duration::from_secs(20), |b| left_room(b, &room).cloned());
    assert!(leave_event_of(&left, &bob.user_id).is_some(), "{left}");
    assert!(left["timeline"]["prev_batch"].is_string(), "a token to paginate the history: {left}");
    // Forgotten: not offered again in an initial sync that includes left rooms.
    let filter = json!({ "room": { "include_leave": true } }).to_string();
    let fresh = bob.sync(None, &format!("&filter={}", enc(&filter)));
    assert!(fresh["rooms"]["leave"].get(&room).is_none(), "{fresh}");
}

/// Deleting an alias takes it out of the room's canonical alias event too.
#[test]
fn a_deleted_alias_leaves_the_canonical_alias_event() {
    let s = server();
    let alice = s.register("aliasdel");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    let main = format!("#{}:{}", unique("main"), alice.server_name());
    let alt = format!("#{}:{}", unique("alt"), alice.server_name());
    for alias in [&main, &alt] {
        alice.put(&format!("/_matrix/client/v3/directory/room/{}", enc(alias)), json!({ "room_id": room })).expect(200);
    }
    alice.send_state(&room, "m.room.canonical_alias", "", json!({ "alias": main, "alt_aliases": [alt] })).expect(200);

    alice.delete(&format!("/_matrix/client/v3/directory/room/{}", enc(&alt)), None).expect(200);
    let content = alice.state(&room, "m.room.canonical_alias", "").expect(200);
    assert_eq!(content["alias"], main.as_str(), "{content}");
    let alts = content["alt_aliases"].as_array().cloned().unwrap_or_default();
    assert!(!alts.contains(&json!(alt)), "the deleted alt alias is still advertised: {content}");

    alice.delete(&format!("/_matrix/client/v3/directory/room/{}", enc(&main)), None).expect(200);
    let content = alice.state(&room, "m.room.canonical_alias", "").expect(200);
    assert!(
        content.get("alias").is_none_or(|a| a != main.as_str()),
        "the deleted alias is still advertised: {content}"
    );
}

fn summary(s: &tandem_conformance::Server, token: Option<&str>, room: &str) -> tandem_conformance::Response {
    s.call("GET", &format!("/_matrix/client/v1/room_summary/{}", enc(room)), token, None)
}

/// A world-readable room previewed by someone not in it, and the room summary of spec v1.15.
#[test]
fn rooms_can_be_previewed_before_joining() {
    let s = server();
    let alice = s.register("prevA");
    let carol = s.register("prevC");
    let open = alice.create_room(json!({
        "preset": "public_chat",
        "name": "Open house",
        "topic": "come in",
        "initial_state": [{ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "world_readable" } }],
    }));
    let members = carol.get(&format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&open))).expect(200);
    assert!(members["joined"].get(&alice.user_id).is_some(), "{members}");

    let seen = summary(s, Some(&carol.token), &open).expect(200);
    assert_eq!(seen["room_id"], open.as_str(), "{seen}");
    assert_eq!(seen["name"], "Open house", "{seen}");
    assert_eq!(seen["topic"], "come in", "{seen}");
    assert_eq!(seen["num_joined_members"], 1, "{seen}");
    assert_eq!(seen["world_readable"], true, "{seen}");
    assert_eq!(seen["join_rule"], "public", "{seen}");
    assert!(seen["room_version"].is_string(), "{seen}");
    assert!(seen["guest_can_join"].is_boolean(), "{seen}");
    assert_eq!(seen["membership"], "leave", "{seen}");
    let mine = summary(s, Some(&alice.token), &open).expect(200);
    assert_eq!(mine["membership"], "join", "{mine}");
    // Unauthenticated: an open room is described, without a membership.
    let anonymous = summary(s, None, &open).expect(200);
    assert_eq!(anonymous["room_id"], open.as_str(), "{anonymous}");
    assert!(anonymous.get("membership").is_none(), "{anonymous}");

    // A private room: nothing for outsiders, the summary for the invited.
    let private = alice.create_room(json!({ "preset": "private_chat", "name": "Back office" }));
    summary(s, Some(&carol.token), &private).expect_err(404, "M_NOT_FOUND");
    summary(s, None, &private).expect_err(404, "M_NOT_FOUND");
    carol.get(&format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&private))).expect_err(403, "M_FORBIDDEN");
    alice.invite(&private, &carol.user_id);
    let invited = summary(s, Some(&carol.token), &private).expect(200);
    assert_eq!(invited["membership"], "invite", "{invited}");
    assert_eq!(invited["name"], "Back office", "{invited}");
    // By alias as well.
    let alias = format!("#{}:{}", unique("prev"), alice.server_name());
    alice.put(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias)), json!({ "room_id": open })).expect(200);
    assert_eq!(summary(s, Some(&carol.token), &alias).expect(200)["room_id"], open.as_str());
}

fn membership_of(events: &[Value], body: &str) -> Option<String> {
    events
        .iter()
        .find(|e| e["content"]["body"] == body)
        .map(|e| e["unsigned"]["membership"].as_str().unwrap_or("(none)").to_owned())
}

/// MSC4115: each event says what the reader's membership was at it.
#[test]
fn events_carry_the_readers_membership() {
    let s = server();
    let alice = s.register("memA");
    let bob = s.register("memB");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    let before = alice.send_text(&room, "before bob");
    bob.join(&room);
    let after = alice.send_text(&room, "after bob");

    let page = bob.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=20", enc(&room))).expect(200);
    let events = page["chunk"].as_array().cloned().unwrap_or_default();
    assert_eq!(membership_of(&events, "before bob").as_deref(), Some("leave"), "{page}");
    assert_eq!(membership_of(&events, "after bob").as_deref(), Some("join"), "{page}");
    let own_join = events.iter().find(|e| e["type"] == "m.room.member" && e["state_key"] == bob.user_id.as_str());
    assert_eq!(own_join.map(|e| &e["unsigned"]["membership"]), Some(&json!("join")), "{page}");
    // Alice was there all along.
    let page = alice.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=20", enc(&room))).expect(200);
    let events = page["chunk"].as_array().cloned().unwrap_or_default();
    assert_eq!(membership_of(&events, "before bob").as_deref(), Some("join"), "{page}");

    let one = bob.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&before))).expect(200);
    assert_eq!(one["unsigned"]["membership"], "leave", "{one}");
    let context = bob.get(&format!("/_matrix/client/v3/rooms/{}/context/{}", enc(&room), enc(&after))).expect(200);
    assert_eq!(context["event"]["unsigned"]["membership"], "join", "{context}");
    let earlier = context["events_before"].as_array().cloned().unwrap_or_default();
    assert_eq!(membership_of(&earlier, "before bob").as_deref(), Some("leave"), "{context}");

    let (timeline, _) = bob.sync_until(None, Duration::from_secs(20), |b| {
        let events: Vec<Value> = User::timeline(b, &room).into_iter().cloned().collect();
        events.iter().any(|e| e["content"]["body"] == "after bob").then_some(events)
    });
    assert_eq!(membership_of(&timeline, "after bob").as_deref(), Some("join"), "{timeline:?}");
}

fn send_with_txn(u: &User<'_>, room: &str, kind: &str, txn: &str, body: &str) -> String {
    let path = format!("/_matrix/client/v3/rooms/{}/send/{kind}/{txn}", enc(room));
    u.put(&path, json!({ "msgtype": "m.text", "body": body })).expect(200)["event_id"].as_str().expect("id").to_owned()
}

/// A transaction id is scoped by the request path: the same id used in another room is another
/// message (and another redaction); the same request again is the same message. (Whether another
/// event type in the same room is another transaction is not asserted: the spec scopes by path,
/// but Synapse also deduplicates sends by room and transaction id alone.)
#[test]
fn transaction_ids_are_scoped_by_room() {
    let s = server();
    let alice = s.register("txnA");
    let one = alice.create_room(json!({ "preset": "private_chat" }));
    let two = alice.create_room(json!({ "preset": "private_chat" }));
    let txn = unique("same");
    let first = send_with_txn(&alice, &one, "m.room.message", &txn, "to room one");
    let again = send_with_txn(&alice, &one, "m.room.message", &txn, "to room one");
    assert_eq!(first, again, "a retried request is the same event");
    let second = send_with_txn(&alice, &two, "m.room.message", &txn, "to room two");
    assert_ne!(first, second, "the same txn id in another room must send another message");

    let page = alice.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=10", enc(&two))).expect(200);
    let bodies: Vec<&str> =
        page["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert!(bodies.contains(&"to room two"), "the second room's message was not sent: {page}");
    let (event, _) = alice.sync_until(None, Duration::from_secs(20), |b| {
        User::timeline(b, &two).into_iter().find(|e| e["event_id"] == second.as_str()).cloned()
    });
    assert_eq!(event["unsigned"]["transaction_id"], txn.as_str(), "{event}");

    // Redactions in two rooms with one transaction id: both happen.
    let redact_txn = unique("redact");
    let mut redactions = Vec::new();
    for (room, target) in [(&one, &first), (&two, &second)] {
        let path = format!("/_matrix/client/v3/rooms/{}/redact/{}/{redact_txn}", enc(room), enc(target));
        redactions.push(alice.put(&path, json!({ "reason": "scoped" })).expect(200)["event_id"].clone());
    }
    assert_ne!(redactions[0], redactions[1], "the second room's redaction was not made");
    let redacted = alice.get(&format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&two), enc(&second))).expect(200);
    assert!(redacted["content"].as_object().is_some_and(|c| c.is_empty()), "not redacted: {redacted}");
}

const SLIDING: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

fn sliding(u: &User<'_>, pos: Option<&str>, body: &Value) -> Value {
    let mut path = format!("{SLIDING}?timeout=0");
    if let Some(p) = pos {
        path.push_str(&format!("&pos={}", enc(p)));
    }
    u.post(&path, body.clone()).expect(200)
}

/// Reading a room clears its counts in simplified sliding sync, with the room itself. Synapse
/// 1.163 computes no counts in sliding sync (always 0; Element X counts on the client), so
/// there the second half cannot be observed; a Tandem started by the suite must count.
#[test]
fn a_read_receipt_clears_counts_in_sliding_sync() {
    let s = server();
    let alice = s.register("cntA");
    let bob = s.register("cntB");
    let room = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&room);
    let request = json!({
        "conn_id": unique("counts"),
        "lists": { "all": { "ranges": [[0, 9]], "timeline_limit": 1, "required_state": [] } },
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pos = sliding(&bob, None, &request)["pos"].as_str().expect("pos").to_owned();
    let last = alice.send_text(&room, "unread");
    // The message comes down with the room; /sync counts it as unread.
    let with_message = loop {
        let r = sliding(&bob, Some(&pos), &request);
        pos = r["pos"].as_str().expect("pos").to_owned();
        let room_now = &r["rooms"][&room];
        if room_now["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["event_id"] == last.as_str())) {
            break room_now.clone();
        }
        assert!(Instant::now() < deadline, "the message never came down: {r}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, _) = bob.sync_until(None, Duration::from_secs(20), |b| {
        (b["rooms"]["join"][&room]["unread_notifications"]["notification_count"] == 1).then_some(())
    });
    if with_message["notification_count"] != 1 {
        assert!(!s.is_tandem(), "Tandem must count the unread message in sliding sync: {with_message}");
        return;
    }

    bob.post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room), enc(&last)), json!({})).expect(200);
    loop {
        let r = sliding(&bob, Some(&pos), &request);
        pos = r["pos"].as_str().expect("pos").to_owned();
        if r["rooms"][&room]["notification_count"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the room never came down with its cleared count: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Element Web sets up cross-signing only when `/versions` advertises it.
#[test]
fn versions_advertise_cross_signing() {
    let versions = server().call("GET", "/_matrix/client/versions", None, None).expect(200);
    assert_eq!(versions["unstable_features"]["org.matrix.e2e_cross_signing"], true, "{versions}");
}

/// `.well-known/matrix/client`, where served, sends clients to a base URL that answers.
#[test]
fn well_known_points_at_a_working_client_api() {
    let s = server();
    let r = s.call("GET", "/.well-known/matrix/client", None, None);
    if r.status == 404 {
        // Optional in the spec (Synapse serves it only when configured to).
        return;
    }
    let body = r.expect(200);
    let base = body["m.homeserver"]["base_url"].as_str().expect("base_url");
    let addr = base.strip_prefix("http://").unwrap_or_else(|| panic!("not reachable here over plain HTTP: {base}"));
    let addr = addr.trim_end_matches('/');
    let versions = tandem_conformance::Server::external(addr, "").call("GET", "/_matrix/client/versions", None, None);
    assert_eq!(versions.status, 200, "{base} does not answer /versions");
}
