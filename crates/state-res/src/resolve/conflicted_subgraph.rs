//! The conflicted state subgraph (state resolution v2.1): every event on an `auth_events` path
//! from one conflicted state event to another, endpoints included.

use rustc_hash::FxHashMap;

use super::arena::{Arena, BitSet, Idx};
use crate::EventProvider;
use crate::event::EventNid;

/// An event `x` is in the subgraph when some conflicted event reaches it (itself, or by at
/// least one step) and it reaches some conflicted event, with the whole path at least one step
/// long.
pub(crate) fn conflicted_subgraph<P: EventProvider>(
    conflicted: &[EventNid],
    arena: &mut Arena<'_, P>,
) -> Vec<EventNid> {
    let mut is_conflicted = BitSet::default();
    let roots: Vec<Idx> = conflicted.iter().filter_map(|&n| arena.load(n)).collect();
    for &r in &roots {
        is_conflicted.insert(r);
    }
    // Post-order over the auth DAG below the conflicted events, iteratively (auth chains can
    // be thousands of events deep): `hits[x]` says x reaches a conflicted event in ≥ 1 step,
    // `below` marks events reached from a conflicted event in ≥ 1 step.
    let mut hits: FxHashMap<Idx, bool> = FxHashMap::default();
    let mut below = BitSet::default();
    let mut done = BitSet::default();
    // Entered once each: on a (malformed) cyclic auth graph the walk still ends.
    let mut entered = BitSet::default();
    for &root in &roots {
        if !entered.insert(root) {
            continue;
        }
        let mut stack: Vec<(Idx, usize)> = vec![(root, 0)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let auth = &arena.ev(node).auth_events;
            if let Some(&child_nid) = auth.get(*next) {
                *next += 1;
                let Some(child) = arena.load(child_nid) else { continue };
                below.insert(child);
                if entered.insert(child) {
                    stack.push((child, 0));
                }
                continue;
            }
            let reaches = arena
                .ev(node)
                .auth_events
                .clone()
                .iter()
                .filter_map(|&c| arena.load(c))
                .any(|c| is_conflicted.contains(c) || hits.get(&c).copied().unwrap_or(false));
            hits.insert(node, reaches);
            done.insert(node);
            stack.pop();
        }
    }
    let mut out: Vec<EventNid> = hits
        .into_iter()
        .filter(|&(x, reaches)| {
            let c = is_conflicted.contains(x);
            let b = below.contains(x);
            (b && c) || ((b || c) && reaches)
        })
        .map(|(x, _)| arena.ev(x).nid)
        .collect();
    out.sort_unstable();
    out
}
