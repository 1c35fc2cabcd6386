//! Other servers' users' devices: the EDUs that keep the engine's device list cache current
//! (`m.device_list_update`, `m.signing_key_update`) and the `/user/devices` resync when an
//! update was missed.

use reqwest::Method;
use serde_json::Value;
use tandem_core::keys::cross_signing::{MASTER, SELF_SIGNING};
use tandem_core::keys::device_lists::ListUpdate;

use crate::client::server_of;
use crate::inbound::enc;
use crate::{FedError, Federation, blocking};

impl Federation {
    /// Fetches a user's devices from its server into the cache.
    pub async fn resync_devices(&self, user_id: &str) -> Result<(), FedError> {
        let server = server_of(user_id).ok_or_else(|| FedError::bad_json("bad user id"))?;
        let path = format!("/_matrix/federation/v1/user/devices/{}", enc(user_id));
        let answer = self.client.request(&self.hs, Method::GET, server, &path, None).await?;
        let (hs, u) = (self.hs.clone(), user_id.to_owned());
        blocking(move || hs.replace_remote_devices(&u, &answer)).await
    }

    /// An `m.device_list_update` from `origin`; a missed update makes us fetch the whole list.
    pub(crate) async fn device_list_update(&self, origin: &str, content: &Value) {
        let Some(user_id) = content.get("user_id").and_then(Value::as_str).map(str::to_owned) else { return };
        if server_of(&user_id) != Some(origin) || !self.shares_room_with_us(&user_id).await {
            return;
        }
        let (hs, c) = (self.hs.clone(), content.clone());
        match blocking(move || hs.apply_device_list_update(&c)).await {
            Ok(ListUpdate::Applied) => {}
            Ok(ListUpdate::Resync) => {
                if let Err(e) = self.resync_devices(&user_id).await {
                    // Stays stale: the next key query tries again.
                    tracing::info!(%user_id, "device list resync failed: {e}");
                }
            }
            Err(e) => tracing::info!(%user_id, "device list update: {e}"),
        }
    }

    /// Whether `user_id` (of another server) is in a room with us: the updates of users who
    /// are not concern nobody here and are dropped, as Synapse does.
    async fn shares_room_with_us(&self, user_id: &str) -> bool {
        let (hs, u) = (self.hs.clone(), user_id.to_owned());
        blocking(move || hs.shares_room_with_us(&u)).await.unwrap_or(false)
    }

    /// An `m.signing_key_update` from `origin`: its user's new master and self-signing keys.
    pub(crate) async fn signing_key_update(&self, origin: &str, content: &Value) {
        let Some(user_id) = content.get("user_id").and_then(Value::as_str).map(str::to_owned) else { return };
        if server_of(&user_id) != Some(origin) || !self.shares_room_with_us(&user_id).await {
            return;
        }
        let (hs, c) = (self.hs.clone(), content.clone());
        let _ = blocking(move || {
            for (kind, field) in [(MASTER, "master_key"), (SELF_SIGNING, "self_signing_key")] {
                if let Some(k) = c.get(field).filter(|k| k.is_object()) {
                    hs.store_remote_cross_signing_key(&user_id, kind, k)?;
                }
            }
            Ok(())
        })
        .await;
    }
}
