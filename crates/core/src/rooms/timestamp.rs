//! `/timestamp_to_event`: the event of a room closest to a point in time, from an index of
//! the room's events (timeline and backfill region) by `origin_server_ts`.

use tandem_storage::Direction;
use tandem_storage::codec::{get_u64, take_str};

use crate::error::Result;
use crate::server::Homeserver;
use crate::tables::{TIMESTAMPS, key, key_pos};

/// The index key of an event: room, timestamp, event id.
pub(crate) fn key_of(room_id: &str, ts: impl TryInto<u64>, event_id: &str) -> Vec<u8> {
    let mut k = key_pos(&[room_id], ts.try_into().unwrap_or(0));
    tandem_storage::codec::put_str(&mut k, event_id);
    k
}

impl Homeserver {
    /// The first event at or after `ts` (`forward`), or the last at or before it, that `keep`
    /// accepts: its id and timestamp.
    pub fn event_near(
        &self,
        room_id: &str,
        ts: u64,
        forward: bool,
        mut keep: impl FnMut(&str) -> Result<bool>,
    ) -> Result<Option<(String, u64)>> {
        let prefix = key(&[room_id]);
        let (start, dir) = if forward {
            (key_pos(&[room_id], ts), Direction::Forward)
        } else {
            (key_pos(&[room_id], ts.saturating_add(1)), Direction::Backward)
        };
        for entry in self.db.scan(TIMESTAMPS, &prefix, &start, dir)? {
            let (k, _) = entry?;
            let rest = k.get(prefix.len()..).unwrap_or_default();
            let (Some(event_ts), Some((event_id, _))) = (get_u64(rest, 0), rest.get(8..).and_then(take_str)) else {
                continue;
            };
            let shown = self.event_meta(event_id)?.is_some_and(|m| m.rejected.is_none() && !m.soft_failed);
            if shown && keep(event_id)? {
                return Ok(Some((event_id.to_owned(), event_ts)));
            }
        }
        Ok(None)
    }

    /// `/timestamp_to_event` for a user: the nearest event they may see.
    pub fn timestamp_to_event(
        &self,
        user_id: &str,
        room_id: &str,
        ts: u64,
        forward: bool,
    ) -> Result<Option<(String, u64)>> {
        self.room_access(user_id, room_id)?;
        self.event_near(room_id, ts, forward, |id| self.may_see(user_id, id))
    }
}
