//! The auth difference: events in the auth chains of some state sets but not all.
//!
//! As Synapse computes it, a state set's auth chain here includes the set's own events, so an
//! unconflicted event is never part of the difference. (With the spec's wording, where an
//! event's auth chain excludes the event, an unconflicted event that some sets' events cite and
//! others' do not would enter the full conflicted set and be replayed; servers that disagree on
//! this can resolve differently, so Tandem follows the implementation it federates with most.)

use rustc_hash::FxHashSet;

use super::arena::{Arena, BitSet, Idx};
use super::split::Split;
use crate::EventProvider;
use crate::event::EventNid;

/// From auth chains the caller supplies, one sorted list per state set (with or without the
/// set's own events: both give the same result, see the module docs).
pub(crate) fn from_supplied<P: EventProvider>(
    chains: &[&[EventNid]],
    split: &Split,
    arena: &mut Arena<'_, P>,
) -> Vec<EventNid> {
    let k = chains.len();
    let mut cursors = vec![0usize; k];
    let mut out = Vec::new();
    while let Some(min) = chains.iter().zip(&cursors).filter_map(|(c, &i)| c.get(i).copied()).min() {
        let mut count = 0;
        for (c, i) in chains.iter().zip(cursors.iter_mut()) {
            // Tolerate duplicates within one chain.
            let mut seen = false;
            while c.get(*i) == Some(&min) {
                *i += 1;
                seen = true;
            }
            count += usize::from(seen);
        }
        if count < k {
            out.push(min);
        }
    }
    out.retain(|&nid| !is_unconflicted(nid, split, arena));
    out
}

fn is_unconflicted<P: EventProvider>(nid: EventNid, split: &Split, arena: &mut Arena<'_, P>) -> bool {
    let Some(idx) = arena.load(nid) else { return false };
    let Ok(key) = arena.key_of(idx) else { return false };
    split.unconflicted.binary_search_by_key(&key, |e| e.0).is_ok_and(|i| split.unconflicted[i].1 == nid)
}

/// Walks the auth DAG: everything reachable from the unconflicted events is in every chain;
/// what only some sets' conflicted events reach is the difference.
pub(crate) fn compute<P: EventProvider>(split: &Split, arena: &mut Arena<'_, P>) -> Vec<EventNid> {
    // The unconflicted state is usually nearly the whole state (a hundred thousand members):
    // it is walked by auth edges alone, without loading its events into the arena.
    let mut common: FxHashSet<EventNid> = FxHashSet::default();
    let mut stack: Vec<EventNid> = split.unconflicted.iter().map(|e| e.1).collect();
    while let Some(nid) = stack.pop() {
        if common.insert(nid) {
            arena.provider.with_auth_events(nid, &mut |auth| stack.extend_from_slice(auth));
        }
    }

    let k = split.conflicted_by_set.len();
    let mut counts: Vec<u32> = Vec::new();
    let mut reached: Vec<Idx> = Vec::new();
    for set in &split.conflicted_by_set {
        let mut seen = BitSet::default();
        walk(arena, set, &mut seen, |idx, nid| {
            if common.contains(&nid) {
                return false;
            }
            let i = idx as usize;
            if i >= counts.len() {
                counts.resize(i + 1, 0);
            }
            if counts[i] == 0 {
                reached.push(idx);
            }
            counts[i] += 1;
            true
        });
    }
    reached.into_iter().filter(|&idx| (counts[idx as usize] as usize) < k).map(|idx| arena.ev(idx).nid).collect()
}

/// Depth-first over `auth_events` from `roots` (included), each event once per `seen`;
/// `enter` decides whether to go past an event. Events the provider lacks are skipped.
pub(crate) fn walk<P: EventProvider>(
    arena: &mut Arena<'_, P>,
    roots: &[EventNid],
    seen: &mut BitSet,
    mut enter: impl FnMut(Idx, EventNid) -> bool,
) {
    let mut stack: Vec<EventNid> = roots.to_vec();
    while let Some(nid) = stack.pop() {
        let Some(idx) = arena.load(nid) else { continue };
        if !seen.insert(idx) || !enter(idx, nid) {
            continue;
        }
        stack.extend_from_slice(&arena.ev(idx).auth_events);
    }
}
