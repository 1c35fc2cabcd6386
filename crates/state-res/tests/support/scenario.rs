//! Large synthetic rooms for the benchmark: many members joined on one line of history, then
//! forks that each kick, ban and admit members and change power levels.

use std::collections::HashMap;

use serde_json::{Value, json};

pub type State = HashMap<(String, String), String>;

pub struct Scenario {
    pub version: &'static str,
    pub events: Vec<Value>,
    pub forks: Vec<State>,
}

struct Builder {
    version: &'static str,
    room_id: String,
    events: Vec<Value>,
    contents: HashMap<String, Value>,
    ts: u64,
}

impl Builder {
    fn send(&mut self, state: &mut State, head: &mut String, kind: &str, sender: &str, sk: &str, content: Value) {
        let id = format!("$e{:07}", self.events.len());
        let mut auth = vec![];
        for key in [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", sender)] {
            if let Some(e) = state.get(&(key.0.to_owned(), key.1.to_owned())) {
                auth.push(e.clone());
            }
        }
        if kind == "m.room.member" {
            if let Some(e) = state.get(&("m.room.member".to_owned(), sk.to_owned()))
                && !auth.contains(e)
            {
                auth.push(e.clone());
            }
            if content["membership"] == "join"
                && let Some(e) = state.get(&("m.room.join_rules".to_owned(), String::new()))
            {
                auth.push(e.clone());
            }
        }
        self.ts += 1;
        let ev = json!({
            "event_id": id, "room_id": self.room_id, "type": kind, "sender": sender, "state_key": sk,
            "content": content, "origin_server_ts": self.ts, "depth": self.events.len(),
            "prev_events": if head.is_empty() { vec![] } else { vec![head.clone()] }, "auth_events": auth,
        });
        self.contents.insert(id.clone(), ev["content"].clone());
        self.events.push(ev);
        state.insert((kind.to_owned(), sk.to_owned()), id.clone());
        *head = id;
    }
}

fn user(i: usize) -> String {
    format!("@user{i}:server{}.example", i % 7)
}

/// A room of `members` joined users; then `forks` forks from the same point, each with
/// `member_changes` membership changes (kicks, bans, new joins) and `pl_changes` power levels
/// changes by the admin.
pub fn build(members: usize, forks: usize, member_changes: usize, pl_changes: usize) -> Scenario {
    let version = "11";
    let admin = "@admin:server0.example";
    let mut b =
        Builder { version, room_id: "!bench:server0.example".into(), events: vec![], contents: HashMap::new(), ts: 0 };
    let mut state = State::new();
    let mut head = String::new();
    b.send(&mut state, &mut head, "m.room.create", admin, "", json!({"room_version": b.version}));
    b.send(&mut state, &mut head, "m.room.member", admin, admin, json!({"membership": "join"}));
    b.send(&mut state, &mut head, "m.room.power_levels", admin, "", json!({"users": {admin: 100}}));
    b.send(&mut state, &mut head, "m.room.join_rules", admin, "", json!({"join_rule": "public"}));
    for i in 0..members {
        let u = user(i);
        b.send(&mut state, &mut head, "m.room.member", &u, &u, json!({"membership": "join"}));
    }
    let base_state = state;
    let base_head = head;
    let mut out = Vec::new();
    for f in 0..forks {
        let mut state = base_state.clone();
        let mut head = base_head.clone();
        let mut users = json!({admin: 100});
        let pl_every = member_changes.max(1) / pl_changes.max(1);
        for c in 0..member_changes {
            // Forks touch overlapping members, so their changes conflict.
            let target = user((c * 7 + f * 3) % members.max(1));
            let (sender, m) = match (c + f) % 3 {
                0 => (admin.to_owned(), "leave"),
                1 => (admin.to_owned(), "ban"),
                _ => (user(members + c + f * member_changes), "join"),
            };
            let sk = if m == "join" { sender.clone() } else { target };
            b.send(&mut state, &mut head, "m.room.member", &sender, &sk, json!({"membership": m}));
            if pl_changes > 0 && c % pl_every.max(1) == 0 && c / pl_every.max(1) < pl_changes {
                users[user(c % members.max(1)).as_str()] = json!(((c + f) % 5) * 10);
                b.send(&mut state, &mut head, "m.room.power_levels", admin, "", json!({"users": users.clone()}));
            }
        }
        b.send(&mut state, &mut head, "m.room.topic", admin, "", json!({"topic": format!("fork {f}")}));
        out.push(state);
    }
    Scenario { version, events: b.events, forks: out }
}
