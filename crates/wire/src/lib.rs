//! What another server sends us, checked before anything else looks at it: the `X-Matrix`
//! header of a request, the envelope of a transaction, and the format, size, event id,
//! signatures and content hash of a PDU. No I/O: the caller fetches the keys a PDU needs
//! (named by [`pdu::Format::signers`]) and hands them to [`pdu::verify`]. Pure, so that the
//! fuzz targets in `fuzz/` run exactly what the server runs.

pub mod pdu;
pub mod transaction;
pub mod x_matrix;

pub use pdu::{Format, check_format, event_id, verify};
pub use transaction::Transaction;
pub use x_matrix::{XMatrix, parse_x_matrix, valid_server_name};

/// The spec's size limit of a PDU, in bytes of canonical JSON.
pub const MAX_PDU_BYTES: usize = 65_536;
/// The spec's limits on one transaction.
pub const MAX_PDUS: usize = 50;
pub const MAX_EDUS: usize = 100;
/// The most `prev_events` and `auth_events` an event may list (Synapse's limits: no room
/// needs more, and each one is work for whoever receives the event).
pub const MAX_PREV_EVENTS: usize = 20;
pub const MAX_AUTH_EVENTS: usize = 10;

/// Why something another server sent is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("{0}")]
    Format(String),
    #[error("the transaction's origin is not the server that signed the request")]
    WrongOrigin,
    #[error("signature check failed: {0}")]
    Signature(String),
}
