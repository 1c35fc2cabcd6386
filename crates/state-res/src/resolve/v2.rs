//! State resolution v2 (room versions 2–11) and v2.1 (room version 12).

use super::arena::{Arena, BitSet, Idx};
use super::auth_difference;
use super::conflicted_subgraph::conflicted_subgraph;
use super::iterative_auth_check::{WorkingState, iterative_auth_checks};
use super::mainline_sort::mainline_sort;
use super::power_sort::power_sort;
use super::split::{Split, split};
use crate::event::{EventNid, EventType};
use crate::{Error, EventProvider, RoomVersion, StateMap, StateResAlgorithm};

pub(crate) fn resolve<P: EventProvider>(
    v: &RoomVersion,
    sets: &[&StateMap],
    auth_chains: Option<&[&[EventNid]]>,
    provider: &P,
) -> Result<StateMap, Error> {
    let split = split(sets);
    if split.conflicted.is_empty() {
        return Ok(StateMap::from_sorted(split.unconflicted));
    }
    let mut arena = Arena::new(provider);
    let create = find_create(sets, &mut arena);

    // The full conflicted set: the conflicted state set, the auth difference, and (v2.1) the
    // conflicted state subgraph; only events the provider has take part.
    let mut full: Vec<EventNid> = match auth_chains {
        Some(chains) => auth_difference::from_supplied(chains, &split, &mut arena),
        None => auth_difference::compute(&split, &mut arena),
    };
    full.extend_from_slice(&split.conflicted);
    if v.state_res == StateResAlgorithm::V2_1 {
        full.extend(conflicted_subgraph(&split.conflicted, &mut arena));
    }
    full.sort_unstable();
    full.dedup();
    let full: Vec<Idx> = full.into_iter().filter_map(|n| arena.load(n)).collect();
    let mut in_full = BitSet::default();
    for &i in &full {
        in_full.insert(i);
    }

    // 1. Power events and their conflicted ancestry, in reverse topological power order.
    let power_events: Vec<Idx> = full.iter().copied().filter(|&i| arena.ev(i).is_power_event()).collect();
    let sorted_power = power_sort(v, &mut arena, &power_events, &in_full, create);

    // 2. Iterative auth checks from the unconflicted state (v2.0) or from nothing (v2.1).
    let mut state = WorkingState {
        base: (v.state_res == StateResAlgorithm::V2).then_some(split.unconflicted.as_slice()),
        changes: Default::default(),
    };
    iterative_auth_checks(v, &mut arena, &sorted_power, &mut state, create)?;

    // 3. The other events, in mainline order of the resolved power levels.
    let mut picked = BitSet::default();
    for &i in &sorted_power {
        picked.insert(i);
    }
    let rest: Vec<Idx> = full.iter().copied().filter(|&i| !picked.contains(i)).collect();
    let power_levels =
        provider.state_key_nid(&EventType::PowerLevels, "").and_then(|k| state.get(k)).and_then(|nid| arena.load(nid));
    let sorted_rest = mainline_sort(&mut arena, &rest, power_levels);

    // 4. Iterative auth checks of those on the partially resolved state.
    iterative_auth_checks(v, &mut arena, &sorted_rest, &mut state, create)?;

    // 5. The unconflicted state map wins over what was resolved.
    let resolved = state.changes.into_iter().collect();
    Ok(overlay_unconflicted(split, resolved))
}

fn overlay_unconflicted(split: Split, mut resolved: Vec<(crate::StateKeyNid, EventNid)>) -> StateMap {
    resolved.sort_unstable();
    let unconflicted = split.unconflicted;
    let mut out = Vec::with_capacity(unconflicted.len() + resolved.len());
    let (mut i, mut j) = (0, 0);
    while i < unconflicted.len() || j < resolved.len() {
        match (unconflicted.get(i), resolved.get(j)) {
            (Some(u), Some(r)) if u.0 == r.0 => {
                out.push(*u);
                i += 1;
                j += 1;
            }
            (Some(u), Some(r)) if u.0 < r.0 => {
                out.push(*u);
                i += 1;
            }
            (Some(u), None) => {
                out.push(*u);
                i += 1;
            }
            (_, Some(r)) => {
                out.push(*r);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    StateMap::from_sorted(out)
}

/// The room's create event, as the state sets hold it.
pub(crate) fn find_create<P: EventProvider>(sets: &[&StateMap], arena: &mut Arena<'_, P>) -> Option<Idx> {
    let key = arena.provider.state_key_nid(&EventType::Create, "")?;
    sets.iter().find_map(|s| s.get(key)).and_then(|nid| arena.load(nid))
}
