//! The stage of an attack: a victim server (Tandem, or Synapse as the oracle) with a room
//! made by its user alice, an honest local member bob, and a [`Hostile`] server whose user
//! mallory joined the room over federation. After an attack a test checks that the room's
//! state and alice's membership are as they were and that bob's new message still reaches
//! alice within the deadline.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{User, enc};
use crate::federation::{Kind, Peer};
use crate::hostile::{Hostile, now_ms};
use crate::{eventually, unique};

pub const WAIT: Duration = Duration::from_secs(60);

/// The room version the scene's rooms use (the redaction rules `fedclient` implements).
pub const VERSION: &str = "11";

pub struct Scene {
    pub victim: Peer,
    pub hostile: Hostile,
    pub room: String,
    pub mallory: String,
    /// The ids of the room's create, power levels and join rules events, and mallory's join.
    pub create: String,
    pub power_levels: String,
    pub join_rules: String,
    pub mallory_join: String,
    /// alice's and bob's (user id, access token, device id).
    alice: (String, String, String),
    bob: (String, String, String),
}

fn keep(u: &User<'_>) -> (String, String, String) {
    (u.user_id.clone(), u.token.clone(), u.device_id.clone())
}

impl Scene {
    /// A victim started normally (a Synapse as the oracle).
    pub fn new() -> Scene {
        Self::on(Peer::start(Kind::Tandem, None))
    }

    /// The scene on a given victim.
    pub fn on(victim: Peer) -> Scene {
        let hostile = Hostile::start();
        let alice = victim.server.register_as("alice", false);
        let bob = victim.server.register_as("bob", false);
        let room = alice.create_room(json!({ "preset": "public_chat", "room_version": VERSION, "name": "target" }));
        bob.join(&room);
        alice.send_state(&room, "m.room.topic", "", json!({ "topic": "the agreed topic" })).expect(200);
        let mallory = hostile.user("mallory");
        let mallory_join = join(&hostile, &victim.name, &room, &mallory);
        let state = state_of(&alice, &room);
        let (alice, bob) = (keep(&alice), keep(&bob));
        let id = |t: &str| state.iter().find(|(tt, k, _)| tt == t && k.is_empty()).map(|(_, _, i)| i.clone());
        Scene {
            create: id("m.room.create").expect("create"),
            power_levels: id("m.room.power_levels").expect("power levels"),
            join_rules: id("m.room.join_rules").expect("join rules"),
            mallory_join,
            victim,
            hostile,
            room,
            mallory,
            alice,
            bob,
        }
    }

    fn user(&self, (user_id, token, device_id): &(String, String, String)) -> User<'_> {
        let localpart = user_id.trim_start_matches('@').split(':').next().unwrap_or_default().to_owned();
        User {
            server: &self.victim.server,
            user_id: user_id.clone(),
            password: format!("pw-{localpart}"),
            localpart,
            token: token.clone(),
            device_id: device_id.clone(),
        }
    }

    pub fn alice(&self) -> User<'_> {
        self.user(&self.alice)
    }

    pub fn bob(&self) -> User<'_> {
        self.user(&self.bob)
    }

    /// The room's state as alice sees it: (type, state key, event id).
    pub fn state(&self) -> BTreeSet<(String, String, String)> {
        state_of(&self.alice(), &self.room)
    }

    /// The newest event of the room as alice sees it. (A page may come back empty with a
    /// token to go on, as Synapse's does when it filtered what it read.)
    pub fn latest(&self) -> String {
        let alice = self.alice();
        let mut from = String::new();
        for _ in 0..10 {
            let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=10{from}", enc(&self.room));
            let page = alice.get(&path).expect(200);
            if let Some(id) = page["chunk"][0]["event_id"].as_str() {
                return id.to_owned();
            }
            let Some(end) = page["end"].as_str() else { break };
            from = format!("&from={}", enc(end));
        }
        panic!("no event in the room");
    }

    /// An event of the room from the hostile server, built on the newest event: content hash,
    /// signature and id. `auth` defaults to create, power levels and the sender's membership.
    pub fn event(&self, kind: &str, state_key: Option<&str>, sender: &str, content: Value) -> (String, Value) {
        let mut event = json!({
            "type": kind, "room_id": self.room, "sender": sender, "content": content,
            "origin_server_ts": now_ms(), "depth": 100, "prev_events": [self.latest()],
            "auth_events": [self.create, self.power_levels, self.mallory_join],
        });
        if let Some(k) = state_key {
            event["state_key"] = k.into();
        }
        self.hostile.identity.pdu(event)
    }

    /// A message from mallory.
    pub fn message(&self, body: &str) -> (String, Value) {
        self.event("m.room.message", None, &self.mallory, json!({ "msgtype": "m.text", "body": body }))
    }

    /// Sends PDUs from the hostile server and waits until a well-formed message sent after
    /// them is in the room (servers may take a transaction's PDUs after answering it).
    pub fn deliver(&self, pdus: Vec<Value>) {
        let r = self.hostile.send(&self.victim.name, &unique("txn"), pdus, Vec::new());
        assert_eq!(r.status, 200, "the transaction itself was refused: {}", r.body);
        self.settle();
    }

    /// Delivers an event the victim must refuse ([`Scene::deliver`]) and checks that alice
    /// cannot read it; `what` says what went wrong if she can.
    pub fn refused(&self, (event_id, pdu): (String, Value), what: &str) {
        self.deliver(vec![pdu]);
        assert!(!self.visible(&event_id), "{what}: {event_id}");
    }

    /// Waits until a well-formed message from mallory, sent now, is in the room.
    pub fn settle(&self) {
        let label = unique("sentinel");
        let (id, pdu) = self.message(&label);
        let r = self.hostile.send(&self.victim.name, &unique("txn"), vec![pdu], Vec::new());
        assert_eq!(r.status, 200, "{}", r.body);
        eventually(WAIT, "the hostile server's well-formed message", || self.visible(&id).then_some(()));
    }

    /// Whether alice can read `event_id`.
    pub fn visible(&self, event_id: &str) -> bool {
        let path = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&self.room), enc(event_id));
        self.alice().get(&path).status == 200
    }

    /// The event as alice reads it.
    pub fn read(&self, event_id: &str) -> Value {
        let path = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&self.room), enc(event_id));
        self.alice().get(&path).expect(200)
    }

    /// The scene's invariants after an attack: state as `before`, alice joined, and a new
    /// message of bob's reaching alice.
    pub fn unharmed(&self, before: &BTreeSet<(String, String, String)>) {
        let after = self.state();
        let changed: Vec<_> = before.symmetric_difference(&after).collect();
        // mallory's own sentinel messages change no state; anything else that did is a failure.
        assert!(changed.is_empty(), "the attack changed the room's state: {changed:?}");
        let alice = self.alice();
        let membership = alice.state(&self.room, "m.room.member", &alice.user_id).expect(200);
        assert_eq!(membership["membership"], "join", "alice's membership changed: {membership}");
        let body = unique("honest");
        let id = self.bob().send_text(&self.room, &body);
        eventually(WAIT, "bob's message at alice", || {
            (self.read(&id)["content"]["body"] == body.as_str()).then_some(())
        });
    }
}

impl Default for Scene {
    fn default() -> Self {
        Self::new()
    }
}

/// Joins `user` of the hostile server to `room` on `victim`: `make_join`, signed, `send_join`.
/// Returns the join's event id.
pub fn join(hostile: &Hostile, victim: &str, room: &str, user: &str) -> String {
    let path = format!("/_matrix/federation/v1/make_join/{}/{}?ver={VERSION}", enc(room), enc(user));
    let template = hostile.request(victim, "GET", &path, None).expect(200);
    let mut event = template["event"].clone();
    event["origin_server_ts"] = now_ms().into();
    let (id, pdu) = hostile.identity.pdu(event);
    let path = format!("/_matrix/federation/v2/send_join/{}/{}", enc(room), enc(&id));
    hostile.request(victim, "PUT", &path, Some(&pdu)).expect(200);
    id
}

/// A room's state as `user` sees it: (type, state key, event id).
pub fn state_of(user: &User<'_>, room: &str) -> BTreeSet<(String, String, String)> {
    let state = user.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room))).expect(200);
    state
        .as_array()
        .expect("state")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["state_key"].as_str().unwrap_or_default().to_owned(),
                e["event_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
