//! Mainline ordering of the remaining events, based on the resolved power levels event.

use rustc_hash::FxHashMap;

use super::arena::{Arena, Idx};
use crate::EventProvider;

/// Sorts `events` so that those whose power levels ancestry joins the mainline earlier (or
/// never) come first, then by `origin_server_ts`, then by event id.
pub(crate) fn mainline_sort<P: EventProvider>(
    arena: &mut Arena<'_, P>,
    events: &[Idx],
    power_levels: Option<Idx>,
) -> Vec<Idx> {
    // Position 0 is the resolved power levels event, counting back along its ancestry.
    let mut position: FxHashMap<Idx, usize> = FxHashMap::default();
    let mut mainline_len = 0;
    let mut cur = power_levels;
    while let Some(p) = cur {
        if position.contains_key(&p) {
            break; // a malformed cycle; the DAG of a real room has none
        }
        position.insert(p, mainline_len);
        mainline_len += 1;
        cur = arena.auth_power_levels(p);
    }
    // Power levels events off the mainline, memoized with the position they lead to.
    let mut off: FxHashMap<Idx, usize> = FxHashMap::default();
    let mut keyed: Vec<(usize, Idx)> = Vec::with_capacity(events.len());
    for &e in events {
        let mut path = Vec::new();
        let mut cur = arena.auth_power_levels(e);
        let pos = loop {
            let Some(p) = cur else { break usize::MAX };
            if let Some(&i) = position.get(&p) {
                break i;
            }
            if let Some(&i) = off.get(&p) {
                break i;
            }
            if path.contains(&p) {
                break usize::MAX;
            }
            path.push(p);
            cur = arena.auth_power_levels(p);
        };
        for p in path {
            off.insert(p, pos);
        }
        keyed.push((pos, e));
    }
    let arena = &*arena;
    keyed.sort_unstable_by(|&(pa, a), &(pb, b)| {
        let (ea, eb) = (arena.ev(a), arena.ev(b));
        pb.cmp(&pa).then(ea.origin_server_ts.cmp(&eb.origin_server_ts)).then(ea.event_id.cmp(&eb.event_id))
    });
    keyed.into_iter().map(|(_, e)| e).collect()
}
