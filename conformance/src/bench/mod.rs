//! The side-by-side benchmark behind `bench` (`src/bin/bench.rs`): the same workloads, over
//! the client-server API only, against Tandem and against Synapse on PostgreSQL, on this
//! machine, in one run. It reports; it never fails because a number moved.

pub mod conn;
pub mod growth;
pub mod servers;
pub mod stats;
pub mod workloads;
