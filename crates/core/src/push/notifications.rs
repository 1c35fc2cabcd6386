//! `GET /notifications`: the events that notified a user, newest first, read from the
//! timelines of the user's rooms with the user's current rules.

use serde_json::Value;
use tandem_storage::Direction;

use super::{Outcome, Reader};
use crate::error::Result;
use crate::rooms::read::Viewer;
use crate::server::Homeserver;
use crate::tables::events;

/// How many of a room's events one page looks at, at most.
const SCAN: usize = 1000;

/// One entry of the list.
#[derive(Clone, Debug)]
pub struct Notification {
    pub pos: u64,
    pub room_id: String,
    /// The event in the client format.
    pub event: Value,
    pub actions: Vec<Value>,
    pub read: bool,
    pub ts: u64,
}

impl Homeserver {
    /// Up to `limit` notifications of `user_id` from before stream position `before`, newest
    /// first, only the highlighting ones if `highlights_only`.
    pub fn notifications(
        &self,
        user_id: &str,
        before: Option<u64>,
        limit: usize,
        highlights_only: bool,
    ) -> Result<Vec<Notification>> {
        let start = before.map_or(u64::MAX, |b| b.saturating_sub(1));
        let mut out = Vec::new();
        for (room_id, row) in self.memberships(user_id)? {
            if row.membership != "join" {
                continue;
            }
            let room = self.room(&room_id)?;
            let mut reader = Reader::new(self, &room, user_id, self.joined_count(&room_id)?)?;
            let receipts = self.read_positions(&room_id, user_id)?;
            let mut found = 0;
            for entry in events::TIMELINE.scan(&self.db, &room_id, start, Direction::Backward)?.take(SCAN) {
                let (pos, event_id) = entry?;
                if pos <= row.pos || found == limit {
                    break;
                }
                let Some(pdu) = self.pdu(&event_id)? else { continue };
                if pdu.get("sender").and_then(Value::as_str) == Some(user_id) {
                    continue;
                }
                let thread = super::unread::thread_of(&pdu);
                let pdu = Value::Object(pdu);
                let actions = reader.actions(self, &room, &pdu)?;
                let outcome = Outcome::of(&actions);
                if !outcome.notify || (highlights_only && !outcome.highlight) {
                    continue;
                }
                let Some(event) = self.client_event(&event_id, Some(Viewer { user_id, device_id: None }))? else {
                    continue;
                };
                let read_to = receipts
                    .get("")
                    .copied()
                    .unwrap_or(0)
                    .max(receipts.get(thread.as_deref().unwrap_or("main")).copied().unwrap_or(0));
                found += 1;
                out.push(Notification {
                    pos,
                    room_id: room_id.clone(),
                    ts: pdu["origin_server_ts"].as_u64().unwrap_or(0),
                    event,
                    actions,
                    read: pos <= read_to,
                });
            }
        }
        out.sort_by_key(|n| std::cmp::Reverse(n.pos));
        out.truncate(limit);
        Ok(out)
    }
}
