//! A seeded generator of random rooms: users of several servers joining, leaving, being
//! invited, kicked, banned and unbanned, knocking, power levels and join rules changing, in
//! forks that run concurrently and sometimes merge. Optionally ([`Room::stale_auth`]) some
//! events cite auth events from an older state of their fork or from another fork, as a
//! lagging or hostile server's events do.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

pub type State = HashMap<(String, String), String>;

pub struct Fork {
    pub state: State,
    pub heads: Vec<String>,
}

/// Decides whether an event is allowed in a state, and resolves states at merges.
pub trait Oracle {
    fn add(&mut self, event: &Value);
    fn allows(&mut self, event: &Value, state: &State) -> bool;
    fn resolve(&mut self, sets: &[State]) -> State;
}

pub struct Room {
    pub version: &'static str,
    pub room_id: String,
    pub events: Vec<Value>,
    pub by_id: HashMap<String, Value>,
    pub forks: Vec<Fork>,
    pub users: Vec<String>,
    /// How often an event's auth events are taken from a state seen earlier (in any fork)
    /// instead of its fork's current one, where that state has the key.
    pub stale_auth: f64,
    /// The states forks had, one per accepted event.
    seen: Vec<State>,
    /// Accepted events that cite an auth event their fork's state did not hold.
    pub stale_events: usize,
    /// Whether the event `make` built last cites such an auth event.
    made_stale: bool,
    rng: StdRng,
    ts: u64,
}

const KEY_CREATE: (&str, &str) = ("m.room.create", "");

/// Adds the content hash to `ev` and returns its event id: `$` and its reference hash.
pub fn reference_id(version: &str, ev: &mut Value) -> String {
    use ruma::CanonicalJsonObject;
    let mut obj: CanonicalJsonObject = serde_json::from_value(ev.clone()).unwrap();
    ruma::signatures::add_content_hash_to_event(&mut obj).unwrap();
    let rules = ruma::RoomVersionId::try_from(version).unwrap().rules().unwrap();
    let hash = ruma::signatures::reference_hash(&obj, &rules).unwrap();
    *ev = serde_json::to_value(&obj).unwrap();
    format!("${hash}")
}

impl Room {
    /// A room of `version` with a creator, power levels, a public join rule and a few
    /// members, then `forks` concurrent forks.
    pub fn new(version: &'static str, seed: u64, servers: usize, users_per_server: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let users: Vec<String> =
            (0..servers).flat_map(|s| (0..users_per_server).map(move |u| format!("@u{u}:s{s}.example"))).collect();
        let tag = rng.random_range(0..1_000_000);
        Room {
            version,
            room_id: String::new(),
            events: Vec::new(),
            by_id: HashMap::new(),
            forks: Vec::new(),
            users,
            stale_auth: 0.0,
            seen: Vec::new(),
            stale_events: 0,
            made_stale: false,
            rng,
            // Timestamps differ between rooms, and so do event ids.
            ts: 1_000_000 + tag * 1_000,
        }
    }

    fn v12(&self) -> bool {
        self.version == "12"
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Builds the event with auth events chosen from `state`, prev events `prevs`.
    pub fn make(
        &mut self,
        state: &State,
        prevs: &[String],
        kind: &str,
        sender: &str,
        state_key: &str,
        content: Value,
    ) -> Value {
        let n = self.events.len();
        // Equal timestamps now and then, so the event id tie-break is exercised.
        self.ts += self.rng.random_range(0..3);
        let stale = if kind != "m.room.create" && !self.seen.is_empty() && self.rng.random_bool(self.stale_auth) {
            self.seen.choose(&mut self.rng).cloned()
        } else {
            None
        };
        let mut auth: Vec<String> = Vec::new();
        let mut made_stale = false;
        let mut add = |t: &str, sk: &str| {
            let key = (t.to_owned(), sk.to_owned());
            let chosen = stale.as_ref().and_then(|s| s.get(&key)).or_else(|| state.get(&key));
            made_stale |= chosen.is_some() && chosen != state.get(&key);
            if let Some(e) = chosen
                && !auth.contains(e)
            {
                auth.push(e.clone());
            }
        };
        if kind != "m.room.create" {
            if !self.v12() {
                add(KEY_CREATE.0, KEY_CREATE.1);
            }
            add("m.room.power_levels", "");
            add("m.room.member", sender);
            if kind == "m.room.member" {
                add("m.room.member", state_key);
                let m = content["membership"].as_str().unwrap_or("");
                if matches!(m, "join" | "invite" | "knock") {
                    add("m.room.join_rules", "");
                }
                if m == "join"
                    && let Some(via) = content["join_authorised_via_users_server"].as_str()
                {
                    add("m.room.member", via);
                }
            }
        }
        self.made_stale = made_stale;
        let mut ev = json!({
            "type": kind,
            "sender": sender,
            "state_key": state_key,
            "content": content,
            "origin_server_ts": self.ts,
            "depth": n,
            "prev_events": prevs,
            "auth_events": auth,
        });
        if kind == "m.room.create" {
            // v12: the create event has no room id; the room id is derived from its id.
            self.room_id = if self.v12() { String::new() } else { "!room:s0.example".into() };
        }
        if !self.room_id.is_empty() {
            ev["room_id"] = json!(self.room_id);
        }
        let id = reference_id(self.version, &mut ev);
        if kind == "m.room.create" && self.v12() {
            self.room_id = format!("!{}", &id[1..]);
        }
        ev["event_id"] = json!(id);
        ev
    }

    fn record(&mut self, ev: &Value, oracle: &mut impl Oracle) {
        self.by_id.insert(ev["event_id"].as_str().unwrap().to_owned(), ev.clone());
        self.events.push(ev.clone());
        oracle.add(ev);
    }

    /// Sends an event on a linear state: kept (and applied) only if the oracle allows it.
    fn send(
        &mut self,
        state: &mut State,
        head: &mut Vec<String>,
        ev_parts: (String, String, String, Value),
        oracle: &mut impl Oracle,
    ) -> bool {
        let (kind, sender, sk, content) = ev_parts;
        let ev = self.make(state, head, &kind, &sender, &sk, content);
        if kind != "m.room.create" && !oracle.allows(&ev, state) {
            return false;
        }
        self.record(&ev, oracle);
        let id = ev["event_id"].as_str().unwrap().to_owned();
        state.insert((kind, sk), id.clone());
        *head = vec![id];
        if self.stale_auth > 0.0 {
            self.seen.push(state.clone());
            self.stale_events += self.made_stale as usize;
        }
        true
    }

    /// The common start of the room.
    pub fn bootstrap(&mut self, oracle: &mut impl Oracle, forks: usize) {
        let alice = self.users[0].clone();
        let mut state = State::new();
        let mut head = Vec::new();
        let mut create = json!({"room_version": self.version});
        if self.version.parse::<u32>().unwrap() <= 10 {
            create["creator"] = json!(alice);
        }
        let extra_creator = self.v12() && self.rng.random_bool(0.3);
        if extra_creator {
            create["additional_creators"] = json!([self.users[1].clone()]);
        }
        let create_ev = self.make(&state, &head, "m.room.create", &alice, "", create);
        self.record(&create_ev, oracle);
        let cid = create_ev["event_id"].as_str().unwrap().to_owned();
        state.insert(("m.room.create".into(), "".into()), cid.clone());
        head = vec![cid];
        self.send(
            &mut state,
            &mut head,
            ("m.room.member".into(), alice.clone(), alice.clone(), json!({"membership": "join"})),
            oracle,
        );
        let mut users = serde_json::Map::new();
        if !self.v12() {
            users.insert(alice.clone(), json!(100));
        }
        users.insert(self.users[2 % self.users.len()].clone(), json!(50));
        let pl = json!({"users": users, "state_default": 50, "events_default": 0, "ban": 50, "kick": 50, "invite": 0});
        self.send(&mut state, &mut head, ("m.room.power_levels".into(), alice.clone(), "".into(), pl), oracle);
        self.send(
            &mut state,
            &mut head,
            ("m.room.join_rules".into(), alice.clone(), "".into(), json!({"join_rule": "public"})),
            oracle,
        );
        for u in self.users.clone().iter().skip(1) {
            if self.rng.random_bool(0.7) {
                self.send(
                    &mut state,
                    &mut head,
                    ("m.room.member".into(), u.clone(), u.clone(), json!({"membership": "join"})),
                    oracle,
                );
            }
        }
        self.forks = (0..forks).map(|_| Fork { state: state.clone(), heads: head.clone() }).collect();
    }

    fn membership(state: &State, by_id: &HashMap<String, Value>, user: &str) -> String {
        state
            .get(&("m.room.member".to_owned(), user.to_owned()))
            .and_then(|id| by_id[id]["content"]["membership"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "leave".into())
    }

    /// One random action on fork `f`: an event that may or may not be allowed there.
    fn random_action(&mut self, f: usize) -> (String, String, String, Value) {
        let state = &self.forks[f].state;
        let joined: Vec<String> =
            self.users.iter().filter(|u| Self::membership(state, &self.by_id, u) == "join").cloned().collect();
        let rng = &mut self.rng;
        let any = self.users.choose(rng).unwrap().clone();
        let actor =
            if !joined.is_empty() && rng.random_bool(0.85) { joined.choose(rng).unwrap().clone() } else { any.clone() };
        let target = self.users.choose(rng).unwrap().clone();
        let knocking = self.version.parse::<u32>().unwrap() >= 7;
        let member = |m: &str, sender: &str, target: &str| {
            ("m.room.member".to_owned(), sender.to_owned(), target.to_owned(), json!({"membership": m}))
        };
        match rng.random_range(0..100) {
            0..=14 => member("join", &any, &any),
            15..=22 => member("leave", &actor, &actor),
            23..=32 => member("invite", &actor, &target),
            33..=40 => member("leave", &actor, &target),
            41..=48 => member("ban", &actor, &target),
            49..=52 if knocking => member("knock", &any, &any),
            53..=56 => {
                let via = joined.choose(rng).cloned().unwrap_or(actor.clone());
                (
                    "m.room.member".into(),
                    any.clone(),
                    any,
                    json!({"membership": "join", "join_authorised_via_users_server": via}),
                )
            }
            57..=70 => {
                let mut pl = self.current_pl(f);
                let rng = &mut self.rng;
                match rng.random_range(0..4) {
                    0 | 1 => {
                        let level = *[0, 10, 50, 75, 100].choose(rng).unwrap();
                        if !(self.version == "12" && target == self.users[0]) {
                            pl["users"][target.as_str()] = json!(level);
                        }
                    }
                    2 => {
                        let key = *["ban", "kick", "invite", "state_default", "events_default", "users_default"]
                            .choose(rng)
                            .unwrap();
                        pl[key] = json!(*[0, 25, 50, 100].choose(rng).unwrap());
                    }
                    _ => {
                        let key = *["m.room.topic", "m.room.name", "m.room.power_levels", "m.room.join_rules"]
                            .choose(rng)
                            .unwrap();
                        pl["events"][key] = json!(*[0, 50, 100].choose(rng).unwrap());
                    }
                }
                ("m.room.power_levels".into(), actor, "".into(), pl)
            }
            71..=80 => {
                let mut rules = vec!["public", "invite"];
                if knocking {
                    rules.push("knock");
                }
                if self.version.parse::<u32>().unwrap() >= 8 {
                    rules.push("restricted");
                }
                if self.version.parse::<u32>().unwrap() >= 10 {
                    rules.push("knock_restricted");
                }
                let rule = *rules.choose(rng).unwrap();
                let mut content = json!({"join_rule": rule});
                if rule.contains("restricted") {
                    content["allow"] = json!([{"type": "m.room_membership", "room_id": "!space:s0.example"}]);
                }
                ("m.room.join_rules".into(), actor, "".into(), content)
            }
            81..=90 => {
                ("m.room.topic".into(), actor, "".into(), json!({"topic": format!("t{}", rng.random_range(0..100))}))
            }
            _ => ("m.room.name".into(), actor, "".into(), json!({"name": format!("n{}", rng.random_range(0..100))})),
        }
    }

    fn current_pl(&self, f: usize) -> Value {
        let id = self.forks[f].state.get(&("m.room.power_levels".to_owned(), String::new()));
        id.map(|id| self.by_id[id]["content"].clone()).unwrap_or_else(|| json!({}))
    }

    /// Runs `steps` random steps: mostly events on a random fork, sometimes a merge of two
    /// forks (resolved by the oracle, then an event citing both heads).
    pub fn run(&mut self, oracle: &mut impl Oracle, steps: usize, mut on_merge: impl FnMut(&Room, &[State])) {
        for _ in 0..steps {
            let nf = self.forks.len();
            let f = self.rng.random_range(0..nf);
            if nf > 1 && self.rng.random_bool(0.08) {
                let mut g = self.rng.random_range(0..nf);
                if g == f {
                    g = (g + 1) % nf;
                }
                let sets = vec![self.forks[f].state.clone(), self.forks[g].state.clone()];
                on_merge(self, &sets);
                let mut merged = oracle.resolve(&sets);
                let mut heads: Vec<String> = self.forks[f].heads.clone();
                heads.extend(self.forks[g].heads.clone());
                heads.sort();
                heads.dedup();
                let action =
                    ("m.room.topic".to_owned(), self.users[0].clone(), String::new(), json!({"topic": "merged"}));
                if self.send(&mut merged, &mut heads, action, oracle) {
                    self.forks[f] = Fork { state: merged, heads };
                }
                continue;
            }
            let action = self.random_action(f);
            let mut state = std::mem::take(&mut self.forks[f].state);
            let mut heads = std::mem::take(&mut self.forks[f].heads);
            self.send(&mut state, &mut heads, action, oracle);
            self.forks[f] = Fork { state, heads };
        }
    }

    pub fn fork_states(&self) -> Vec<State> {
        self.forks.iter().map(|f| f.state.clone()).collect()
    }
}
