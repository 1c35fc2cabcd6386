//! The transaction tables, and the only code that knows their keys: client transaction ids
//! (sends, redactions and to-device messages taken once per device and request path) and what
//! other servers sent (inbound transactions with the answer given, to-device message ids), the
//! latter kept a day.

use serde_json::{Value, json};
use tandem_storage::{Batch, Db, Table};

use super::key;
use crate::error::Result;

/// user_id, device_id, request path, txn_id → event_id (or "" for to-device messages):
/// idempotent client requests.
pub(super) const TXNS: Table = Table("txns");
/// origin server, transaction id → `{ts, answer}`, the response we gave: inbound transactions
/// are idempotent. origin, "", "to_device", message_id → `{ts}`: to-device EDUs taken once.
pub(super) const FEDERATION_TXNS: Table = Table("federation_txns");

/// A client transaction: who sent it, from which device, on which request path
/// (`send/{room}/{type}`, `redact/{room}/{event}`, `sendToDevice/{type}`), and its id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientTxn<'a> {
    pub sender: &'a str,
    pub device_id: &'a str,
    pub scope: &'a str,
    pub txn_id: &'a str,
}

impl ClientTxn<'_> {
    fn key(&self) -> Vec<u8> {
        key(&[self.sender, self.device_id, self.scope, self.txn_id])
    }

    /// What the transaction gave the first time (an event id; empty for to-device).
    pub(crate) fn result(&self, db: &Db) -> Result<Option<String>> {
        Ok(db.get(TXNS, &self.key())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub(crate) fn put(&self, batch: &mut Batch, result: &str) {
        batch.put(TXNS, self.key(), result.as_bytes().to_vec());
    }
}

/// The record of an inbound transaction from `origin`: the answer given.
pub(crate) fn federation_txn(db: &Db, origin: &str, txn_id: &str) -> Result<Option<Value>> {
    let Some(bytes) = db.get(FEDERATION_TXNS, &key(&[origin, txn_id]))? else { return Ok(None) };
    let record: Value = serde_json::from_slice(&bytes)?;
    // Records written before they were timestamped are the answer itself.
    Ok(Some(match record.get("answer") {
        Some(answer) if record.get("ts").is_some() => answer.clone(),
        _ => record,
    }))
}

pub(crate) fn put_federation_txn(batch: &mut Batch, origin: &str, txn_id: &str, answer: &Value, now: u64) {
    let record = json!({ "ts": now, "answer": answer });
    batch.put(FEDERATION_TXNS, key(&[origin, txn_id]), record.to_string().into_bytes());
}

/// Whether a to-device message `origin` sent was taken already (kept a day; earlier versions
/// kept the marker among client transactions, for ever).
pub(crate) fn to_device_seen(db: &Db, origin: &str, message_id: &str) -> Result<bool> {
    let legacy = key(&[origin, "", &format!("to_device/{message_id}")]);
    Ok(db.get(FEDERATION_TXNS, &key(&[origin, "", "to_device", message_id]))?.is_some()
        || db.get(TXNS, &legacy)?.is_some())
}

pub(crate) fn put_to_device_seen(batch: &mut Batch, origin: &str, message_id: &str, now: u64) {
    batch.put(
        FEDERATION_TXNS,
        key(&[origin, "", "to_device", message_id]),
        json!({ "ts": now }).to_string().into_bytes(),
    );
}

/// Deletes, in `batch`, what other servers sent before `older_than` (ms since the epoch).
pub(crate) fn prune_received(db: &Db, batch: &mut Batch, older_than: u64) -> Result<()> {
    for entry in db.scan_prefix(FEDERATION_TXNS, &[])? {
        let (k, v) = entry?;
        let ts = serde_json::from_slice::<Value>(&v).ok().and_then(|r| r.get("ts").and_then(Value::as_u64));
        if ts.unwrap_or(0) < older_than {
            batch.delete(FEDERATION_TXNS, k.into_vec());
        }
    }
    Ok(())
}
