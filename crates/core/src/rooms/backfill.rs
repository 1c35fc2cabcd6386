//! History from before this server's first event in a room (it joined later), as other servers
//! give it through `/backfill`. Such events live in a region of their own below the timeline
//! (`BACKFILL`), newest first, so that `/messages` pages on from the timeline into them while
//! no `/sync` ever reports them as new.

use serde_json::Value;
use tandem_storage::Direction;

use super::EventMeta;
use super::receive::{Pdu, event_ids};
use crate::error::Result;
use crate::server::Homeserver;
use crate::tables::{BACKFILL, EVENT_META, TIMELINE, TIMESTAMPS, key, key_pos, trailing_pos};

/// How many of the oldest events held are looked at for unknown `prev_events`.
const FRONTIER_WINDOW: usize = 20;

impl Homeserver {
    /// The room's oldest events held in its history (backfill region, else timeline), oldest
    /// first, at most `n`.
    fn oldest_history(&self, room_id: &str, n: usize) -> Result<Vec<String>> {
        let prefix = key(&[room_id]);
        let mut out = Vec::new();
        for entry in self.db.scan(BACKFILL, &prefix, &key_pos(&[room_id], u64::MAX), Direction::Backward)?.take(n) {
            out.push(String::from_utf8_lossy(&entry?.1).into_owned());
        }
        if out.is_empty() {
            for entry in self.db.scan(TIMELINE, &prefix, &key_pos(&[room_id], 0), Direction::Forward)?.take(n) {
                out.push(String::from_utf8_lossy(&entry?.1).into_owned());
            }
        }
        Ok(out)
    }

    /// Whether the event is part of the room's history as this server holds it (timeline or
    /// backfill region), not merely stored as an outlier.
    fn in_history(&self, event_id: &str) -> Result<bool> {
        Ok(self.event_meta(event_id)?.is_some_and(|m| !m.outlier))
    }

    /// Where history this server lacks begins: the `prev_events` of its oldest events that it
    /// does not hold. Empty once the room's creation is reached.
    pub fn backfill_frontier(&self, room_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in self.oldest_history(room_id, FRONTIER_WINDOW)? {
            let Some(pdu) = self.pdu(&id)? else { continue };
            for prev in event_ids(&Value::Object(pdu), "prev_events") {
                if !out.contains(&prev) && !self.in_history(&prev)? {
                    out.push(prev);
                }
            }
        }
        Ok(out)
    }

    /// Takes events another server gave by `/backfill` (signatures and hashes checked): each
    /// is checked against its auth events (rejected ones are kept out of the history) and
    /// those new to the history are added to the backfill region, newest first. Returns how
    /// many were added.
    pub fn take_backfill(&self, room_id: &str, pdus: &[Pdu]) -> Result<usize> {
        let mut pdus = pdus.to_vec();
        pdus.sort_by_key(|p| std::cmp::Reverse(p.json.get("depth").and_then(Value::as_i64).unwrap_or(0)));
        self.write(|txn| {
            let mut room = self.room(room_id)?;
            self.outliers_in(txn, &mut room, &pdus)?;
            let prefix = key(&[room_id]);
            let last = self
                .db
                .scan(BACKFILL, &prefix, &key_pos(&[room_id], u64::MAX), Direction::Backward)?
                .next()
                .transpose()?;
            let (mut next, anchor) = match last {
                Some((k, id)) => {
                    let id = String::from_utf8_lossy(&id).into_owned();
                    (trailing_pos(&k) + 1, self.event_meta(&id)?.map_or(room.info.state_group, |m| m.before))
                }
                None => {
                    let first = self.oldest_history(room_id, 1)?;
                    let before = match first.first() {
                        Some(id) => self.event_meta(id)?.map_or(room.info.state_group, |m| m.before),
                        None => room.info.state_group,
                    };
                    (1, before)
                }
            };
            let mut added = 0;
            for pdu in &pdus {
                if self.in_history(&pdu.event_id)? || room.auth_event(self, &pdu.event_id)?.rejected {
                    continue;
                }
                // `pos` holds the event's place in the backfill region, not a stream position.
                let meta = EventMeta { backfilled: true, ..EventMeta::new(room_id, next, anchor, anchor) };
                txn.put_json(EVENT_META, key(&[&pdu.event_id]), &meta);
                txn.batch.put(BACKFILL, key_pos(&[room_id], next), pdu.event_id.as_bytes().to_vec());
                let ts = pdu.json.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
                txn.batch.put(TIMESTAMPS, super::timestamp::key_of(room_id, ts, &pdu.event_id), Vec::new());
                next += 1;
                added += 1;
            }
            Ok(added)
        })
    }

    /// Up to `limit` `(n, event_id)` of the backfill region: older than `n` (`backward`), or
    /// from `n` down to the newest (forward). The `bool` says whether more were left.
    pub(crate) fn backfill_slice(
        &self,
        room_id: &str,
        n: u64,
        backward: bool,
        mut keep: impl FnMut(&str) -> Result<bool>,
        limit: usize,
    ) -> Result<(Vec<(u64, String)>, bool)> {
        let prefix = key(&[room_id]);
        let (start, dir) = if backward {
            (key_pos(&[room_id], n.saturating_add(1)), Direction::Forward)
        } else {
            (key_pos(&[room_id], n), Direction::Backward)
        };
        let mut out = Vec::new();
        for entry in self.db.scan(BACKFILL, &prefix, &start, dir)? {
            let (k, v) = entry?;
            let event_id = String::from_utf8_lossy(&v).into_owned();
            if !keep(&event_id)? {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((trailing_pos(&k), event_id));
        }
        Ok((out, false))
    }
}
