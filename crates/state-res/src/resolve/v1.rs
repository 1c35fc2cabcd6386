//! State resolution v1 (room version 1), as the spec gives it and Synapse runs it.

use sha1::{Digest, Sha1};

use super::arena::{Arena, Idx};
use super::iterative_auth_check::WorkingState;
use crate::auth::{AuthInputs, check};
use crate::event::{EventNid, EventType, StateKeyNid};
use crate::{Error, EventProvider, RoomVersion, StateMap};

pub(crate) fn resolve<P: EventProvider>(v: &RoomVersion, sets: &[&StateMap], provider: &P) -> Result<StateMap, Error> {
    // A key is conflicted when the sets hold two or more different events for it; a key some
    // sets lack but the others agree on is not.
    let mut all: Vec<(StateKeyNid, EventNid)> = sets.iter().flat_map(|s| s.entries().iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    let mut unconflicted = Vec::new();
    let mut conflicted: Vec<(StateKeyNid, Vec<EventNid>)> = Vec::new();
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        if let [single] = group {
            unconflicted.push(*single);
        } else {
            conflicted.push((group[0].0, group.iter().map(|e| e.1).collect()));
        }
    }
    if conflicted.is_empty() {
        return Ok(StateMap::from_sorted(unconflicted));
    }

    let mut arena = Arena::new(provider);
    let mut r = WorkingState { base: Some(&unconflicted), changes: Default::default() };
    let mut groups: Vec<(StateKeyNid, Vec<Idx>)> = Vec::with_capacity(conflicted.len());
    for (key, nids) in conflicted {
        let events: Vec<Idx> = nids.into_iter().map(|n| arena.require(n)).collect::<Result<_, _>>()?;
        groups.push((key, events));
    }

    // Power levels, then join rules, then members: each resolved against the state so far;
    // the other events last.
    let phases: [fn(&EventType) -> bool; 3] =
        [|k| *k == EventType::PowerLevels, |k| *k == EventType::JoinRules, |k| *k == EventType::Member];
    let mut done = vec![false; groups.len()];
    for in_phase in phases {
        let mut resolved = Vec::new();
        for (g, (key, events)) in groups.iter().enumerate() {
            if !done[g] && in_phase(&arena.ev(events[0]).kind) {
                done[g] = true;
                resolved.push((*key, resolve_auth_events(v, &mut arena, &r, events)));
            }
        }
        for (key, idx) in resolved {
            r.changes.insert(key, arena.ev(idx).nid);
        }
    }
    let mut resolved = Vec::new();
    for (g, (key, events)) in groups.iter().enumerate() {
        if !done[g] {
            resolved.push((*key, resolve_normal_events(v, &mut arena, &r, events)));
        }
    }
    for (key, idx) in resolved {
        r.changes.insert(key, arena.ev(idx).nid);
    }
    let mut out: Vec<(StateKeyNid, EventNid)> = unconflicted.clone();
    for (k, e) in r.changes {
        match out.binary_search_by_key(&k, |x| x.0) {
            Ok(i) => out[i].1 = e,
            Err(i) => out.insert(i, (k, e)),
        }
    }
    Ok(StateMap::from_sorted(out))
}

/// Ascending depth, then descending sha1 of the event id.
fn ordered<P: EventProvider>(arena: &Arena<'_, P>, events: &[Idx]) -> Vec<Idx> {
    let mut keyed: Vec<(i64, [u8; 20], Idx)> =
        events.iter().map(|&i| (arena.ev(i).depth, Sha1::digest(arena.ev(i).event_id.as_bytes()).into(), i)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    keyed.into_iter().map(|k| k.2).collect()
}

/// The first event in order, then each next one while it passes auth on top of the last.
fn resolve_auth_events<P: EventProvider>(
    v: &RoomVersion,
    arena: &mut Arena<'_, P>,
    r: &WorkingState<'_>,
    events: &[Idx],
) -> Idx {
    let order = ordered(arena, events);
    let mut prev = order[0];
    for &e in &order[1..] {
        if passes(v, arena, r, e, Some(prev)) {
            prev = e;
        } else {
            break;
        }
    }
    prev
}

/// The deepest event (lowest sha1 among equals) that passes auth; the shallowest if none does.
fn resolve_normal_events<P: EventProvider>(
    v: &RoomVersion,
    arena: &mut Arena<'_, P>,
    r: &WorkingState<'_>,
    events: &[Idx],
) -> Idx {
    let order = ordered(arena, events);
    for &e in order.iter().rev() {
        if passes(v, arena, r, e, None) {
            return e;
        }
    }
    order[0]
}

fn passes<P: EventProvider>(
    v: &RoomVersion,
    arena: &mut Arena<'_, P>,
    r: &WorkingState<'_>,
    e: Idx,
    extra: Option<Idx>,
) -> bool {
    let event = arena.arc(e).clone();
    let extra = extra.map(|x| (arena.key_of(x).ok(), arena.arc(x).clone()));
    let inputs = AuthInputs::gather(v, &event, |key| {
        let k = arena.provider.state_key_nid(&key.kind(), key.state_key())?;
        if let Some((Some(ek), ev)) = &extra
            && *ek == k
        {
            return Some(ev.clone());
        }
        let nid = r.get(k)?;
        arena.load(nid).map(|i| arena.arc(i).clone())
    });
    check(v, &event, &inputs.view()).is_ok()
}
