//! `/timestamp_to_event`: the event of a room closest to a point in time, from an index of
//! the room's events (timeline and backfill region) by `origin_server_ts`.

use tandem_storage::Direction;

use crate::error::Result;
use crate::server::Homeserver;
use crate::tables::events;

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
        let (start, dir) = if forward { (ts, Direction::Forward) } else { (ts.saturating_add(1), Direction::Backward) };
        for entry in events::scan_timestamps(&self.db, room_id, start, dir)? {
            let (event_ts, event_id) = entry?;
            let event_id = event_id.as_str();
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
