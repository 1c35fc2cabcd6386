//! Any JSON events, split into state sets by the input: resolution must return a state or an
//! error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_state_res::{EventProvider, MemoryStore, RoomVersion, StateMap, resolve};

fuzz_target!(|data: &[u8]| {
    let Some((&control, json)) = data.split_first() else { return };
    let version = RoomVersion::new(&(1 + control % 12).to_string()).unwrap();
    let sets_n = 1 + usize::from(control / 12 % 4);
    let Ok(serde_json::Value::Array(pdus)) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    let mut store = MemoryStore::new();
    let mut sets = vec![StateMap::default(); sets_n];
    for (i, pdu) in pdus.iter().enumerate() {
        let id = pdu.get("event_id").and_then(|v| v.as_str()).map(str::to_owned).unwrap_or(format!("$e{i}"));
        let Ok(nid) = store.insert_json(&version, &id, pdu) else { continue };
        let ev = store.event(nid).unwrap();
        if let Some(sk) = ev.state_key() {
            let key = store.state_key_nid(&ev.kind, sk).unwrap();
            // Each event lands in some sets: the base, and one fork by its position.
            for (s, set) in sets.iter_mut().enumerate() {
                if s == 0 || i % sets_n == s {
                    set.insert(key, nid);
                }
            }
        }
    }
    let refs: Vec<&StateMap> = sets.iter().collect();
    let _ = resolve(&version, &refs, None, &store);
});
