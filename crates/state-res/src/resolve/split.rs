//! The unconflicted state map and the conflicted state set: a merge of sorted state maps.

use crate::StateMap;
use crate::event::{EventNid, StateKeyNid};

pub(crate) struct Split {
    pub unconflicted: Vec<(StateKeyNid, EventNid)>,
    /// Every event of a conflicted key, deduplicated, sorted.
    pub conflicted: Vec<EventNid>,
    /// For each state set, its events at conflicted keys.
    pub conflicted_by_set: Vec<Vec<EventNid>>,
}

/// A key is unconflicted when every state set holds it with the same event.
pub(crate) fn split(sets: &[&StateMap]) -> Split {
    let mut cursors = vec![0usize; sets.len()];
    let mut out = Split {
        unconflicted: Vec::with_capacity(sets.iter().map(|s| s.len()).min().unwrap_or(0)),
        conflicted: Vec::new(),
        conflicted_by_set: vec![Vec::new(); sets.len()],
    };
    while let Some(key) = sets.iter().zip(&cursors).filter_map(|(s, &c)| s.entries().get(c).map(|e| e.0)).min() {
        let mut first: Option<EventNid> = None;
        let mut same = true;
        for (s, c) in sets.iter().zip(cursors.iter()) {
            match s.entries().get(*c) {
                Some(&(k, ev)) if k == key => match first {
                    None => first = Some(ev),
                    Some(f) => same &= f == ev,
                },
                _ => same = false,
            }
        }
        if same {
            out.unconflicted.push((key, first.expect("the minimum comes from some set")));
            for c in cursors.iter_mut() {
                *c += 1;
            }
            continue;
        }
        for (i, (s, c)) in sets.iter().zip(cursors.iter_mut()).enumerate() {
            if let Some(&(k, ev)) = s.entries().get(*c)
                && k == key
            {
                out.conflicted.push(ev);
                out.conflicted_by_set[i].push(ev);
                *c += 1;
            }
        }
    }
    out.conflicted.sort_unstable();
    out.conflicted.dedup();
    out
}
