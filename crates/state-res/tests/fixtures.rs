//! The state resolution cases of ruma's test suite (`tests/data/ruma`), each resolved as its
//! `cases.json` entry says and compared with its snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem_state_res::{EventProvider, MemoryStore, RoomVersion, StateMap, resolve};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ruma")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Loads PDU files into a store; returns the store, the room version and the batches of ids.
fn load(files: &[&str]) -> (MemoryStore, RoomVersion, Vec<Vec<String>>) {
    let mut store = MemoryStore::new();
    let mut version = None;
    let mut batches = Vec::new();
    for f in files {
        let pdus = read_json(&data().join("fixtures").join(f));
        let mut batch = Vec::new();
        for pdu in pdus.as_array().unwrap() {
            let v = *version
                .get_or_insert_with(|| RoomVersion::new(pdu["content"]["room_version"].as_str().unwrap()).unwrap());
            let id = pdu["event_id"].as_str().unwrap();
            store.insert_json(&v, id, pdu).unwrap();
            batch.push(id.to_owned());
        }
        batches.push(batch);
    }
    (store, version.unwrap(), batches)
}

fn single(store: &MemoryStore, id: &str) -> StateMap {
    let ev = store.by_id(id).unwrap();
    let key = store.state_key_nid(&ev.kind, ev.state_key().unwrap()).unwrap();
    StateMap::new(vec![(key, ev.nid)])
}

fn res(v: &RoomVersion, sets: &[StateMap], store: &MemoryStore) -> StateMap {
    let refs: Vec<&StateMap> = sets.iter().collect();
    resolve(v, &refs, None, store).unwrap()
}

/// Walks the DAG along `prev_events`: the state at each event resolves the states at its
/// `prev_events`, then resolves {before, before + event}; the result resolves the leaves.
fn iteratively(store: &MemoryStore, v: &RoomVersion, ids: &[String]) -> StateMap {
    let mut at: BTreeMap<String, StateMap> = BTreeMap::new();
    let mut pending: Vec<&String> = ids.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|id| {
            let ev = store.by_id(id).unwrap();
            let prevs: Option<Vec<StateMap>> =
                ev.prev_events.iter().map(|p| at.get(store.event_id(*p).unwrap()).cloned()).collect();
            let Some(prevs) = prevs else { return true };
            let state_before = if prevs.is_empty() { StateMap::default() } else { res(v, &prevs, store) };
            let mut proposed = state_before.clone();
            proposed.insert(store.state_key_nid(&ev.kind, ev.state_key().unwrap()).unwrap(), ev.nid);
            let state_at = res(v, &[state_before, proposed], store);
            at.insert(id.to_string(), state_at);
            false
        });
        assert!(pending.len() < before, "events whose prev_events are missing");
    }
    let referenced: Vec<u64> = ids
        .iter()
        .flat_map(|id| store.by_id(id).unwrap().prev_events.iter().map(|p| p.0).collect::<Vec<_>>())
        .collect();
    let leaves: Vec<StateMap> = ids
        .iter()
        .filter(|id| !referenced.contains(&store.event_nid(id).unwrap().0))
        .map(|id| at[id.as_str()].clone())
        .collect();
    res(v, &leaves, store)
}

fn batched(store: &MemoryStore, v: &RoomVersion, batches: &[Vec<String>]) -> StateMap {
    let mut prev: Option<StateMap> = None;
    for batch in batches {
        let mut sets: Vec<StateMap> = prev.take().into_iter().collect();
        sets.extend(batch.iter().map(|id| single(store, id)));
        prev = Some(res(v, &sets, store));
    }
    prev.unwrap()
}

fn expected(case: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(data().join(format!("snapshots/{case}@resolved_state.snap"))).unwrap();
    let json = text.splitn(3, "---").nth(2).unwrap();
    let entries: Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<_> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("type"), s("state_key"), s("event_id"))
        })
        .collect();
    out.sort();
    out
}

fn as_triples(store: &MemoryStore, map: &StateMap) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = store.string_map(map).into_iter().map(|((t, sk), id)| (t, sk, id)).collect();
    out.sort();
    out
}

fn cases() -> Value {
    read_json(&data().join("cases.json"))
}

#[test]
fn batches_cases_resolve_three_ways_to_the_snapshot() {
    let cases = cases();
    let batches = cases["batches"].as_object().unwrap();
    assert_eq!(batches.len(), 9);
    for (case, files) in batches {
        let files: Vec<&str> = files.as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let (store, v, ids) = load(&files);
        let all: Vec<String> = ids.concat();
        let want = expected(case);
        let iterative = as_triples(&store, &iteratively(&store, &v, &all));
        let by_file = as_triples(&store, &batched(&store, &v, &ids));
        let atomic = as_triples(&store, &batched(&store, &v, std::slice::from_ref(&all)));
        assert_eq!(iterative, want, "{case}: iterative");
        assert_eq!(by_file, want, "{case}: batched");
        assert_eq!(atomic, want, "{case}: atomic");
    }
}

#[test]
fn state_maps_cases_resolve_to_the_snapshot() {
    let cases = cases();
    let maps = cases["state_maps"].as_object().unwrap();
    assert_eq!(maps.len(), 4);
    for (case, spec) in maps {
        let pdu_files: Vec<&str> = spec["pdus"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let (store, v, _) = load(&pdu_files);
        let sets: Vec<StateMap> = spec["state_maps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let ids = read_json(&data().join("fixtures").join(f.as_str().unwrap()));
                let entries = ids
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| {
                        let ev = store.by_id(id.as_str().unwrap()).unwrap();
                        (store.state_key_nid(&ev.kind, ev.state_key().unwrap()).unwrap(), ev.nid)
                    })
                    .collect();
                StateMap::new(entries)
            })
            .collect();
        let got = as_triples(&store, &res(&v, &sets, &store));
        assert_eq!(got, expected(case), "{case}");
    }
}
