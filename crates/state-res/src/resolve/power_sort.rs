//! Reverse topological power ordering of the power events and their conflicted auth ancestors.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use super::arena::{Arena, BitSet, Idx};
use crate::auth::user_power;
use crate::event::Power;
use crate::{EventProvider, RoomVersion};

/// Kahn's algorithm over the `auth_events` DAG restricted to the full conflicted set, taking
/// at each step the event whose sender has the highest power (from the event's own auth
/// events), then the earliest `origin_server_ts`, then the smallest event id.
///
/// As Synapse and ruma do, the graph grows from each power event through auth events that are
/// themselves in the full conflicted set; an ancestor reachable only through events outside
/// the set is not added, and such paths give no edge.
pub(crate) fn power_sort<P: EventProvider>(
    v: &RoomVersion,
    arena: &mut Arena<'_, P>,
    power_events: &[Idx],
    full_conflicted: &BitSet,
    create: Option<Idx>,
) -> Vec<Idx> {
    let mut in_graph = BitSet::default();
    let mut nodes: Vec<Idx> = Vec::new();
    let mut stack: Vec<Idx> = power_events.to_vec();
    let mut out_degree: FxHashMap<Idx, u32> = FxHashMap::default();
    let mut parents: FxHashMap<Idx, Vec<Idx>> = FxHashMap::default();
    while let Some(x) = stack.pop() {
        if !in_graph.insert(x) {
            continue;
        }
        nodes.push(x);
        let mut degree = 0;
        let auth = arena.ev(x).auth_events.clone();
        let mut seen_auth: Vec<Idx> = Vec::with_capacity(auth.len());
        for a in auth.iter().filter_map(|&a| arena.load(a)) {
            if full_conflicted.contains(a) && !seen_auth.contains(&a) {
                seen_auth.push(a);
                degree += 1;
                parents.entry(a).or_default().push(x);
                stack.push(a);
            }
        }
        out_degree.insert(x, degree);
    }

    let create_ev = create.map(|c| arena.arc(c).clone());
    let mut power: FxHashMap<Idx, Power> = FxHashMap::default();
    for &x in &nodes {
        let pl = arena.auth_power_levels(x);
        let levels = pl.and_then(|p| arena.ev(p).power_levels());
        power.insert(x, user_power(v, create_ev.as_deref(), levels, &arena.ev(x).sender));
    }

    let arena = &*arena;
    let key =
        |x: Idx| SortKey { power: power[&x], ts: arena.ev(x).origin_server_ts, id: &arena.ev(x).event_id, idx: x };
    let mut heap: BinaryHeap<Reverse<SortKey<'_>>> =
        nodes.iter().filter(|x| out_degree[x] == 0).map(|&x| Reverse(key(x))).collect();
    let mut sorted = Vec::with_capacity(nodes.len());
    while let Some(Reverse(SortKey { idx, .. })) = heap.pop() {
        sorted.push(idx);
        for &p in parents.get(&idx).map(Vec::as_slice).unwrap_or_default() {
            let d = out_degree.get_mut(&p).expect("every parent is a node");
            *d -= 1;
            if *d == 0 {
                heap.push(Reverse(key(p)));
            }
        }
    }
    sorted
}

/// "x < y if x's sender has greater power, or equal power and smaller `origin_server_ts`, or
/// equal both and smaller event id."
#[derive(PartialEq, Eq)]
struct SortKey<'a> {
    power: Power,
    ts: i64,
    id: &'a str,
    idx: Idx,
}

impl Ord for SortKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.power.cmp(&self.power).then(self.ts.cmp(&other.ts)).then(self.id.cmp(other.id))
    }
}

impl PartialOrd for SortKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
