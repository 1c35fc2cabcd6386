//! To-device messages: from a local client (`/sendToDevice`) to local devices, and to other
//! servers' users as one `m.direct_to_device` EDU per server, queued in the same write; from
//! other servers' EDUs to local devices, once per `message_id`. A device's messages are deleted
//! once its client acknowledges the sync that carried them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::outbox::Outgoing;
use crate::server::{Homeserver, Txn};
use crate::tables::txns::{self, ClientTxn};
use crate::tables::{TO_DEVICE, key, key_pos, trailing_pos};

impl Homeserver {
    /// Removes, in the write, the messages a deleted device had yet to receive.
    pub(crate) fn stage_delete_inbox(&self, txn: &mut Txn, user_id: &str, device_id: &str) -> Result<()> {
        for entry in self.db.scan_prefix(TO_DEVICE, &key(&[user_id, device_id]))? {
            txn.batch.delete(TO_DEVICE, entry?.0.into_vec());
        }
        Ok(())
    }

    /// `/sendToDevice` (`*` for all of a user's devices).
    pub fn send_to_device(
        &self,
        sender: &str,
        sender_device: &str,
        kind: &str,
        txn_id: &str,
        messages: &Value,
    ) -> Result<()> {
        let messages = messages.as_object().ok_or_else(|| Error::bad_json("messages must be an object"))?;
        for devices in messages.values() {
            if !devices.is_object() {
                return Err(Error::bad_json("expected an object of devices"));
            }
        }
        self.write(|txn| {
            // Scoped by event type as well, like every client transaction (the request path).
            let scope = format!("sendToDevice/{kind}");
            let client_txn = ClientTxn { sender, device_id: sender_device, scope: &scope, txn_id };
            if client_txn.result(&self.db)?.is_some() {
                return Ok(());
            }
            client_txn.put(&mut txn.batch, "");
            let mut remote: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
            for (user_id, devices) in messages {
                if self.is_local(user_id) {
                    self.deliver_to_devices(txn, sender, kind, user_id, devices)?;
                } else if let Some((_, server)) = user_id.split_once(':') {
                    remote.entry(server).or_default().insert(user_id.clone(), devices.clone());
                }
            }
            for (server, messages) in remote {
                let message_id = format!("{sender_device}{}", txn.pos());
                let edu = json!({
                    "edu_type": "m.direct_to_device",
                    "content": { "sender": sender, "type": kind, "message_id": message_id, "messages": messages },
                });
                self.enqueue(txn, server, Outgoing::Edu(edu));
            }
            Ok(())
        })
    }

    fn deliver_to_devices(
        &self,
        txn: &mut Txn,
        sender: &str,
        kind: &str,
        user_id: &str,
        devices: &Value,
    ) -> Result<()> {
        for (device_id, content) in devices.as_object().into_iter().flatten() {
            let targets: Vec<String> = if device_id == "*" {
                self.devices(user_id)?.into_iter().map(|d| d.device_id).collect()
            } else {
                vec![device_id.clone()]
            };
            for target in targets {
                let pos = txn.pos();
                let message = json!({ "sender": sender, "type": kind, "content": content });
                txn.put_json(TO_DEVICE, key_pos(&[user_id, &target], pos), &message);
            }
        }
        Ok(())
    }

    /// An `m.direct_to_device` EDU from `origin` (whose user must be the sender): delivered to
    /// the local devices it names, once per `message_id`.
    pub fn receive_to_device(&self, origin: &str, content: &Value) -> Result<()> {
        let (Some(sender), Some(kind), Some(message_id), Some(messages)) = (
            content.get("sender").and_then(Value::as_str),
            content.get("type").and_then(Value::as_str),
            content.get("message_id").and_then(Value::as_str),
            content.get("messages").and_then(Value::as_object),
        ) else {
            return Err(Error::bad_json("m.direct_to_device needs sender, type, message_id and messages"));
        };
        if sender.split_once(':').map(|(_, s)| s) != Some(origin) {
            return Err(Error::forbidden("the sender is not on the server that sent the message"));
        }
        self.write(|txn| {
            if txns::to_device_seen(&self.db, origin, message_id)? {
                return Ok(());
            }
            txns::put_to_device_seen(&mut txn.batch, origin, message_id, Self::now_ms());
            for (user_id, devices) in messages {
                if self.is_local(user_id) {
                    self.deliver_to_devices(txn, sender, kind, user_id, devices)?;
                }
            }
            Ok(())
        })
    }

    /// To-device messages for a device after `since`; those up to `since` were acknowledged by
    /// the client's use of that token and are deleted.
    pub fn to_device_since(&self, user_id: &str, device_id: &str, since: u64, up_to: u64) -> Result<Vec<Value>> {
        let prefix = key(&[user_id, device_id]);
        let mut out = Vec::new();
        let mut acknowledged = Vec::new();
        for entry in self.db.scan_prefix(TO_DEVICE, &prefix)? {
            let (k, v) = entry?;
            let pos = trailing_pos(&k);
            if pos <= since {
                acknowledged.push(k.into_vec());
            } else if pos <= up_to {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        if !acknowledged.is_empty() {
            self.write(|txn| {
                for k in acknowledged {
                    txn.batch.delete(TO_DEVICE, k);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}
