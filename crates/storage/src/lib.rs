//! Tandem's storage: an embedded RocksDB behind a small key-value interface.
//!
//! The engine sees [`Db`]: named tables (RocksDB column families), point reads, ordered scans
//! and atomic write batches. A batch that [`Db::write`] returns from is on disk: its write-ahead
//! log record was synced, so it survives `kill -9` and power loss. Keys are byte strings
//! compared bytewise; [`codec`] writes integers big-endian so that scans follow numeric order.
//!
//! Invariants: no Matrix logic lives here, and nothing above this crate names RocksDB, so a
//! second backend can replace this one without touching the engine.

pub mod codec;
mod db;
mod error;

pub use db::{Batch, Db, Direction, Entry, Table};
pub use error::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;
