//! Dehydrated devices (MSC3814, as Element uses it): a device with keys but no access token,
//! whose encrypted state the client stores here so that to-device messages (room keys) sent
//! while the user has no device online can be collected later by a new device.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::sessions::Device;
use crate::tables::{DEHYDRATED_DEVICES, key};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Dehydrated {
    device_id: String,
    device_data: Value,
}

impl Homeserver {
    fn dehydrated(&self, user_id: &str) -> Result<Option<Dehydrated>> {
        self.get_json(DEHYDRATED_DEVICES, &key(&[user_id]))
    }

    /// `PUT /dehydrated_device`: replaces the user's dehydrated device (the old one is deleted)
    /// and uploads the new one's keys.
    pub fn put_dehydrated_device(&self, user_id: &str, body: &Value) -> Result<String> {
        let device_id = body
            .get("device_id")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty() && d.len() <= 255)
            .ok_or_else(|| Error::bad_json("device_id is required"))?
            .to_owned();
        let device_data = body.get("device_data").filter(|d| d.is_object()).cloned();
        let device_data = device_data.ok_or_else(|| Error::bad_json("device_data must be an object"))?;
        if self.device(user_id, &device_id)?.is_some()
            && self.dehydrated(user_id)?.is_none_or(|d| d.device_id != device_id)
        {
            return Err(Error::invalid_param("A device with this id exists already"));
        }
        if let Some(old) = self.dehydrated(user_id)? {
            self.delete_devices(user_id, &[old.device_id])?;
        }
        let name = body.get("initial_device_display_name").and_then(Value::as_str).map(str::to_owned);
        self.write(|txn| {
            let device = Device { device_id: device_id.clone(), display_name: name, ..Device::default() };
            self.stage_device(txn, user_id, &device);
            txn.put_json(
                DEHYDRATED_DEVICES,
                key(&[user_id]),
                &Dehydrated { device_id: device_id.clone(), device_data },
            );
            Ok(())
        })?;
        let keys = json!({
            "device_keys": body.get("device_keys"),
            "one_time_keys": body.get("one_time_keys"),
            "fallback_keys": body.get("fallback_keys"),
        });
        self.upload_keys(user_id, &device_id, &keys)?;
        Ok(device_id)
    }

    /// `GET /dehydrated_device`.
    pub fn get_dehydrated_device(&self, user_id: &str) -> Result<Value> {
        let d = self.dehydrated(user_id)?.ok_or_else(|| Error::not_found("No dehydrated device available"))?;
        Ok(json!({ "device_id": d.device_id, "device_data": d.device_data }))
    }

    /// `DELETE /dehydrated_device`: the device id it had.
    pub fn delete_dehydrated_device(&self, user_id: &str) -> Result<String> {
        let d = self.dehydrated(user_id)?.ok_or_else(|| Error::not_found("No dehydrated device available"))?;
        self.write(|txn| {
            txn.batch.delete(DEHYDRATED_DEVICES, key(&[user_id]));
            Ok(())
        })?;
        self.delete_devices(user_id, std::slice::from_ref(&d.device_id))?;
        Ok(d.device_id)
    }

    /// `POST /dehydrated_device/{deviceId}/events`: the device's to-device messages after
    /// `next_batch` (those before it are acknowledged and deleted).
    pub fn dehydrated_device_events(&self, user_id: &str, device_id: &str, next_batch: Option<&str>) -> Result<Value> {
        if self.dehydrated(user_id)?.is_none_or(|d| d.device_id != device_id) {
            return Err(Error::forbidden("Not the user's dehydrated device"));
        }
        let since = match next_batch {
            Some(t) => t.parse().map_err(|_| Error::invalid_param("Invalid next_batch"))?,
            None => 0,
        };
        let now = self.stream_pos();
        let events = self.to_device_since(user_id, device_id, since, now)?;
        Ok(json!({ "events": events, "next_batch": now.to_string() }))
    }
}
