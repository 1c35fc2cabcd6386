//! The `meta` table, and the only code that knows its keys: the counters a write hands out
//! (stream positions, state group ids, nids), the marks of upgrades done, and a few records of
//! the server's own (its retired signing keys).

use tandem_storage::codec::get_u64;
use tandem_storage::{Batch, Db, Table};

use crate::error::Result;

/// name → a counter (8 bytes big-endian), an upgrade's mark (empty), or a JSON record.
pub(super) const META: Table = Table("meta");

/// A counter's last value (0 if never written).
pub(crate) fn counter(db: &Db, name: &[u8]) -> tandem_storage::Result<u64> {
    Ok(db.get(META, name)?.and_then(|v| get_u64(&v, 0)).unwrap_or(0))
}

pub(crate) fn put_counter(batch: &mut Batch, name: &[u8], value: u64) {
    batch.put(META, name.to_vec(), value.to_be_bytes().to_vec());
}

/// Whether the mark `name` (an upgrade done) was set.
pub(crate) fn is_set(db: &Db, name: &[u8]) -> tandem_storage::Result<bool> {
    Ok(db.get(META, name)?.is_some())
}

pub(crate) fn set(batch: &mut Batch, name: &[u8]) {
    batch.put(META, name.to_vec(), Vec::new());
}

/// A JSON record of the server's own.
pub(crate) fn record<T: serde::de::DeserializeOwned>(db: &Db, name: &[u8]) -> Result<Option<T>> {
    match db.get(META, name)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn put_record(batch: &mut Batch, name: &[u8], value: &impl serde::Serialize) {
    batch.put(META, name.to_vec(), serde_json::to_vec(value).expect("serializable"));
}
