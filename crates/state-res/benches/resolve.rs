//! State resolution, Tandem against ruma's `state-res` on the same inputs in the same run.
//!
//! Prints, per scenario:
//! - `ratio <scenario> ruma/tandem = X.XX`: Tandem from the interned state sets and auth chains
//!   a server holds (the entry point the server uses);
//! - `ratio <scenario> ruma/tandem-walk = X.XX`: the same, with Tandem walking the auth chains
//!   itself instead of receiving them (ruma always receives them);
//! - `ratio <scenario> ruma/tandem-strings = X.XX`: Tandem from the same string-keyed maps and
//!   string auth chains ruma receives, converting them in and the result back out.

#[allow(dead_code)]
#[path = "../tests/support/ruma_oracle.rs"]
mod ruma_oracle;
#[path = "../tests/support/scenario.rs"]
mod scenario;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ruma::state_res;
use ruma::state_res::utils::event_id_set::EventIdSet;
use ruma::{OwnedEventId, RoomVersionId};
use ruma_oracle::RumaRoom;
use tandem_state_res::{EventNid, MemoryStore, RoomVersion, StateMap, resolve, resolve_strings};

thread_local! {
    /// Mean time per iteration of each benchmark, from the samples criterion took.
    static MEANS: RefCell<BTreeMap<String, (Duration, u64)>> = const { RefCell::new(BTreeMap::new()) };
}

fn record(name: &str, elapsed: Duration, iters: u64) {
    MEANS.with(|m| {
        let mut m = m.borrow_mut();
        let e = m.entry(name.to_owned()).or_insert((Duration::ZERO, 0));
        e.0 += elapsed;
        e.1 += iters;
    });
}

fn timed(name: String, mut f: impl FnMut()) -> impl FnMut(u64) -> Duration {
    move |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let elapsed = start.elapsed();
        record(&name, elapsed, iters);
        elapsed
    }
}

fn bench_scenario(c: &mut Criterion, name: &str, s: scenario::Scenario, samples: usize) {
    let v = RoomVersion::new(s.version).unwrap();
    let mut store = MemoryStore::new();
    let mut ruma_room = RumaRoom::default();
    for e in &s.events {
        store.insert_json(&v, e["event_id"].as_str().unwrap(), e).unwrap();
        ruma_room.add(e);
    }
    let rules = RoomVersionId::try_from(s.version).unwrap().rules().unwrap();
    let ruma_sets: Vec<_> = s.forks.iter().map(RumaRoom::to_ruma).collect();
    let ruma_chains: Vec<HashSet<OwnedEventId>> = ruma_sets.iter().map(|m| ruma_room.full_auth_chain(m)).collect();
    let string_chains: Vec<HashSet<String>> =
        ruma_chains.iter().map(|c| c.iter().map(|e| e.to_string()).collect()).collect();
    let sets: Vec<StateMap> = s.forks.iter().map(|f| store.state_map(f).unwrap()).collect();
    let nid_chains: Vec<Vec<EventNid>> = string_chains
        .iter()
        .map(|c| {
            let mut v: Vec<EventNid> = c.iter().map(|id| store.event_nid(id).unwrap()).collect();
            v.sort_unstable();
            v
        })
        .collect();

    let run_ruma = || {
        let chains: Vec<EventIdSet<OwnedEventId>> = ruma_chains.iter().map(|c| c.iter().cloned().collect()).collect();
        state_res::resolve(
            &rules.authorization,
            rules.state_res.v2_rules().unwrap(),
            &ruma_sets,
            chains,
            |id| ruma_room.pdus.get(id).cloned(),
            |_| None,
        )
        .unwrap()
    };
    let set_refs: Vec<&StateMap> = sets.iter().collect();
    let chain_refs: Vec<&[EventNid]> = nid_chains.iter().map(Vec::as_slice).collect();
    let run_interned = || resolve(&v, &set_refs, Some(&chain_refs), &store).unwrap();
    let run_walked = || resolve(&v, &set_refs, None, &store).unwrap();
    let fork_refs: Vec<&scenario::State> = s.forks.iter().collect();
    let string_chain_refs: Vec<&HashSet<String>> = string_chains.iter().collect();
    let run_strings = || resolve_strings(&v, &fork_refs, Some(&string_chain_refs), &store).unwrap();

    // The same answer from all three, or the timings mean nothing.
    let expected = RumaRoom::from_ruma(&run_ruma());
    assert_eq!(store.string_map(&run_interned()), expected, "{name}: interned result differs from ruma");
    assert_eq!(run_strings(), expected, "{name}: string result differs from ruma");
    assert_eq!(store.string_map(&run_walked()), expected, "{name}: result with walked chains differs from ruma");
    let conflicted = {
        let all: HashSet<_> = s.forks.iter().flat_map(|f| f.iter()).collect();
        all.len() - expected.len()
    };
    println!(
        "scenario {name}: {} events, {} state entries, {} forks, ~{} conflicted entries; same result from ruma and Tandem",
        s.events.len(),
        expected.len(),
        s.forks.len(),
        conflicted
    );

    let mut g = c.benchmark_group(name);
    g.sample_size(samples);
    g.bench_function("ruma", |b| b.iter_custom(timed(format!("{name}/ruma"), || drop(run_ruma()))));
    g.bench_function("tandem", |b| b.iter_custom(timed(format!("{name}/tandem"), || drop(run_interned()))));
    g.bench_function("tandem-walk", |b| b.iter_custom(timed(format!("{name}/tandem-walk"), || drop(run_walked()))));
    g.bench_function("tandem-strings", |b| {
        b.iter_custom(timed(format!("{name}/tandem-strings"), || drop(run_strings())))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_scenario(c, "small", scenario::build(3, 2, 2, 1), 100);
    bench_scenario(c, "medium", scenario::build(990, 2, 50, 2), 30);
    bench_scenario(c, "large", scenario::build(9_000, 5, 200, 5), 10);
    bench_scenario(c, "huge", scenario::build(100_000, 2, 1_000, 10), 10);
}

fn report() {
    MEANS.with(|m| {
        let m = m.borrow();
        let mean = |k: &str| m.get(k).map(|(d, n)| d.as_secs_f64() / *n as f64);
        for name in ["small", "medium", "large", "huge"] {
            let get = |what: &str| mean(&format!("{name}/{what}"));
            let (Some(r), Some(t), Some(tw), Some(ts)) =
                (get("ruma"), get("tandem"), get("tandem-walk"), get("tandem-strings"))
            else {
                continue;
            };
            println!(
                "mean {name}: ruma {:.3} ms, tandem {:.3} ms, tandem-walk {:.3} ms, tandem-strings {:.3} ms",
                r * 1e3,
                t * 1e3,
                tw * 1e3,
                ts * 1e3
            );
            println!("ratio {name} ruma/tandem = {:.2}", r / t);
            println!("ratio {name} ruma/tandem-walk = {:.2}", r / tw);
            println!("ratio {name} ruma/tandem-strings = {:.2}", r / ts);
        }
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = benches
}

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    report();
}
