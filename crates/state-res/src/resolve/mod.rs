//! State resolution: v1 (room version 1), v2 (2–11) and v2.1 (12).
//!
//! One module per step of the spec's algorithm: [`split`], [`auth_difference`],
//! [`conflicted_subgraph`], [`power_sort`], [`iterative_auth_check`], [`mainline_sort`].

mod arena;
mod auth_difference;
mod conflicted_subgraph;
mod iterative_auth_check;
mod mainline_sort;
mod power_sort;
mod split;
mod v1;
mod v2;

use crate::event::EventNid;
use crate::{Error, EventProvider, RoomVersion, StateMap, StateResAlgorithm};

/// Resolves `state_sets` (the states after each fork) into one state, by the algorithm of
/// `version`.
///
/// `auth_chains`, when given, holds for each state set the ids of its full auth chain, sorted
/// ascending (with or without the set's own events); without it the chains are walked through
/// `provider`. Events the provider lacks are left out of the resolution, as the spec asks for
/// events that cannot be verified; an event needed to place another (its power levels
/// ancestry) may be missing without error.
pub fn resolve<P: EventProvider>(
    version: &RoomVersion,
    state_sets: &[&StateMap],
    auth_chains: Option<&[&[EventNid]]>,
    provider: &P,
) -> Result<StateMap, Error> {
    match state_sets {
        [] => return Err(Error::NoStateSets),
        [only] => return Ok((*only).clone()),
        _ => {}
    }
    if auth_chains.is_some_and(|c| c.len() != state_sets.len()) {
        return Err(Error::MalformedEvent("one auth chain per state set is needed".into()));
    }
    if auth_chains.is_some_and(|chains| chains.iter().any(|c| !c.is_sorted())) {
        return Err(Error::MalformedEvent("auth chains must be sorted".into()));
    }
    match version.state_res {
        StateResAlgorithm::V1 => v1::resolve(version, state_sets, provider),
        StateResAlgorithm::V2 | StateResAlgorithm::V2_1 => v2::resolve(version, state_sets, auth_chains, provider),
    }
}
