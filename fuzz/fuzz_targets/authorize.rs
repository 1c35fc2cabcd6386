//! Any JSON events: parse them, then authorize the last against a state of the others and
//! check its auth events. Nothing may panic.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tandem_state_res::{AuthEvent, EventType, MemoryStore, RoomVersion, authorize, check_auth_events};

fuzz_target!(|data: &[u8]| {
    let Some((&version_byte, json)) = data.split_first() else { return };
    let version = RoomVersion::new(&(1 + version_byte % 12).to_string()).unwrap();
    let Ok(serde_json::Value::Array(pdus)) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    let mut store = MemoryStore::new();
    let mut events: Vec<Arc<AuthEvent>> = Vec::new();
    for (i, pdu) in pdus.iter().enumerate() {
        let id = pdu.get("event_id").and_then(|v| v.as_str()).map(str::to_owned).unwrap_or(format!("$e{i}"));
        if let Ok(nid) = store.insert_json(&version, &id, pdu) {
            events.push(store.by_id(store.event_id(nid).unwrap()).unwrap());
        }
    }
    let Some((event, rest)) = events.split_last() else { return };
    let state = |kind: &EventType, sk: &str| {
        rest.iter().rev().find(|e| &e.kind == kind && e.state_key() == Some(sk)).cloned()
    };
    let _ = authorize(&version, event, &state);
    let auth: Vec<&AuthEvent> = rest.iter().map(|e| &**e).collect();
    let _ = check_auth_events(&version, event, &auth, rest.first().map(|e| &**e));
});
