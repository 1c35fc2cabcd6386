//! Inputs a hostile or broken peer can produce: resolution answers or errs, never hangs or
//! panics.

use serde_json::json;
use tandem_state_res::{Error, EventNid, EventProvider, EventType, MemoryStore, RoomVersion, StateMap, resolve};

fn member(id: &str, user: &str, membership: &str, auth: &[&str]) -> serde_json::Value {
    json!({"event_id": id, "room_id": "!r:x", "type": "m.room.member", "sender": user, "state_key": user,
           "content": {"membership": membership}, "origin_server_ts": 1, "prev_events": [], "auth_events": auth})
}

fn key(store: &MemoryStore, id: &str) -> (tandem_state_res::StateKeyNid, EventNid) {
    let ev = store.by_id(id).unwrap();
    (store.state_key_nid(&ev.kind, ev.state_key().unwrap()).unwrap(), ev.nid)
}

#[test]
fn cyclic_auth_events_and_missing_events_do_not_hang() {
    for version in ["1", "2", "11", "12"] {
        let v = RoomVersion::new(version).unwrap();
        let mut store = MemoryStore::new();
        // $a and $b cite each other; $c cites an event nobody has.
        store.insert_json(&v, "$a", &member("$a", "@a:x", "join", &["$b"])).unwrap();
        store.insert_json(&v, "$b", &member("$b", "@a:x", "leave", &["$a"])).unwrap();
        store.insert_json(&v, "$c", &member("$c", "@c:x", "ban", &["$missing", "$a"])).unwrap();
        let s1 = StateMap::new(vec![key(&store, "$a")]);
        let s2 = StateMap::new(vec![key(&store, "$b"), key(&store, "$c")]);
        let s3 = StateMap::new(vec![key(&store, "$c")]);
        for sets in [vec![&s1, &s2], vec![&s1, &s2, &s3], vec![&s2, &s3]] {
            // Nothing is authorized without a create event; it must still return.
            let out = resolve(&v, &sets, None, &store).unwrap();
            assert!(out.len() <= 2);
        }
    }
}

#[test]
fn bad_calls_are_typed_errors() {
    let v = RoomVersion::new("11").unwrap();
    let store = MemoryStore::new();
    assert_eq!(resolve(&v, &[], None, &store), Err(Error::NoStateSets));
    assert!(matches!(RoomVersion::new("99"), Err(Error::UnsupportedRoomVersion(_))));
    let a = StateMap::new(vec![(tandem_state_res::StateKeyNid(1), EventNid(1))]);
    let b = StateMap::new(vec![(tandem_state_res::StateKeyNid(1), EventNid(2))]);
    let unsorted: &[EventNid] = &[EventNid(5), EventNid(1)];
    assert!(matches!(resolve(&v, &[&a, &b], Some(&[unsorted, unsorted]), &store), Err(Error::MalformedEvent(_))));
    assert!(matches!(resolve(&v, &[&a, &b], Some(&[unsorted]), &store), Err(Error::MalformedEvent(_))));
    // Events the provider lacks take no part: the conflicted key resolves to nothing.
    assert_eq!(resolve(&v, &[&a, &b], None, &store).unwrap(), StateMap::default());
    assert!(store.state_key_nid(&EventType::Create, "").is_none());
}

#[test]
fn malformed_pdus_are_errors_not_panics() {
    let v = RoomVersion::new("12").unwrap();
    let mut store = MemoryStore::new();
    for bad in [
        json!(null),
        json!([]),
        json!({"type": 5}),
        json!({"type": "m.room.member"}),
        json!({"type": "x", "sender": "@a:x", "state_key": 3}),
        json!({"type": "x", "sender": "@a:x", "auth_events": "nope"}),
        json!({"type": "x", "sender": "@a:x", "prev_events": [1, 2]}),
    ] {
        assert!(matches!(store.insert_json(&v, "$bad", &bad), Err(Error::MalformedEvent(_))), "{bad}");
    }
}
