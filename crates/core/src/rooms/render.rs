//! The client format of events, kept once built. What of an event's client form depends only
//! on the event, the redaction that applies to it and the state event it replaced is built once
//! and cached; what depends on the reader (`transaction_id`, `membership`, bundled relations)
//! or on the clock (`age`) is added on every read (`read.rs`).
//!
//! A stored PDU never changes, but its metadata may (a redaction arrives, an outlier takes its
//! place in the room): a kept form records the metadata it was built from and is rebuilt when
//! the metadata read with it differs, so no invalidation has to reach the cache from writes.
//!
//! A kept form is held both as a map (for answers built as `Value`s) and as JSON text, which
//! sync and sliding sync copy into answers they write as text (`raw_json.rs`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{EventMeta, version_rules};
use crate::cache::Weighted;
use crate::error::Result;
use crate::server::Homeserver;

/// How many bytes of rendered events are kept (as counted by their stored sizes).
const RENDERED_BYTES: usize = 32 << 20;

pub(crate) type RenderCache = Weighted<String, Arc<Rendered>>;

pub(crate) fn render_cache() -> RenderCache {
    Weighted::new(RENDERED_BYTES, |id, r| id.len() + r.weight)
}

/// The reader-independent client form of one event.
pub(crate) struct Rendered {
    /// The metadata it was built from.
    redacted_by: Option<String>,
    prev_state: Option<String>,
    /// `type`, `content`, `sender`, `origin_server_ts`, `state_key`, `redacts`, `event_id`,
    /// `room_id`.
    pub fields: Map<String, Value>,
    /// `redacted_because`, `replaces_state`, `prev_content`, `prev_sender`.
    pub unsigned: Map<String, Value>,
    /// `fields` as JSON text, without the closing brace.
    pub head: String,
    /// `unsigned`'s entries as JSON text, without braces.
    pub unsigned_entries: String,
    /// `origin_server_ts`, for `age`.
    pub ts: u64,
    /// Roughly the bytes it holds: twice its stored PDU's size, what it took from others, and
    /// its text.
    weight: usize,
}

impl Rendered {
    fn built_from(&self, meta: &EventMeta) -> bool {
        self.redacted_by == meta.redacted_by && self.prev_state == meta.prev_state
    }

    pub fn kind(&self) -> Option<&str> {
        self.fields.get("type").and_then(Value::as_str)
    }

    pub fn sender(&self) -> Option<&str> {
        self.fields.get("sender").and_then(Value::as_str)
    }

    pub fn state_key(&self) -> Option<&str> {
        self.fields.get("state_key").and_then(Value::as_str)
    }
}

impl Homeserver {
    /// The reader-independent client form of a stored event whose metadata is `meta`; `None`
    /// if its PDU is not stored.
    pub(crate) fn rendered(&self, event_id: &str, meta: &EventMeta) -> Result<Option<Arc<Rendered>>> {
        if let Some(kept) = self.rendered.get(event_id)
            && kept.built_from(meta)
        {
            return Ok(Some(kept));
        }
        let Some(raw) = self.pdu_bytes(event_id)? else { return Ok(None) };
        let mut weight = raw.len() * 2 + 256;
        let mut pdu: Map<String, Value> = serde_json::from_slice(&raw)?;
        let mut unsigned = Map::new();
        if let Some(redaction_id) = &meta.redacted_by {
            let version = self.room_version(&meta.room_id)?;
            let (_, rules) = version_rules(&version)?;
            if let Ok(ruma::CanonicalJsonValue::Object(obj)) =
                ruma::CanonicalJsonValue::try_from(Value::Object(pdu.clone()))
                && let Ok(redacted) = ruma::canonical_json::redact(obj, &rules.redaction, None)
                && let Ok(Value::Object(back)) = serde_json::to_value(&redacted)
            {
                pdu = back;
            }
            if let Some(mut because) = self.client_event(redaction_id, None)? {
                // Kept, so without an age that would go stale.
                if let Some(Value::Object(u)) = because.get_mut("unsigned") {
                    u.remove("age");
                }
                weight += 512;
                unsigned.insert("redacted_because".into(), because);
            }
        }
        let ts = pdu.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
        if let Some(prev) = &meta.prev_state {
            unsigned.insert("replaces_state".into(), prev.clone().into());
            if let Some(raw) = self.pdu_bytes(prev)? {
                let mut prev_pdu: Map<String, Value> = serde_json::from_slice(&raw)?;
                if let Some(content) = prev_pdu.remove("content") {
                    weight += raw.len() * 2;
                    unsigned.insert("prev_content".into(), content);
                    if let Some(sender) = prev_pdu.remove("sender") {
                        unsigned.insert("prev_sender".into(), sender);
                    }
                }
            }
        }
        let mut fields = Map::new();
        for field in ["type", "content", "sender", "origin_server_ts", "state_key", "redacts"] {
            if let Some(v) = pdu.remove(field) {
                fields.insert(field.into(), v);
            }
        }
        // v11 moved `redacts` into the content; clients still read the top-level one.
        if fields.get("type").and_then(Value::as_str) == Some("m.room.redaction")
            && !fields.contains_key("redacts")
            && let Some(target) = fields.get("content").and_then(|c| c.get("redacts")).cloned()
        {
            fields.insert("redacts".into(), target);
        }
        fields.insert("event_id".into(), event_id.into());
        fields.insert("room_id".into(), meta.room_id.clone().into());
        let mut head = serde_json::to_string(&fields)?;
        head.pop();
        let unsigned_entries = match serde_json::to_string(&unsigned)? {
            braced if braced.len() > 2 => braced[1..braced.len() - 1].to_owned(),
            _ => String::new(),
        };
        weight += head.len() + unsigned_entries.len();
        let rendered = Arc::new(Rendered {
            redacted_by: meta.redacted_by.clone(),
            prev_state: meta.prev_state.clone(),
            fields,
            unsigned,
            head,
            unsigned_entries,
            ts,
            weight,
        });
        self.rendered.insert(event_id.to_owned(), rendered.clone());
        Ok(Some(rendered))
    }
}
