//! Differential testing against ruma's `state-res`: random rooms (see `support/room_gen.rs`)
//! resolved by both, at every merge of two forks and over all forks at the end, and every
//! generated event authorized by both.
//!
//! `TANDEM_DIFF_CASES` (default 2100), `TANDEM_DIFF_VERSIONS` (default `3` to `12`: every
//! version of state resolution v2 and v2.1 whose event ids are hashes) and `TANDEM_DIFF_SEED`
//! (a number, or `random`) tune a run. A failure prints its seed and the smallest number of
//! steps with that seed that still fails, with the events of that case.
//!
//! One case in [`LONG_EVERY`] grows a room of several hundred events; in every case one event
//! in [`STALE_AUTH`] cites auth events from an older state of its fork or from another fork.

mod support;

use std::collections::HashSet;

use serde_json::Value;
use support::room_gen::{Oracle, Room, State};
use support::ruma_oracle::RumaRoom;
use tandem_state_res::{AuthEvent, EventType, MemoryStore, RoomVersion, authorize, resolve_strings};

/// One case in this many runs several hundred steps instead of 20 to 70 (about half the
/// random events are refused): [`LONG_STEPS`] against ruma, [`LONG_STEPS_SYNAPSE`] against
/// Synapse, whose Python resolution slows down faster with the room's size.
const LONG_EVERY: u64 = 25;
const LONG_STEPS: u64 = 600;
const LONG_STEPS_SYNAPSE: u64 = 300;
/// How often an event cites stale or other-fork auth events.
const STALE_AUTH: f64 = 0.1;

struct Both {
    version: &'static str,
    rules: RoomVersion,
    ruma: RumaRoom,
    store: MemoryStore,
    mismatches: Vec<String>,
    /// Authorization differences of the kind `known_divergence` describes.
    known: usize,
    chains_supplied: bool,
}

/// Where ruma and Synapse disagree and Tandem follows Synapse: with no `m.room.join_rules` in
/// the state, ruma rejects every join and knock; Synapse reads the join rule as `invite`.
fn known_divergence(event: &Value, state: &State) -> bool {
    event["type"] == "m.room.member"
        && matches!(event["content"]["membership"].as_str(), Some("join" | "knock"))
        && !state.contains_key(&("m.room.join_rules".to_owned(), String::new()))
}

impl Both {
    fn new(version: &'static str, chains_supplied: bool) -> Self {
        Both {
            version,
            rules: RoomVersion::new(version).unwrap(),
            ruma: RumaRoom::default(),
            store: MemoryStore::new(),
            mismatches: Vec::new(),
            known: 0,
            chains_supplied,
        }
    }

    fn tandem_allows(&mut self, event: &Value, state: &State) -> bool {
        let mut probe = self.store.clone();
        let id = event["event_id"].as_str().unwrap();
        let ev = AuthEvent::from_json(&self.rules, id, event, |i| probe.intern_event(i)).unwrap();
        let lookup = |kind: &EventType, sk: &str| {
            let id = state.get(&(kind.as_str().to_owned(), sk.to_owned()))?;
            probe.by_id(id)
        };
        authorize(&self.rules, &ev, &lookup).is_ok()
    }

    fn tandem_resolve(&self, sets: &[State]) -> State {
        let refs: Vec<&State> = sets.iter().collect();
        if self.chains_supplied {
            let chains: Vec<HashSet<String>> = sets
                .iter()
                .map(|s| self.ruma.full_auth_chain(&RumaRoom::to_ruma(s)).into_iter().map(|e| e.to_string()).collect())
                .collect();
            let chain_refs: Vec<&HashSet<String>> = chains.iter().collect();
            resolve_strings(&self.rules, &refs, Some(&chain_refs), &self.store).unwrap()
        } else {
            resolve_strings(&self.rules, &refs, None, &self.store).unwrap()
        }
    }

    fn compare(&mut self, sets: &[State], what: &str) {
        let ruma = self.ruma.resolve(self.version, sets).unwrap();
        let tandem = self.tandem_resolve(sets);
        if ruma != tandem {
            let diff = state_diff("ruma", &ruma, &tandem);
            self.mismatches.push(format!("{what}: resolved states differ:\n  {}", diff.join("\n  ")));
        }
    }
}

impl Oracle for Both {
    fn add(&mut self, event: &Value) {
        self.ruma.add(event);
        self.store.insert_json(&self.rules, event["event_id"].as_str().unwrap(), event).unwrap();
    }

    fn allows(&mut self, event: &Value, state: &State) -> bool {
        let ruma = self.ruma.allows(self.version, event, state);
        let tandem = self.tandem_allows(event, state);
        if ruma != tandem && known_divergence(event, state) {
            self.known += 1;
        } else if ruma != tandem {
            self.mismatches.push(format!("authorization differs (ruma {ruma}, tandem {tandem}) for {event}"));
        }
        ruma
    }

    fn resolve(&mut self, sets: &[State]) -> State {
        self.ruma.resolve(self.version, sets).unwrap()
    }
}

/// The keys where an oracle's state and Tandem's differ, one line each, sorted.
fn state_diff(oracle: &str, expected: &State, tandem: &State) -> Vec<String> {
    let mut diff: Vec<String> = expected
        .keys()
        .chain(tandem.keys())
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|k| expected.get(*k) != tandem.get(*k))
        .map(|k| format!("{k:?}: {oracle} {:?} tandem {:?}", expected.get(k), tandem.get(k)))
        .collect();
    diff.sort();
    diff
}

struct Case {
    version: &'static str,
    seed: u64,
    steps: usize,
}

/// Generates the room of a case: its events, and the lists of state sets resolved in it (at
/// each merge, and over all forks at the end).
fn generate(case: &Case) -> (Both, Room, Vec<Vec<State>>) {
    let Case { version, seed, steps } = *case;
    let mut both = Both::new(version, seed % 2 == 0);
    let mut room = Room::new(version, seed, 2 + (seed % 3) as usize, 3);
    room.stale_auth = STALE_AUTH;
    let forks = 2 + (seed % 4) as usize;
    room.bootstrap(&mut both, forks);
    let mut resolutions: Vec<Vec<State>> = Vec::new();
    room.run(&mut both, steps, |_, sets| resolutions.push(sets.to_vec()));
    resolutions.push(room.fork_states());
    (both, room, resolutions)
}

/// Runs one case, counted in `tally`; the mismatches found, the room's events, and the
/// authorizations of the known divergence.
fn run(case: &Case, tally: &mut Tally) -> (Vec<String>, Vec<Value>, usize) {
    let (mut both, room, resolutions) = generate(case);
    tally.room(&room);
    for (i, sets) in resolutions.iter().enumerate() {
        tally.count(sets);
        both.compare(sets, &format!("resolution {i} of {}", resolutions.len()));
    }
    (both.mismatches, room.events, both.known)
}

/// The room versions compared, from `TANDEM_DIFF_VERSIONS`.
fn versions() -> Vec<&'static str> {
    match std::env::var("TANDEM_DIFF_VERSIONS") {
        Ok(list) => list.split(',').map(|v| &*String::leak(v.trim().to_owned())).collect(),
        Err(_) => vec!["3", "4", "5", "6", "7", "8", "9", "10", "11", "12"],
    }
}

/// The `i`th case from `base`: versions in turn, and now and then a long room of `long` to
/// 1.5 × `long` steps.
fn nth_case(i: u64, base: u64, versions: &[&'static str], long: u64) -> Case {
    let seed = base.wrapping_add(i);
    let steps = if i % LONG_EVERY == LONG_EVERY - 1 { long + seed % (long / 2) } else { 20 + seed % 50 };
    Case { version: versions[i as usize % versions.len()], seed, steps: steps as usize }
}

/// How many resolutions had a conflict on power levels, on the join rules, and on some
/// user's membership (a race between servers), and how many events the largest room had.
#[derive(Default)]
struct Tally {
    resolutions: usize,
    power_levels: usize,
    join_rules: usize,
    memberships: usize,
    largest_room: usize,
    stale_events: usize,
}

impl Tally {
    fn count(&mut self, sets: &[State]) {
        let conflicted = |kind: &str| {
            sets.iter().flat_map(|s| s.keys()).filter(|(t, _)| t == kind).any(|k| {
                let first = sets[0].get(k);
                sets.iter().any(|s| s.get(k) != first)
            })
        };
        self.resolutions += 1;
        self.power_levels += conflicted("m.room.power_levels") as usize;
        self.join_rules += conflicted("m.room.join_rules") as usize;
        self.memberships += conflicted("m.room.member") as usize;
    }

    fn room(&mut self, room: &Room) {
        self.largest_room = self.largest_room.max(room.events.len());
        self.stale_events += room.stale_events;
    }

    fn summary(&self) -> String {
        format!(
            "{} resolutions: {} with conflicted power levels, {} with conflicted join rules, {} with a \
             membership race; largest room {} events; {} events citing stale or other-fork auth events",
            self.resolutions,
            self.power_levels,
            self.join_rules,
            self.memberships,
            self.largest_room,
            self.stale_events
        )
    }
}

fn base_seed() -> u64 {
    match std::env::var("TANDEM_DIFF_SEED").as_deref() {
        Ok("random") => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        Ok(s) => s.parse().unwrap(),
        Err(_) => 20261122,
    }
}

/// The same random rooms resolved by Synapse's own code (`support/synapse_oracle.py`, in the
/// Synapse venv of `shared/peers/synapse/install.sh`), the server Tandem must agree with on
/// every room's state. `TANDEM_SYNAPSE_CASES` (default 300) cases over versions 10, 11, 12.
#[test]
fn random_rooms_resolve_as_synapse_does() {
    if std::env::var_os("TANDEM_SKIP_SYNAPSE").is_some() {
        eprintln!("TANDEM_SKIP_SYNAPSE is set: not comparing with Synapse");
        return;
    }
    let python = support::synapse_oracle::python();
    assert!(
        python.exists(),
        "no Synapse venv at {} (run shared/peers/synapse/install.sh, or set TANDEM_SYNAPSE_PYTHON, \
         or TANDEM_SKIP_SYNAPSE=1)",
        python.display()
    );
    let mut synapse = support::synapse_oracle::Synapse::start().unwrap();
    let cases: u64 = std::env::var("TANDEM_SYNAPSE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let base = base_seed();
    let versions = versions();
    let mut tally = Tally::default();
    let mut events_total = 0;
    for i in 0..cases {
        let case = nth_case(i, base, &versions, LONG_STEPS_SYNAPSE);
        let seed = case.seed;
        let (both, room, resolutions) = generate(&case);
        let by_synapse = synapse.resolve(case.version, &room.events, &resolutions);
        events_total += room.events.len();
        tally.room(&room);
        for (n, (sets, synapse_state)) in resolutions.iter().zip(by_synapse).enumerate() {
            tally.count(sets);
            let tandem = both.tandem_resolve(sets);
            if tandem != synapse_state {
                let diff = state_diff("synapse", &synapse_state, &tandem);
                panic!(
                    "room version {} seed {}: resolution {n} differs from Synapse:\n  {}\nevents:\n{}",
                    case.version,
                    seed,
                    diff.join("\n  "),
                    room.events.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
                );
            }
        }
    }
    eprintln!("synapse: {cases} cases ({versions:?}), {events_total} events, no difference; {}", tally.summary());
}

#[test]
fn random_rooms_resolve_as_ruma_does() {
    let cases: u64 = std::env::var("TANDEM_DIFF_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2100);
    let base = base_seed();
    eprintln!("differential: {cases} cases from base seed {base}");
    let versions = versions();
    let mut events_total = 0;
    let mut known_total = 0;
    let mut tally = Tally::default();
    for i in 0..cases {
        let case = nth_case(i, base, &versions, LONG_STEPS);
        let (mismatches, events, known) = run(&case, &mut tally);
        events_total += events.len();
        known_total += known;
        if !mismatches.is_empty() {
            // Shrink: the fewest steps with the same seed that still fail.
            let mut scratch = Tally::default();
            let smallest = (0..case.steps)
                .map(|steps| Case { steps, ..case })
                .find(|c| !run(c, &mut scratch).0.is_empty())
                .unwrap_or(case);
            let (m, events, _) = run(&smallest, &mut scratch);
            panic!(
                "room version {} seed {} fails; smallest failing case: {} steps, {} events\n{}\nevents:\n{}",
                smallest.version,
                smallest.seed,
                smallest.steps,
                events.len(),
                m.join("\n"),
                events.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
            );
        }
    }
    eprintln!(
        "differential: {cases} cases ({versions:?}), {events_total} events, no difference \
         ({known_total} authorizations where ruma rejects a join with no join rules in state); {}",
        tally.summary()
    );
}
