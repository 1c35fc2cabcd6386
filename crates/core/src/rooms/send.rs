//! Sending: messages (idempotent per device and transaction id), state, redactions.

use serde_json::Value;

use super::build::{NewEvent, SentBy};
use crate::error::{Error, Result};
use crate::server::Homeserver;

impl Homeserver {
    /// Sends a message event. A retry of the same transaction (device, room, event type and
    /// transaction id) returns the first event's id instead of sending again.
    pub fn send_message(
        &self,
        sender: &str,
        device_id: &str,
        room_id: &str,
        kind: &str,
        txn_id: &str,
        content: Value,
    ) -> Result<String> {
        if kind == "m.room.redaction" {
            let target = content.get("redacts").and_then(Value::as_str).map(str::to_owned);
            let Some(target) = target else { return Err(Error::bad_json("m.room.redaction needs content.redacts")) };
            let scope = format!("send/{room_id}/{kind}");
            let sent_by = SentBy { device_id, txn_id, scope: &scope };
            return self.redact_as(sender, sent_by, room_id, &target, content);
        }
        let scope = format!("send/{room_id}/{kind}");
        let sent_by = SentBy { device_id, txn_id, scope: &scope };
        self.write(|txn| {
            if let Some(id) = sent_by.of(sender).result(&self.db)? {
                return Ok(id);
            }
            let mut room = self.room(room_id)?;
            let event = NewEvent { kind, state_key: None, content, redacts: None, txn: Some(sent_by) };
            self.append(txn, &mut room, sender, event)
        })
    }

    /// Sets a state event. Setting the content the state already has sends nothing and
    /// returns the existing event, as Synapse does.
    pub fn send_state(
        &self,
        sender: &str,
        room_id: &str,
        kind: &str,
        state_key: &str,
        content: Value,
    ) -> Result<String> {
        if kind == "m.room.member" {
            let membership = content.get("membership").and_then(Value::as_str).unwrap_or_default().to_owned();
            let mut extra = content.as_object().cloned().ok_or_else(|| Error::bad_json("content must be an object"))?;
            extra.remove("membership");
            if membership == "join"
                && sender == state_key
                && self.current_membership(room_id, sender)?.as_deref() == Some("join")
            {
                return self.update_own_member_event(sender, room_id, |c| {
                    for (k, v) in extra {
                        c.insert(k, v);
                    }
                });
            }
            return self.set_membership(sender, room_id, state_key, &membership, None, Some(extra));
        }
        if kind == "m.room.power_levels" {
            super::levels::integers_only(&content)?;
        }
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            if let Some(existing) = room.state_id(self, kind, state_key)?
                && let Some(pdu) = self.pdu(&existing)?
                && pdu.get("sender").and_then(Value::as_str) == Some(sender)
                && pdu.get("content") == Some(&content)
            {
                return Ok(existing);
            }
            self.append(txn, &mut room, sender, NewEvent::state(kind, state_key, content))
        })
    }

    /// Redacts `target` (`PUT /redact/{target}/{txn_id}`). The sender must have sent it or have
    /// the redact power level.
    pub fn redact(
        &self,
        sender: &str,
        device_id: &str,
        room_id: &str,
        target: &str,
        txn_id: &str,
        content: Value,
    ) -> Result<String> {
        let scope = format!("redact/{room_id}/{target}");
        self.redact_as(sender, SentBy { device_id, txn_id, scope: &scope }, room_id, target, content)
    }

    fn redact_as(
        &self,
        sender: &str,
        sent_by: SentBy<'_>,
        room_id: &str,
        target: &str,
        mut content: Value,
    ) -> Result<String> {
        if !content.is_object() {
            return Err(Error::bad_json("content must be an object"));
        }
        if let Some(obj) = content.as_object_mut() {
            obj.remove("redacts");
        }
        self.write(|txn| {
            if let Some(id) = sent_by.of(sender).result(&self.db)? {
                return Ok(id);
            }
            let mut room = self.room(room_id)?;
            let original_sender = match self.event_meta(target)? {
                Some(meta) if meta.room_id == room_id => {
                    self.pdu(target)?.and_then(|p| p.get("sender").and_then(Value::as_str).map(str::to_owned))
                }
                _ => None,
            };
            if original_sender.as_deref() != Some(sender) {
                let needed = room.required_power(self, |pl| pl.redact(), 50)?;
                if room.power(self, sender)? < needed {
                    return Err(Error::forbidden("You don't have permission to redact events"));
                }
            }
            let event = NewEvent {
                kind: "m.room.redaction",
                state_key: None,
                content,
                redacts: Some(target),
                txn: Some(sent_by),
            };
            self.append(txn, &mut room, sender, event)
        })
    }
}
