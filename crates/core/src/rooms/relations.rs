//! Relations (MSC2675/MSC2836 as specified in v1.3+): `/relations`, threads, and the bundled
//! aggregations (`unsigned["m.relations"]`) that clients read off a related-to event.

use serde_json::{Map, Value, json};
use tandem_storage::Direction;

use super::messages::{pagination_token, parse_token};
use super::read::Viewer;
use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::tables::events;

/// One relating event: its position, id and PDU.
struct Related {
    pos: u64,
    event_id: String,
    pdu: Map<String, Value>,
}

fn rel_type(pdu: &Map<String, Value>) -> Option<&str> {
    pdu.get("content")?.get("m.relates_to")?.get("rel_type")?.as_str()
}

impl Homeserver {
    /// Relating events of `event_id`, newest first when `backward`.
    fn related(&self, event_id: &str, from: Option<u64>, backward: bool) -> Result<Vec<Related>> {
        let (start, dir) = match (from, backward) {
            (Some(p), true) => (p, Direction::Backward),
            (None, true) => (u64::MAX, Direction::Backward),
            (Some(p), false) => (p + 1, Direction::Forward),
            (None, false) => (0, Direction::Forward),
        };
        let mut out = Vec::new();
        for entry in events::RELATIONS.scan(&self.db, event_id, start, dir)? {
            let (pos, event_id) = entry?;
            if let Some(pdu) = self.pdu(&event_id)? {
                out.push(Related { pos, event_id, pdu });
            }
        }
        Ok(out)
    }

    /// `/relations/{eventId}[/{relType}[/{eventType}]]`.
    #[allow(clippy::too_many_arguments)]
    pub fn relations(
        &self,
        viewer: Viewer<'_>,
        room_id: &str,
        event_id: &str,
        rel: Option<&str>,
        event_type: Option<&str>,
        from: Option<&str>,
        backward: bool,
        limit: usize,
    ) -> Result<Value> {
        self.room_access(viewer.user_id, room_id)?;
        if !self.may_see(viewer.user_id, event_id)? {
            return Err(Error::not_found("Event not found."));
        }
        let from = from.map(|t| parse_token(t).ok_or_else(|| Error::invalid_param("Invalid token"))).transpose()?;
        let limit = limit.clamp(1, 1000);
        let mut chunk = Vec::new();
        let mut next = None;
        for r in self.related(event_id, from, backward)? {
            if rel.is_some_and(|want| rel_type(&r.pdu) != Some(want))
                || event_type.is_some_and(|want| r.pdu.get("type").and_then(Value::as_str) != Some(want))
                || !self.may_see(viewer.user_id, &r.event_id)?
            {
                continue;
            }
            if chunk.len() == limit {
                next = Some(pagination_token(if backward { r.pos } else { r.pos - 1 }));
                break;
            }
            if let Some(e) = self.client_event(&r.event_id, Some(viewer))? {
                chunk.push(e);
            }
        }
        let mut out = json!({ "chunk": chunk });
        if let Some(n) = next {
            out["next_batch"] = n.into();
        }
        Ok(out)
    }

    /// `unsigned["m.relations"]` of an event: thread summary, latest edit, references.
    pub(crate) fn bundled_relations(&self, event_id: &str, viewer: Viewer<'_>) -> Result<Option<Value>> {
        let related = self.related(event_id, None, false)?;
        if related.is_empty() {
            return Ok(None);
        }
        let mut bundle = Map::new();
        let thread: Vec<&Related> = related.iter().filter(|r| rel_type(&r.pdu) == Some("m.thread")).collect();
        if let Some(latest) = thread.last() {
            let participated =
                thread.iter().any(|r| r.pdu.get("sender").and_then(Value::as_str) == Some(viewer.user_id))
                    || self
                        .pdu(event_id)?
                        .and_then(|p| p.get("sender").cloned())
                        .and_then(|s| s.as_str().map(|s| s == viewer.user_id))
                        .unwrap_or(false);
            if let Some(latest_event) = self.client_event(&latest.event_id, Some(viewer))? {
                bundle.insert(
                    "m.thread".into(),
                    json!({ "latest_event": latest_event, "count": thread.len(), "current_user_participated": participated }),
                );
            }
        }
        let original_sender = self.pdu(event_id)?.and_then(|p| p.get("sender").cloned());
        if let Some(edit) = related
            .iter()
            .rev()
            .find(|r| rel_type(&r.pdu) == Some("m.replace") && r.pdu.get("sender") == original_sender.as_ref())
            && let Some(e) = self.client_event(&edit.event_id, Some(viewer))?
        {
            bundle.insert("m.replace".into(), e);
        }
        let references: Vec<Value> = related
            .iter()
            .filter(|r| rel_type(&r.pdu) == Some("m.reference"))
            .map(|r| json!({ "event_id": r.event_id }))
            .collect();
        if !references.is_empty() {
            bundle.insert("m.reference".into(), json!({ "chunk": references }));
        }
        Ok((!bundle.is_empty()).then_some(Value::Object(bundle)))
    }

    /// `/rooms/{roomId}/threads`: thread roots, most recently active first. Found by walking
    /// the timeline back (at most `SCAN` events), so very old threads may be missing.
    pub fn threads(
        &self,
        viewer: Viewer<'_>,
        room_id: &str,
        participated_only: bool,
        from: Option<&str>,
        limit: usize,
    ) -> Result<Value> {
        const SCAN: usize = 20_000;
        self.room_access(viewer.user_id, room_id)?;
        let start = match from {
            Some(t) => parse_token(t).ok_or_else(|| Error::invalid_param("Invalid token"))?,
            None => u64::MAX,
        };
        let mut seen = std::collections::HashSet::new();
        let mut chunk = Vec::new();
        let mut next = None;
        for entry in events::TIMELINE.scan(&self.db, room_id, start, Direction::Backward)?.take(SCAN) {
            let (pos, id) = entry?;
            let Some(pdu) = self.pdu(&id)? else { continue };
            if rel_type(&pdu) != Some("m.thread") {
                continue;
            }
            let Some(root) = pdu["content"]["m.relates_to"]["event_id"].as_str().map(str::to_owned) else { continue };
            if !seen.insert(root.clone()) || !self.may_see(viewer.user_id, &root)? {
                continue;
            }
            let Some(event) = self.client_event(&root, Some(viewer))? else { continue };
            if participated_only
                && !event["unsigned"]["m.relations"]["m.thread"]["current_user_participated"].as_bool().unwrap_or(false)
            {
                continue;
            }
            if chunk.len() == limit.clamp(1, 100) {
                next = Some(pagination_token(pos));
                break;
            }
            chunk.push(event);
        }
        let mut out = json!({ "chunk": chunk });
        if let Some(n) = next {
            out["next_batch"] = n.into();
        }
        Ok(out)
    }
}
