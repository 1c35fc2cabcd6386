//! The room engine. So far: the server's signing key and the making of PDUs (content hash,
//! signature, reference-hash event id). Rooms, users and sync build on these (issue 3).

pub mod pdu;
pub mod server_key;
