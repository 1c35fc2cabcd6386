//! Paginating a room's timeline: `/messages` and `/context`. A pagination token `t<pos>`
//! stands between the event at stream position `pos` and the next one; sync's `s<pos>_…`
//! tokens are accepted in its place.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tandem_storage::Direction;

use super::read::{Access, Viewer};
use crate::error::{Error, Result};
use crate::filter::RoomEventFilter;
use crate::server::Homeserver;
use crate::tables::{TIMELINE, key, key_pos, trailing_pos};

pub fn parse_token(token: &str) -> Option<u64> {
    let digits = token.strip_prefix('t').or_else(|| token.strip_prefix('s')).unwrap_or(token);
    digits.split('_').next()?.parse().ok()
}

pub fn pagination_token(pos: u64) -> String {
    format!("t{pos}")
}

/// What `/messages` returns, before shaping.
pub struct Page {
    pub chunk: Vec<Value>,
    pub start: String,
    pub end: Option<String>,
    pub state: Vec<Value>,
}

impl Homeserver {
    /// Up to `limit` `(pos, event_id)` of a room's timeline from `from` in `dir`, in that order.
    /// Backward from `from` means positions `<= from`; forward means `> from`.
    pub(crate) fn timeline_slice(
        &self,
        room_id: &str,
        from: u64,
        backward: bool,
        bound: Option<u64>,
        mut keep: impl FnMut(&str) -> Result<bool>,
        limit: usize,
    ) -> Result<(Vec<(u64, String)>, bool)> {
        let prefix = key(&[room_id]);
        let (start, dir) = if backward {
            (key_pos(&[room_id], from), Direction::Backward)
        } else {
            (key_pos(&[room_id], from.saturating_add(1)), Direction::Forward)
        };
        let mut out = Vec::new();
        let mut more = false;
        for entry in self.db.scan(TIMELINE, &prefix, &start, dir)? {
            let (k, v) = entry?;
            let pos = trailing_pos(&k);
            if bound.is_some_and(|b| if backward { pos <= b } else { pos > b }) {
                break;
            }
            let event_id = String::from_utf8_lossy(&v).into_owned();
            if !keep(&event_id)? {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push((pos, event_id));
        }
        Ok((out, more))
    }

    /// `/messages`.
    #[allow(clippy::too_many_arguments)]
    pub fn messages(
        &self,
        viewer: Viewer<'_>,
        room_id: &str,
        from: Option<&str>,
        to: Option<&str>,
        backward: bool,
        limit: usize,
        filter: &RoomEventFilter,
    ) -> Result<Page> {
        let access = self.room_access(viewer.user_id, room_id)?;
        let parse = |t: &str| parse_token(t).ok_or_else(|| Error::invalid_param(format!("Invalid token {t:?}")));
        let ceiling = match &access {
            Access::Left { pos, .. } => *pos,
            _ => self.stream_pos(),
        };
        let from = match from {
            Some(t) => parse(t)?.min(ceiling),
            None if backward => ceiling,
            None => 0,
        };
        let to = to.map(parse).transpose()?;
        let limit = limit.clamp(1, 1000);
        let (events, more) = self.timeline_slice(
            room_id,
            from,
            backward,
            to.or((!backward).then_some(ceiling)),
            |id| self.visible_and_matching(viewer.user_id, id, filter),
            limit,
        )?;
        let mut chunk = Vec::with_capacity(events.len());
        let mut senders = BTreeSet::new();
        for (_, id) in &events {
            if let Some(e) = self.client_event(id, Some(viewer))? {
                if let Some(s) = e["sender"].as_str() {
                    senders.insert(s.to_owned());
                }
                chunk.push(e);
            }
        }
        let end = match events.last() {
            Some((pos, _)) if more => Some(pagination_token(if backward { pos - 1 } else { *pos })),
            Some((pos, _)) if !backward => Some(pagination_token(*pos)),
            _ => None,
        };
        let state = if filter.lazy_load_members {
            self.member_events_of(viewer.user_id, room_id, &senders)?
        } else {
            Vec::new()
        };
        Ok(Page { chunk, start: pagination_token(from), end, state })
    }

    fn visible_and_matching(&self, user_id: &str, event_id: &str, filter: &RoomEventFilter) -> Result<bool> {
        if filter.is_restrictive() {
            let Some(pdu) = self.pdu(event_id)? else { return Ok(false) };
            if !filter.matches(&Value::Object(pdu)) {
                return Ok(false);
            }
        }
        self.may_see(user_id, event_id)
    }

    /// The current member events of `users` in a room, for lazy-loading.
    pub(crate) fn member_events_of(
        &self,
        user_id: &str,
        room_id: &str,
        users: &BTreeSet<String>,
    ) -> Result<Vec<Value>> {
        let map = self.visible_state(user_id, room_id)?;
        let mut out = Vec::new();
        for user in users {
            if let Some(id) = map.get(&("m.room.member".to_owned(), user.clone()))
                && let Some(e) = self.client_event(id, None)?
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// `/context/{eventId}`.
    pub fn context(
        &self,
        viewer: Viewer<'_>,
        room_id: &str,
        event_id: &str,
        limit: usize,
        filter: &RoomEventFilter,
    ) -> Result<Value> {
        self.room_access(viewer.user_id, room_id)?;
        let not_found = || Error::not_found("Event not found.");
        let meta = self.event_meta(event_id)?.ok_or_else(not_found)?;
        if meta.room_id != room_id || !self.may_see(viewer.user_id, event_id)? {
            return Err(not_found());
        }
        let event = self.client_event(event_id, Some(viewer))?.ok_or_else(not_found)?;
        let limit = limit.min(100);
        let before_n = limit / 2;
        let after_n = limit - before_n;
        let keep = |id: &str| self.visible_and_matching(viewer.user_id, id, filter);
        let (before, _) = self.timeline_slice(room_id, meta.pos - 1, true, None, keep, before_n)?;
        let (after, _) = self.timeline_slice(room_id, meta.pos, false, Some(self.stream_pos()), keep, after_n)?;
        let mut senders = BTreeSet::new();
        let mut render = |list: &[(u64, String)]| -> Result<Vec<Value>> {
            let mut out = Vec::new();
            for (_, id) in list {
                if let Some(e) = self.client_event(id, Some(viewer))? {
                    if let Some(s) = e["sender"].as_str() {
                        senders.insert(s.to_owned());
                    }
                    out.push(e);
                }
            }
            Ok(out)
        };
        let events_before = render(&before)?;
        let events_after = render(&after)?;
        if let Some(s) = event["sender"].as_str() {
            senders.insert(s.to_owned());
        }
        let start = before.last().map_or(meta.pos - 1, |(p, _)| p - 1);
        let end = after.last().map_or(meta.pos, |(p, _)| *p);
        let state_map = self.state_map(meta.after)?;
        let mut state = Vec::new();
        for ((kind, state_key), id) in state_map.iter() {
            if filter.lazy_load_members && kind == "m.room.member" && !senders.contains(state_key) {
                continue;
            }
            if let Some(e) = self.client_event(id, None)? {
                state.push(e);
            }
        }
        Ok(json!({
            "event": event,
            "events_before": events_before,
            "events_after": events_after,
            "start": pagination_token(start),
            "end": pagination_token(end),
            "state": state,
        }))
    }
}
