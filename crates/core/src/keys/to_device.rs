//! To-device messages: from a local client (`/sendToDevice`) to local devices, and to other
//! servers' users as one `m.direct_to_device` EDU per server, queued in the same write; from
//! other servers' EDUs to local devices, once per `message_id`. A device's messages are deleted
//! once its client acknowledges the sync that carried them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::outbox::Outgoing;
use crate::server::{Homeserver, Txn};
use crate::tables::{FEDERATION_TXNS, TO_DEVICE, TXNS, key, key_pos, trailing_pos};

impl Homeserver {
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
            let txn_key = key(&[sender, sender_device, &format!("sendToDevice/{kind}"), txn_id]);
            if self.db.get(TXNS, &txn_key)?.is_some() {
                return Ok(());
            }
            txn.batch.put(TXNS, txn_key, Vec::new());
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
            // Earlier versions kept the marker in TXNS, for ever.
            let legacy = key(&[origin, "", &format!("to_device/{message_id}")]);
            let seen = key(&[origin, "", "to_device", message_id]);
            if self.db.get(FEDERATION_TXNS, &seen)?.is_some() || self.db.get(TXNS, &legacy)?.is_some() {
                return Ok(());
            }
            txn.put_json(FEDERATION_TXNS, seen, &json!({ "ts": Self::now_ms() }));
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
