//! Shared by the differential test and the benchmark.
#![allow(dead_code)]

pub mod room_gen;
pub mod ruma_oracle;
pub mod synapse_oracle;
