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
use crate::tables::events;

pub fn parse_token(token: &str) -> Option<u64> {
    let digits = token.strip_prefix('t').or_else(|| token.strip_prefix('s')).unwrap_or(token);
    digits.split('_').next()?.parse().ok()
}

pub fn pagination_token(pos: u64) -> String {
    format!("t{pos}")
}

/// A place between two events of a room's history: `t<pos>` in the timeline (between stream
/// positions `pos` and `pos + 1`), `b<n>` in the backfill region (between its events `n` and
/// `n + 1`, counted into the past; `b0` is the same place as `t0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    Timeline(u64),
    Backfill(u64),
}

impl Cursor {
    fn parse(token: &str) -> Option<Cursor> {
        match token.strip_prefix('b') {
            Some(n) => n.parse().ok().map(Cursor::Backfill),
            None => parse_token(token).map(Cursor::Timeline),
        }
    }

    fn token(self) -> String {
        match self {
            Cursor::Timeline(p) => pagination_token(p),
            Cursor::Backfill(n) => format!("b{n}"),
        }
    }

    /// The place just past the event at `self`, going in that direction.
    fn after(self, backward: bool) -> Cursor {
        match (self, backward) {
            (Cursor::Timeline(p), true) => Cursor::Timeline(p.saturating_sub(1)),
            (Cursor::Timeline(p), false) => Cursor::Timeline(p),
            (Cursor::Backfill(n), true) => Cursor::Backfill(n),
            (Cursor::Backfill(n), false) => Cursor::Backfill(n.saturating_sub(1)),
        }
    }

    fn as_timeline(self) -> Option<u64> {
        match self {
            Cursor::Timeline(p) => Some(p),
            Cursor::Backfill(_) => None,
        }
    }
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
        let (start, dir) =
            if backward { (from, Direction::Backward) } else { (from.saturating_add(1), Direction::Forward) };
        let mut out = Vec::new();
        let mut more = false;
        for entry in events::TIMELINE.scan(&self.db, room_id, start, dir)? {
            let (pos, event_id) = entry?;
            if bound.is_some_and(|b| if backward { pos <= b } else { pos > b }) {
                break;
            }
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

    /// `/messages`. Backward, the timeline continues into the backfill region (history from
    /// before this server joined); `end` is absent once neither holds more.
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
        let parse = |t: &str| Cursor::parse(t).ok_or_else(|| Error::invalid_param(format!("Invalid token {t:?}")));
        let ceiling = match &access {
            Access::Left { pos, .. } => *pos,
            _ => self.stream_pos(),
        };
        let from = match from {
            Some(t) => match parse(t)? {
                Cursor::Timeline(p) => Cursor::Timeline(p.min(ceiling)),
                c => c,
            },
            None if backward => Cursor::Timeline(ceiling),
            None => Cursor::Timeline(0),
        };
        let to = to.map(parse).transpose()?;
        let limit = limit.clamp(1, 1000);
        let keep = |id: &str| self.visible_and_matching(viewer.user_id, id, filter);
        let (events, more) = self.page(room_id, from, to, backward, ceiling, keep, limit)?;
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
            Some((at, _)) if more || !backward => Some(at.after(backward).token()),
            _ => None,
        };
        let state = if filter.lazy_load_members {
            self.member_events_of(viewer.user_id, room_id, &senders)?
        } else {
            Vec::new()
        };
        Ok(Page { chunk, start: from.token(), end, state })
    }

    /// The events of one `/messages` page, in order, and whether more are left.
    #[allow(clippy::too_many_arguments)]
    fn page(
        &self,
        room_id: &str,
        from: Cursor,
        to: Option<Cursor>,
        backward: bool,
        ceiling: u64,
        mut keep: impl FnMut(&str) -> Result<bool>,
        limit: usize,
    ) -> Result<(Vec<(Cursor, String)>, bool)> {
        let timeline = |list: Vec<(u64, String)>| list.into_iter().map(|(p, id)| (Cursor::Timeline(p), id));
        let backfill = |list: Vec<(u64, String)>| list.into_iter().map(|(n, id)| (Cursor::Backfill(n), id));
        let mut out = Vec::new();
        // Backward into the backfill region, stopping at `to` if it lies there.
        let back_from = |n: u64, out: &mut Vec<(Cursor, String)>, keep: &mut dyn FnMut(&str) -> Result<bool>| {
            let (list, mut more) = self.backfill_slice(room_id, n, true, keep, limit - out.len())?;
            for (m, id) in list {
                if let Some(Cursor::Backfill(stop)) = to
                    && m > stop
                {
                    more = false;
                    break;
                }
                out.push((Cursor::Backfill(m), id));
            }
            Ok::<bool, Error>(more)
        };
        match (from, backward) {
            (Cursor::Timeline(p), true) => {
                let bound = to.and_then(|c| c.as_timeline());
                let (list, more) = self.timeline_slice(room_id, p, true, bound, &mut keep, limit)?;
                out.extend(timeline(list));
                if more || bound.is_some() {
                    return Ok((out, more));
                }
                let more = back_from(0, &mut out, &mut keep)?;
                Ok((out, more))
            }
            (Cursor::Backfill(n), true) => {
                let more = back_from(n, &mut out, &mut keep)?;
                Ok((out, more))
            }
            (Cursor::Backfill(n), false) => {
                let (list, more) = self.backfill_slice(room_id, n, false, &mut keep, limit)?;
                out.extend(backfill(list));
                if more || matches!(to, Some(Cursor::Backfill(_))) {
                    return Ok((out, more));
                }
                let bound = to.and_then(|c| c.as_timeline()).unwrap_or(ceiling);
                let (list, more) = self.timeline_slice(room_id, 0, false, Some(bound), &mut keep, limit - out.len())?;
                out.extend(timeline(list));
                Ok((out, more))
            }
            (Cursor::Timeline(p), false) => {
                let bound = to.and_then(|c| c.as_timeline()).unwrap_or(ceiling);
                let (list, more) = self.timeline_slice(room_id, p, false, Some(bound), &mut keep, limit)?;
                out.extend(timeline(list));
                Ok((out, more))
            }
        }
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
            if let Some(id) = self.state_id_in(&map, "m.room.member", user)?
                && let Some(e) = self.client_event(&id, None)?
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
        let at = if meta.backfilled { Cursor::Backfill(meta.pos) } else { Cursor::Timeline(meta.pos) };
        let ceiling = self.stream_pos();
        let (before, _) = self.page(room_id, at.after(true), None, true, ceiling, keep, before_n)?;
        let (after, _) = self.page(room_id, at.after(false), None, false, ceiling, keep, after_n)?;
        let mut senders = BTreeSet::new();
        let mut render = |list: &[(Cursor, String)]| -> Result<Vec<Value>> {
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
        let start = before.last().map_or(at, |(c, _)| *c).after(true);
        let end = after.last().map_or(at, |(c, _)| *c).after(false);
        let state_map = self.named_state(&*self.state_map(meta.after)?)?;
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
            "start": start.token(),
            "end": end.token(),
            "state": state,
        }))
    }
}
