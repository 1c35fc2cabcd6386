//! Pushers and delivery to push gateways (Push Gateway API), against a gateway that is a
//! process of its own (`push_gateway`) and records what it receives.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_conformance::push_gateway::Gateway;
use tandem_conformance::server::LoopbackServer;
use tandem_conformance::{User, eventually, unique};

const WAIT: Duration = Duration::from_secs(30);

fn pusher(gateway: &Gateway, pushkey: &str, format: Option<&str>) -> Value {
    let mut data = json!({ "url": gateway.url(), "app_secret": "kept" });
    if let Some(f) = format {
        data["format"] = f.into();
    }
    json!({
        "kind": "http",
        "app_id": "org.example.phone",
        "app_display_name": "Phone",
        "device_display_name": "Bob's phone",
        "pushkey": pushkey,
        "lang": "en",
        "data": data,
    })
}

fn set(user: &User, body: Value) -> tandem_conformance::Response {
    user.post("/_matrix/client/v3/pushers/set", body)
}

fn pushers(user: &User) -> Vec<Value> {
    user.get("/_matrix/client/v3/pushers").expect(200)["pushers"].as_array().cloned().unwrap_or_default()
}

/// The accepted notification about `event_id`, once the gateway has it.
fn notification_of(gateway: &Gateway, event_id: &str) -> Value {
    eventually(WAIT, &format!("a push of {event_id}"), || {
        gateway.accepted().into_iter().find(|n| n["event_id"] == event_id)
    })
}

#[test]
fn pushers_are_set_replaced_and_removed() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    let bob = s.register("pushbob");
    let carol = s.register("pushcarol");
    let key = unique("key");
    set(&bob, pusher(&gateway, &key, None)).expect(200);
    let list = pushers(&bob);
    assert_eq!(list.len(), 1, "{list:?}");
    let p = &list[0];
    assert_eq!(p["pushkey"], key.as_str());
    assert_eq!(p["kind"], "http");
    assert_eq!(p["app_id"], "org.example.phone");
    assert_eq!(p["device_display_name"], "Bob's phone");
    assert_eq!(p["lang"], "en");
    assert_eq!(p["data"]["url"], gateway.url());

    // Set again under the same app id and pushkey: replaced, not added.
    let mut renamed = pusher(&gateway, &key, None);
    renamed["device_display_name"] = "Bob's new phone".into();
    set(&bob, renamed).expect(200);
    let list = pushers(&bob);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["device_display_name"], "Bob's new phone");

    // Another user taking the pushkey without `append` takes it from Bob; with `append`, both keep it.
    set(&carol, pusher(&gateway, &key, None)).expect(200);
    assert!(pushers(&bob).is_empty(), "{:?}", pushers(&bob));
    let mut appended = pusher(&gateway, &key, None);
    appended["append"] = true.into();
    set(&bob, appended).expect(200);
    assert_eq!(pushers(&bob).len(), 1);
    assert_eq!(pushers(&carol).len(), 1);

    // `kind: null` removes it.
    set(&bob, json!({ "app_id": "org.example.phone", "pushkey": key, "kind": null })).expect(200);
    assert!(pushers(&bob).is_empty());
    assert_eq!(pushers(&carol).len(), 1);
}

#[test]
fn bad_pushers_are_refused() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    let bob = s.register("badpusher");
    let mut no_data = pusher(&gateway, "k1", None);
    no_data.as_object_mut().unwrap().remove("data");
    set(&bob, no_data).expect_err(400, "M_MISSING_PARAM");
    let mut no_url = pusher(&gateway, "k2", None);
    no_url["data"] = json!({ "format": "event_id_only" });
    set(&bob, no_url).expect_err(400, "M_MISSING_PARAM");
    let mut wrong_path = pusher(&gateway, "k3", None);
    wrong_path["data"]["url"] = format!("http://{}/notify", gateway.addr).into();
    set(&bob, wrong_path).expect_err(400, "M_MISSING_PARAM");
    let mut email = pusher(&gateway, "bob@example.org", None);
    email["kind"] = "email".into();
    email["data"] = json!({});
    set(&bob, email).expect_err(400, "M_THREEPID_NOT_FOUND");
    let r = bob.post("/_matrix/client/v3/pushers/set", json!(["not", "an", "object"]));
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(pushers(&bob).is_empty(), "{:?}", pushers(&bob));
}

/// Alice writes to Bob in a direct chat (plain and encrypted) and mentions him in a group
/// room; Bob's phone gets each with its counts, then a badge of 0 once Bob has read.
#[test]
fn messages_and_mentions_reach_the_gateway_and_reading_clears_the_badge() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    let alice = s.register("pusha");
    let bob = s.register("pushb");
    let carol = s.register("pushc");
    let key = unique("phone");
    set(&bob, pusher(&gateway, &key, None)).expect(200);

    let dm = alice.create_room(json!({ "is_direct": true, "invite": [bob.user_id], "preset": "trusted_private_chat" }));
    bob.join(&dm);
    let first = alice.send_text(&dm, "lunch?");
    let n = notification_of(&gateway, &first);
    assert_eq!(n["room_id"], dm.as_str());
    assert_eq!(n["type"], "m.room.message");
    assert_eq!(n["sender"], alice.user_id.as_str());
    assert_eq!(n["content"]["body"], "lunch?");
    assert_eq!(n["prio"], "high", "a one-to-one message makes a sound: {n}");
    assert_eq!(n["counts"]["unread"], 1, "{n}");
    let device = &n["devices"][0];
    assert_eq!(device["pushkey"], key.as_str());
    assert_eq!(device["app_id"], "org.example.phone");
    assert_eq!(device["data"]["app_secret"], "kept");
    assert!(device["data"].get("url").is_none(), "the gateway's url is not sent to it: {device}");
    assert_eq!(device["tweaks"]["sound"], "default", "{device}");
    assert!(device["pushkey_ts"].as_u64().is_some(), "{device}");

    let secret = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.encrypted/{}", tandem_conformance::enc(&dm), unique("t")),
            json!({ "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "sender_key": "k", "device_id": "D", "session_id": "s" }),
        )
        .expect(200)["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n = notification_of(&gateway, &secret);
    assert_eq!(n["type"], "m.room.encrypted");
    assert_eq!(n["prio"], "high");

    let group = alice.create_room(json!({ "preset": "public_chat", "name": "Team" }));
    bob.join(&group);
    carol.join(&group);
    let plain = alice.send_text(&group, "good morning all");
    let mention = alice
        .put(
            &format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                tandem_conformance::enc(&group),
                unique("t")
            ),
            json!({ "msgtype": "m.text", "body": "Bob: the report?", "m.mentions": { "user_ids": [bob.user_id] } }),
        )
        .expect(200)["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n = notification_of(&gateway, &mention);
    assert_eq!(n["room_name"], "Team", "{n}");
    assert_eq!(n["devices"][0]["tweaks"]["highlight"], true, "{n}");
    assert_eq!(n["counts"]["unread"], 2, "two rooms have unread notifications: {n}");
    let plain_n = notification_of(&gateway, &plain);
    assert_eq!(plain_n["prio"], "low", "a group message makes no sound: {plain_n}");
    // Nobody is pushed their own messages.
    let carols = carol.send_text(&group, "on it");
    let bobs = bob.send_text(&group, "here it is");
    notification_of(&gateway, &carols);
    assert!(!gateway.accepted().iter().any(|n| n["event_id"] == bobs.as_str()), "Bob was pushed his own message");

    // The notifications list has the same, newest first, and the mention alone when asked.
    let list = bob.get("/_matrix/client/v3/notifications").expect(200);
    let ids: Vec<&str> =
        list["notifications"].as_array().unwrap().iter().filter_map(|n| n["event"]["event_id"].as_str()).collect();
    for id in [&first, &secret, &plain, &mention, &carols] {
        assert!(ids.contains(&id.as_str()), "{id} not in {ids:?}");
    }
    assert_eq!(ids[0], carols, "newest first: {ids:?}");
    let highlights = bob.get("/_matrix/client/v3/notifications?only=highlight").expect(200);
    let hids: Vec<&str> = highlights["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["event"]["event_id"].as_str())
        .collect();
    assert_eq!(hids, vec![mention.as_str()], "{highlights}");
    let entry = &highlights["notifications"][0];
    assert_eq!(entry["room_id"], group.as_str());
    assert_eq!(entry["read"], false);
    assert!(entry["actions"].as_array().is_some_and(|a| a.iter().any(|a| a == "notify")), "{entry}");

    // Bob reads both rooms: the gateway is told the badge is 0.
    for (room, last) in [(&dm, &secret), (&group, &bobs)] {
        bob.post(
            &format!(
                "/_matrix/client/v3/rooms/{}/receipt/m.read/{}",
                tandem_conformance::enc(room),
                tandem_conformance::enc(last)
            ),
            json!({}),
        )
        .expect(200);
    }
    eventually(WAIT, "a badge of 0 after reading", || {
        gateway.accepted().last().filter(|n| n["counts"]["unread"] == 0).cloned()
    });
    let read = bob.get("/_matrix/client/v3/notifications?only=highlight").expect(200);
    assert_eq!(read["notifications"][0]["read"], true, "{read}");
}

#[test]
fn event_id_only_pushers_get_ids_and_counts_only() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    let alice = s.register("idonlya");
    let bob = s.register("idonlyb");
    set(&bob, pusher(&gateway, &unique("k"), Some("event_id_only"))).expect(200);
    let room = alice.create_room(json!({ "is_direct": true, "invite": [bob.user_id] }));
    bob.join(&room);
    let id = alice.send_text(&room, "private words");
    let n = notification_of(&gateway, &id);
    assert_eq!(n["room_id"], room.as_str());
    assert_eq!(n["counts"]["unread"], 1);
    assert!(n.get("content").is_none() && n.get("sender").is_none(), "event_id_only leaks the event: {n}");
    assert!(n["devices"][0].get("tweaks").is_none(), "{n}");
}

#[test]
fn a_rejected_pushkey_removes_the_pusher() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    let alice = s.register("rejecta");
    let bob = s.register("rejectb");
    let key = unique("stale");
    set(&bob, pusher(&gateway, &key, None)).expect(200);
    let room = alice.create_room(json!({ "is_direct": true, "invite": [bob.user_id] }));
    eventually(WAIT, "the push of the invite", || {
        gateway.accepted().into_iter().find(|n| n["type"] == "m.room.member" && n["room_id"] == room.as_str())
    });
    bob.join(&room);
    gateway.reject(&[&key]);
    let id = alice.send_text(&room, "are you there?");
    eventually(WAIT, "the rejected pusher to be removed", || pushers(&bob).is_empty().then_some(()));
    assert!(gateway.received().iter().any(|r| r["body"]["notification"]["event_id"] == id.as_str()));
}

/// A hostile gateway names another user's pushkey as rejected: only the pusher whose push it
/// answered may be removed by it, so both pushers stay and the pushes go on.
#[test]
fn a_gateway_cannot_remove_pushers_it_was_not_sent() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    let alice = s.register("hostilegwa");
    let bob = s.register("hostilegwb");
    let carol = s.register("hostilegwc");
    let carols_key = unique("carol");
    set(&bob, pusher(&gateway, &unique("bob"), None)).expect(200);
    set(&carol, pusher(&gateway, &carols_key, None)).expect(200);
    gateway.claim_rejected(&[&carols_key, "someone-elses"]);
    let room = alice.create_room(json!({ "is_direct": true, "invite": [bob.user_id] }));
    bob.join(&room);
    let first = alice.send_text(&room, "one");
    notification_of(&gateway, &first);
    let second = alice.send_text(&room, "two");
    notification_of(&gateway, &second);
    assert_eq!(pushers(&bob).len(), 1, "bob's pusher was removed by an answer naming other pushkeys");
    assert_eq!(pushers(&carol).len(), 1, "carol's pusher was removed by an answer to a push for bob");
}

/// The gateway is down when a message arrives and the server crashes before it comes back:
/// the push is sent after the restart, once.
#[test]
fn pushes_survive_a_restart_and_are_sent_once() {
    let s = LoopbackServer::start();
    // Restarting an external server would cut off the tests running beside this one.
    if !matches!(s, LoopbackServer::Own(_)) {
        eprintln!("skipped: needs a server of its own to restart");
        return;
    }
    let gateway = Gateway::start();
    let alice = s.register("restarta");
    let bob = s.register("restartb");
    set(&bob, pusher(&gateway, &unique("k"), None)).expect(200);
    let room = alice.create_room(json!({ "is_direct": true, "invite": [bob.user_id] }));
    bob.join(&room);
    gateway.set_failing(true);
    let lost = alice.send_text(&room, "while the gateway is down");
    eventually(WAIT, "a failed attempt", || {
        gateway
            .received()
            .iter()
            .any(|r| r["status"] == 500 && r["body"]["notification"]["event_id"] == lost.as_str())
            .then_some(())
    });
    s.restart(true);
    gateway.set_failing(false);
    let after = alice.send_text(&room, "after the restart");
    notification_of(&gateway, &after);
    let sent: Vec<Value> = gateway.accepted().into_iter().filter(|n| n["event_id"] == lost.as_str()).collect();
    assert_eq!(sent.len(), 1, "the push from before the restart, accepted {} times", sent.len());
    let order: Vec<String> =
        gateway.accepted().iter().filter_map(|n| n["event_id"].as_str().map(str::to_owned)).collect();
    let (a, b) = (order.iter().position(|e| *e == lost), order.iter().position(|e| *e == after));
    assert!(a < b, "delivered out of order: {order:?}");
}
