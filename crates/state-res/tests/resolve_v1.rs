//! State resolution v1 (room version 1), by hand: ruma does not implement it, so these cases
//! follow the spec's algorithm step by step (and Synapse where the spec is silent).

use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tandem_state_res::{EventProvider, MemoryStore, RoomVersion, StateMap, resolve};

const ADMIN: &str = "@admin:a.example";
const MOD: &str = "@mod:b.example";
const USER: &str = "@user:b.example";

struct Room {
    store: MemoryStore,
    v: RoomVersion,
}

impl Room {
    fn new() -> Self {
        Room { store: MemoryStore::new(), v: RoomVersion::new("1").unwrap() }
    }

    /// Room version 1 format: ids with a domain, references as `[id, {hashes}]` pairs.
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, id: &str, kind: &str, sender: &str, sk: &str, content: Value, depth: u64, auth: &[&str]) {
        let refs: Vec<Value> = auth.iter().map(|a| json!([a, {"sha256": "x"}])).collect();
        let pdu = json!({"event_id": id, "room_id": "!r:a.example", "type": kind, "sender": sender, "state_key": sk,
            "content": content, "depth": depth, "origin_server_ts": depth, "prev_events": [], "auth_events": refs});
        self.store.insert_json(&self.v, id, &pdu).unwrap();
    }

    fn state(&self, ids: &[&str]) -> StateMap {
        StateMap::new(
            ids.iter()
                .map(|id| {
                    let ev = self.store.by_id(id).unwrap();
                    (self.store.state_key_nid(&ev.kind, ev.state_key().unwrap()).unwrap(), ev.nid)
                })
                .collect(),
        )
    }

    fn resolve(&self, sets: &[&[&str]]) -> Vec<String> {
        let sets: Vec<StateMap> = sets.iter().map(|s| self.state(s)).collect();
        let refs: Vec<&StateMap> = sets.iter().collect();
        let out = resolve(&self.v, &refs, None, &self.store).unwrap();
        let mut ids: Vec<String> = out.entries().iter().map(|e| self.store.event_id(e.1).unwrap().to_owned()).collect();
        ids.sort();
        ids
    }

    /// create, admin join, power levels (admin 100, mod 50), public join rule, mod and user join.
    fn bootstrap() -> Self {
        let mut r = Room::new();
        r.add("$create:a.example", "m.room.create", ADMIN, "", json!({"creator": ADMIN}), 1, &[]);
        r.add(
            "$join-admin:a.example",
            "m.room.member",
            ADMIN,
            ADMIN,
            json!({"membership": "join"}),
            2,
            &["$create:a.example"],
        );
        r.add(
            "$pl1:a.example",
            "m.room.power_levels",
            ADMIN,
            "",
            json!({"users": {ADMIN: 100, MOD: 50}}),
            3,
            &["$create:a.example", "$join-admin:a.example"],
        );
        r.add(
            "$jr:a.example",
            "m.room.join_rules",
            ADMIN,
            "",
            json!({"join_rule": "public"}),
            4,
            &["$create:a.example", "$join-admin:a.example", "$pl1:a.example"],
        );
        for (id, u) in [("$join-mod:b.example", MOD), ("$join-user:b.example", USER)] {
            r.add(
                id,
                "m.room.member",
                u,
                u,
                json!({"membership": "join"}),
                5,
                &["$create:a.example", "$pl1:a.example", "$jr:a.example"],
            );
        }
        r
    }
}

const BASE: [&str; 6] = [
    "$create:a.example",
    "$join-admin:a.example",
    "$pl1:a.example",
    "$jr:a.example",
    "$join-mod:b.example",
    "$join-user:b.example",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v: Vec<&str> =
        BASE.iter().copied().filter(|b| !extra.iter().any(|e| e.starts_with("$pl") && b.starts_with("$pl1"))).collect();
    v.extend_from_slice(extra);
    v
}

#[test]
fn later_power_levels_win_when_they_pass_auth_on_the_earlier() {
    let mut r = Room::bootstrap();
    let auth = ["$create:a.example", "$join-admin:a.example", "$pl1:a.example"];
    r.add("$pl2:a.example", "m.room.power_levels", ADMIN, "", json!({"users": {ADMIN: 100, MOD: 60}}), 6, &auth);
    r.add("$pl3:a.example", "m.room.power_levels", ADMIN, "", json!({"users": {ADMIN: 100, MOD: 70}}), 7, &auth);
    let got = r.resolve(&[&with(&["$pl2:a.example"]), &with(&["$pl3:a.example"])]);
    assert!(got.contains(&"$pl3:a.example".to_owned()), "{got:?}");
}

#[test]
fn power_levels_stop_at_the_first_that_fails_auth() {
    let mut r = Room::bootstrap();
    // Fork A (shallower): the admin demotes the moderator. Fork B (deeper): the moderator,
    // still at 50 there, changes the levels. On top of A the moderator's change fails.
    let auth = ["$create:a.example", "$join-admin:a.example", "$pl1:a.example"];
    r.add("$pl-demote:a.example", "m.room.power_levels", ADMIN, "", json!({"users": {ADMIN: 100}}), 6, &auth);
    r.add(
        "$pl-mod:b.example",
        "m.room.power_levels",
        MOD,
        "",
        json!({"users": {ADMIN: 100, MOD: 50}, "ban": 10}),
        7,
        &["$create:a.example", "$join-mod:b.example", "$pl1:a.example"],
    );
    let got = r.resolve(&[&with(&["$pl-demote:a.example"]), &with(&["$pl-mod:b.example"])]);
    assert!(got.contains(&"$pl-demote:a.example".to_owned()), "{got:?}");
    assert!(!got.contains(&"$pl-mod:b.example".to_owned()), "{got:?}");
}

#[test]
fn other_events_take_the_deepest_that_passes_auth() {
    let mut r = Room::bootstrap();
    let auth = ["$create:a.example", "$pl1:a.example", "$join-user:b.example"];
    r.add("$topic-a:b.example", "m.room.topic", USER, "", json!({"topic": "a"}), 6, &auth);
    r.add("$topic-b:b.example", "m.room.topic", USER, "", json!({"topic": "b"}), 7, &auth);
    // Topics need state_default (50): the user (0) passes in neither; Synapse then keeps the
    // shallowest.
    let got = r.resolve(&[&with(&["$topic-a:b.example"]), &with(&["$topic-b:b.example"])]);
    assert!(got.contains(&"$topic-a:b.example".to_owned()), "{got:?}");

    let auth = ["$create:a.example", "$pl1:a.example", "$join-mod:b.example"];
    r.add("$topic-c:b.example", "m.room.topic", MOD, "", json!({"topic": "c"}), 8, &auth);
    r.add("$topic-d:b.example", "m.room.topic", MOD, "", json!({"topic": "d"}), 9, &auth);
    let got = r.resolve(&[&with(&["$topic-c:b.example"]), &with(&["$topic-d:b.example"])]);
    assert!(got.contains(&"$topic-d:b.example".to_owned()), "{got:?}");
    // The deepest one fails (the user cannot set topics), the next deepest passes.
    r.add(
        "$topic-e:b.example",
        "m.room.topic",
        USER,
        "",
        json!({"topic": "e"}),
        10,
        &["$create:a.example", "$pl1:a.example", "$join-user:b.example"],
    );
    let got = r.resolve(&[&with(&["$topic-c:b.example"]), &with(&["$topic-e:b.example"])]);
    assert!(got.contains(&"$topic-c:b.example".to_owned()), "{got:?}");
}

#[test]
fn equal_depths_order_by_sha1_of_the_event_id() {
    let mut r = Room::bootstrap();
    let auth = ["$create:a.example", "$pl1:a.example", "$join-mod:b.example"];
    let (x, y) = ("$topic-x:b.example", "$topic-y:b.example");
    r.add(x, "m.room.topic", MOD, "", json!({"topic": "x"}), 6, &auth);
    r.add(y, "m.room.topic", MOD, "", json!({"topic": "y"}), 6, &auth);
    // Both pass: the first in (depth descending, sha1 ascending) order wins.
    let lowest = if Sha1::digest(x.as_bytes()) < Sha1::digest(y.as_bytes()) { x } else { y };
    let got = r.resolve(&[&with(&[x]), &with(&[y])]);
    assert!(got.contains(&lowest.to_owned()), "{got:?} should hold {lowest}");
}

#[test]
fn a_key_only_some_sets_hold_is_not_conflicted() {
    let mut r = Room::bootstrap();
    r.add(
        "$name:b.example",
        "m.room.name",
        USER,
        "",
        json!({"name": "n"}),
        6,
        &["$create:a.example", "$pl1:a.example", "$join-user:b.example"],
    );
    // The user may not set the name, but an unconflicted entry is kept as it is.
    let got = r.resolve(&[&with(&["$name:b.example"]), &BASE]);
    assert!(got.contains(&"$name:b.example".to_owned()), "{got:?}");
    assert!(r.store.event(r.store.event_nid("$name:b.example").unwrap()).is_some());
}
