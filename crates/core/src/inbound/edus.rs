//! EDUs of a transaction: typing and receipts of the origin's own users in rooms they are in
//! (and the room's ACL admits the origin), presence, device list and signing key updates of its
//! users who share a room with ours, and to-device messages. Unknown types are dropped; an EDU
//! never fails its transaction.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::keys::cross_signing::{MASTER, SELF_SIGNING};
use crate::keys::device_lists::ListUpdate;
use crate::server::Homeserver;
use crate::server_name::server_of;

/// How long a remote user shows as typing without a new `m.typing`.
const TYPING_FOR: Duration = Duration::from_secs(30);

impl Homeserver {
    /// Takes one EDU `origin` sent.
    pub(crate) async fn receive_edu(self: &Arc<Self>, origin: &str, edu: &Value) {
        let content = edu.get("content").cloned().unwrap_or(Value::Null);
        let (o, c) = (origin.to_owned(), content.clone());
        let outcome = match edu.get("edu_type").and_then(Value::as_str) {
            Some("m.typing") => self.blocking(move |hs| hs.receive_typing(&o, &c)).await,
            Some("m.receipt") => self.blocking(move |hs| hs.receive_receipts(&o, &c)).await,
            Some("m.presence") => self.blocking(move |hs| hs.receive_presence(&o, &c)).await,
            Some("m.direct_to_device") => self.blocking(move |hs| hs.receive_to_device(&o, &c)).await,
            Some("m.device_list_update") => {
                self.device_list_update(origin, &content).await;
                Ok(())
            }
            Some("m.signing_key_update") => self.blocking(move |hs| hs.signing_key_update(&o, &c)).await,
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            tracing::info!(%origin, edu_type = ?edu.get("edu_type"), "EDU refused: {e}");
        }
    }

    fn receive_typing(&self, origin: &str, content: &Value) -> crate::Result<()> {
        let (Some(room), Some(user)) =
            (content.get("room_id").and_then(Value::as_str), content.get("user_id").and_then(Value::as_str))
        else {
            return Ok(());
        };
        if server_of(user) != Some(origin) || !self.acl_admits(room, origin)? {
            return Ok(());
        }
        let typing = content.get("typing").and_then(Value::as_bool).unwrap_or(false);
        if self.current_membership(room, user)?.as_deref() == Some("join") {
            self.set_typing(room, user, typing.then_some(TYPING_FOR));
        }
        Ok(())
    }

    fn receive_receipts(&self, origin: &str, content: &Value) -> crate::Result<()> {
        for (room, by_type) in content.as_object().into_iter().flatten() {
            let Some(reads) = by_type.get("m.read").and_then(Value::as_object) else { continue };
            if !self.acl_admits(room, origin)? {
                continue;
            }
            for (user, receipt) in reads {
                if server_of(user) != Some(origin) {
                    continue;
                }
                let Some(event) =
                    receipt.get("event_ids").and_then(Value::as_array).and_then(|a| a.last()).and_then(Value::as_str)
                else {
                    continue;
                };
                let thread = receipt.pointer("/data/thread_id").and_then(Value::as_str);
                if let Err(e) = self.set_receipt(user, room, "m.read", event, thread) {
                    tracing::info!(%origin, %room, "receipt refused: {e}");
                }
            }
        }
        Ok(())
    }

    /// An `m.device_list_update` from `origin`; a missed update makes us fetch the whole list.
    async fn device_list_update(self: &Arc<Self>, origin: &str, content: &Value) {
        let Some(user_id) = content.get("user_id").and_then(Value::as_str).map(str::to_owned) else { return };
        let (u, c, o) = (user_id.clone(), content.clone(), origin.to_owned());
        // The updates of users who share no room with ours concern nobody here (as Synapse).
        let applied = self
            .blocking(move |hs| {
                if server_of(&u) != Some(o.as_str()) || !hs.shares_room_with_us(&u)? {
                    return Ok(None);
                }
                hs.apply_device_list_update(&c).map(Some)
            })
            .await;
        match applied {
            Ok(Some(ListUpdate::Resync)) => {
                if let Err(e) = self.resync_devices(&user_id).await {
                    // Stays stale: the next key query tries again.
                    tracing::info!(%user_id, "device list resync failed: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::info!(%user_id, "device list update: {e}"),
        }
    }

    /// An `m.signing_key_update` from `origin`: its user's new master and self-signing keys.
    fn signing_key_update(&self, origin: &str, content: &Value) -> crate::Result<()> {
        let Some(user_id) = content.get("user_id").and_then(Value::as_str) else { return Ok(()) };
        if server_of(user_id) != Some(origin) || !self.shares_room_with_us(user_id)? {
            return Ok(());
        }
        for (kind, field) in [(MASTER, "master_key"), (SELF_SIGNING, "self_signing_key")] {
            if let Some(k) = content.get(field).filter(|k| k.is_object()) {
                self.store_remote_cross_signing_key(user_id, kind, k)?;
            }
        }
        Ok(())
    }
}
