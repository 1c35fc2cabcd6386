//! Other servers' signing keys, as fetched from them or from a notary, kept until they expire,
//! and the transactions other servers have sent us (so a retried transaction is answered the
//! same way without being processed twice).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::server::Homeserver;
use crate::tables::{REMOTE_KEYS, key, meta, split, txns};

/// One verify key of another server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteKey {
    /// Unpadded base64 of the ed25519 public key.
    pub key: String,
    /// Until when signatures made now may be trusted (ms since the epoch).
    pub valid_until_ts: u64,
    /// For an old key: when it stopped being used; signatures from before stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_ts: Option<u64>,
}

impl Homeserver {
    /// The keys of `server` this server knows, by key id.
    pub fn remote_keys(&self, server: &str) -> Result<BTreeMap<String, RemoteKey>> {
        Ok(self
            .scan_json::<RemoteKey>(REMOTE_KEYS, &key(&[server]))?
            .into_iter()
            .filter_map(|(k, v)| split(&k).get(1).map(|id| (id.to_string(), v)))
            .collect())
    }

    /// Remembers keys of `server`; a key already known keeps the later of the two validities.
    pub fn store_remote_keys(&self, server: &str, keys: &BTreeMap<String, RemoteKey>) -> Result<()> {
        let known = self.remote_keys(server)?;
        let mut batch = tandem_storage::Batch::new();
        for (id, new) in keys {
            let mut new = new.clone();
            if let Some(old) = known.get(id) {
                new.valid_until_ts = new.valid_until_ts.max(old.valid_until_ts);
            }
            batch.put(REMOTE_KEYS, key(&[server, id]), serde_json::to_vec(&new)?);
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Keys this server signed with before its current one: `{key_id: {key, expired_ts}}`.
    pub fn old_signing_keys(&self) -> serde_json::Map<String, Value> {
        meta::record(&self.db, b"old_verify_keys").ok().flatten().unwrap_or_default()
    }

    /// Retires `old` (this server's key until now) as of now, for `old_verify_keys`.
    pub fn retire_signing_key(&self, old: &crate::server_key::ServerKey) -> Result<()> {
        let mut keys = self.old_signing_keys();
        keys.insert(old.key_id(), serde_json::json!({ "key": old.public_key_base64(), "expired_ts": Self::now_ms() }));
        let mut batch = tandem_storage::Batch::new();
        meta::put_record(&mut batch, b"old_verify_keys", &keys);
        self.db.write(batch)?;
        Ok(())
    }

    /// The response given to an earlier transaction `txn_id` from `origin`.
    pub fn federation_txn(&self, origin: &str, txn_id: &str) -> Result<Option<Value>> {
        txns::federation_txn(&self.db, origin, txn_id)
    }

    pub fn store_federation_txn(&self, origin: &str, txn_id: &str, response: &Value) -> Result<()> {
        let mut batch = tandem_storage::Batch::new();
        txns::put_federation_txn(&mut batch, origin, txn_id, response, Self::now_ms());
        self.db.write(batch)?;
        Ok(())
    }

    /// Forgets which transactions and to-device messages other servers sent before
    /// `older_than` (ms since the epoch): a server retries a transaction until it gets an
    /// answer, minutes, not days (Synapse keeps them a day too). Returns how many went.
    pub fn prune_received(&self, older_than: u64) -> Result<usize> {
        let mut batch = tandem_storage::Batch::new();
        txns::prune_received(&self.db, &mut batch, older_than)?;
        let n = batch.len();
        if n > 0 {
            self.db.write(batch)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::Homeserver;

    /// Received transactions and to-device ids are answered the same way while kept, and
    /// forgotten once old; the pruning spares newer ones.
    #[test]
    fn received_records_are_pruned() {
        let (_dir, hs) = crate::server::test_server();
        let answer = json!({ "pdus": {} });
        hs.store_federation_txn("a.org", "t1", &answer).unwrap();
        let message = json!({ "sender": "@m:a.org", "type": "m.x", "message_id": "m1", "messages": {} });
        hs.receive_to_device("a.org", &message).unwrap();
        assert_eq!(hs.federation_txn("a.org", "t1").unwrap(), Some(answer.clone()));
        assert_eq!(hs.prune_received(0).unwrap(), 0, "nothing is older than the epoch");
        let later = Homeserver::now_ms() + 1;
        assert_eq!(hs.prune_received(later).unwrap(), 2);
        assert_eq!(hs.federation_txn("a.org", "t1").unwrap(), None);
    }
}
