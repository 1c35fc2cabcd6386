//! Message search (`/search`, `room_events`): a scan of the timelines of the rooms a user is
//! in, newest first, matching every word of the search term in the requested keys. Exact and
//! simple; a full-text index is the next step when rooms grow large.

use serde_json::{Value, json};
use tandem_storage::Direction;

use crate::error::{Error, Result};
use crate::filter::RoomEventFilter;
use crate::rooms::read::Viewer;
use crate::server::Homeserver;
use crate::tables::events;

/// How far back in each room the scan goes.
const SCAN_PER_ROOM: usize = 20_000;

pub struct SearchRequest<'a> {
    pub term: &'a str,
    /// Dotted content keys (`content.body`, `content.name`, `content.topic`).
    pub keys: Vec<String>,
    pub filter: RoomEventFilter,
    /// A `next_batch` from a previous page.
    pub before: Option<u64>,
    pub context: Option<(usize, usize)>,
}

fn field<'v>(event: &'v Value, dotted: &str) -> Option<&'v str> {
    dotted.split('.').try_fold(event, |v, k| v.get(k))?.as_str()
}

impl Homeserver {
    pub fn search(&self, viewer: Viewer<'_>, req: &SearchRequest<'_>) -> Result<Value> {
        let words: Vec<String> = req.term.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Err(Error::bad_json("search_term must not be empty"));
        }
        let limit = req.filter.limit.unwrap_or(10).clamp(1, 100) as usize;
        let mut hits: Vec<(u64, String)> = Vec::new();
        for room_id in self.joined_rooms(viewer.user_id)? {
            if !req.filter.room_allowed(&room_id) {
                continue;
            }
            let start = req.before.map_or(u64::MAX, |b| b - 1);
            for entry in events::TIMELINE.scan(&self.db, &room_id, start, Direction::Backward)?.take(SCAN_PER_ROOM) {
                let (pos, id) = entry?;
                let Some(pdu) = self.pdu(&id)? else { continue };
                let pdu = Value::Object(pdu);
                if !req.filter.matches(&pdu) {
                    continue;
                }
                let text: String =
                    req.keys.iter().filter_map(|k| field(&pdu, k)).collect::<Vec<_>>().join(" ").to_lowercase();
                if text.is_empty() || !words.iter().all(|w| text.contains(w.as_str())) {
                    continue;
                }
                if self.event_meta(&id)?.is_some_and(|m| m.redacted_by.is_some())
                    || !self.may_see(viewer.user_id, &id)?
                {
                    continue;
                }
                hits.push((pos, id));
                if hits.iter().filter(|(p, _)| *p >= pos).count() > limit {
                    // Older hits in this room cannot make the page.
                    break;
                }
            }
        }
        hits.sort_by_key(|h| std::cmp::Reverse(h.0));
        let count = hits.len();
        let more = hits.len() > limit;
        hits.truncate(limit);
        let mut results = Vec::with_capacity(hits.len());
        for (rank, (pos, id)) in hits.iter().enumerate() {
            let Some(event) = self.client_event(id, Some(viewer))? else { continue };
            let mut result = json!({ "rank": (limit - rank) as f64, "result": event });
            if let Some((before_n, after_n)) = req.context {
                result["context"] = self.search_context(viewer, id, *pos, before_n, after_n)?;
            }
            results.push(result);
        }
        let mut out = json!({ "count": count, "highlights": words, "results": results });
        if more && let Some((pos, _)) = hits.last() {
            out["next_batch"] = format!("t{pos}").into();
        }
        Ok(json!({ "search_categories": { "room_events": out } }))
    }

    fn search_context(
        &self,
        viewer: Viewer<'_>,
        event_id: &str,
        pos: u64,
        before_n: usize,
        after_n: usize,
    ) -> Result<Value> {
        let meta = self.event_meta(event_id)?.ok_or_else(|| Error::not_found("Event not found."))?;
        let keep = |id: &str| self.may_see(viewer.user_id, id);
        let (before, _) = self.timeline_slice(&meta.room_id, pos - 1, true, None, keep, before_n)?;
        let (after, _) = self.timeline_slice(&meta.room_id, pos, false, Some(self.stream_pos()), keep, after_n)?;
        let render = |list: &[(u64, String)]| -> Result<Vec<Value>> {
            list.iter().filter_map(|(_, id)| self.client_event(id, Some(viewer)).transpose()).collect()
        };
        Ok(json!({
            "events_before": render(&before)?,
            "events_after": render(&after)?,
            "start": format!("t{}", before.last().map_or(pos - 1, |(p, _)| p - 1)),
            "end": format!("t{}", after.last().map_or(pos, |(p, _)| *p)),
        }))
    }
}
