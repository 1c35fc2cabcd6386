//! The room engine: everything a homeserver knows and decides, below HTTP.
//!
//! [`Homeserver`] owns the database and the signing key; every operation is a method on it,
//! grouped by concept: [`accounts`] and [`sessions`] (who is who), [`rooms`] (events, state,
//! timelines, membership), [`sync`] (what changed for a device), and the smaller streams
//! ([`account_data`], [`receipts`], typing in [`ephemeral`], [`keys`] and to-device,
//! [`directory`], [`filter`]). Writes go through one writer that hands out global stream
//! positions and wakes long-polling syncs; see `docs/architecture.md`.

pub mod account_data;
pub mod accounts;
pub mod backup;
mod cache;
pub mod directory;
mod ephemeral;
pub mod error;
pub mod filter;
pub mod hierarchy;
pub mod inbound;
pub mod keys;
pub mod media;
pub mod network;
pub mod openid;
pub mod outbox;
pub mod pdu;
pub mod push;
mod raw_json;
pub mod receipts;
pub mod remote_keys;
pub mod reports;
pub mod rooms;
pub mod search;
pub mod server;
pub mod server_key;
pub mod server_name;
pub mod sessions;
pub mod sliding;
pub mod summary;
pub mod sync;
mod tables;
mod upgrade;

pub use error::{Error, ErrorKind, Result};
pub use server::Homeserver;
