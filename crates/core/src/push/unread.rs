//! Unread notification and highlight counts, as Synapse counts them: the events after the
//! user's read receipts that the user's push rules say notify (and highlight), the user's own
//! excluded. Threads are counted apart (MSC3773, spec v1.4): an event in a thread is read once
//! an unthreaded receipt or that thread's receipt is at or after it; an event of the main
//! timeline (thread roots included) once an unthreaded or a `main` receipt is.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tandem_storage::Direction;

use crate::error::Result;
use crate::server::Homeserver;
use crate::tables::events;

/// How many events after the earliest receipt are looked at; more are not counted.
const SCAN: usize = 1000;

/// One timeline's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub notifications: u64,
    pub highlights: u64,
}

impl Counts {
    pub fn to_json(self) -> Value {
        json!({ "notification_count": self.notifications, "highlight_count": self.highlights })
    }

    fn add(&mut self, other: Counts) {
        self.notifications += other.notifications;
        self.highlights += other.highlights;
    }
}

/// A room's counts: its main timeline and each thread with something unread, by root.
#[derive(Clone, Debug, Default)]
pub struct Unread {
    pub main: Counts,
    pub threads: BTreeMap<String, Counts>,
}

impl Unread {
    /// Everything, for clients that do not count threads apart.
    pub fn total(&self) -> Counts {
        let mut total = self.main;
        for c in self.threads.values() {
            total.add(*c);
        }
        total
    }
}

/// The thread an event belongs to: its root, or `None` for the main timeline.
pub(super) fn thread_of(pdu: &serde_json::Map<String, Value>) -> Option<String> {
    let rel = pdu.get("content")?.get("m.relates_to")?;
    (rel.get("rel_type")?.as_str()? == "m.thread").then(|| rel.get("event_id")?.as_str().map(str::to_owned))?
}

impl Homeserver {
    /// The counts of `user_id` in `room_id` at stream position `to`; nothing before
    /// `joined_at` counts.
    pub(crate) fn unread_counts(&self, room_id: &str, user_id: &str, joined_at: u64, to: u64) -> Result<Unread> {
        let receipts = self.read_positions(room_id, user_id)?;
        let unthreaded = receipts.get("").copied().unwrap_or(0).max(joined_at);
        // A thread's events may be read further than the unthreaded receipt, never less.
        let read_in = |thread: &str| receipts.get(thread).copied().unwrap_or(0).max(unthreaded);
        let mut pending = Vec::new();
        for entry in events::TIMELINE.scan(&self.db, room_id, unthreaded + 1, Direction::Forward)?.take(SCAN) {
            let (pos, event_id) = entry?;
            if pos > to {
                break;
            }
            pending.push((pos, event_id));
        }
        // Most unread events in a busy account are the user's own: drop those before loading
        // anything else (the sender comes from the cached authorization view).
        let (version, _) = crate::rooms::version_rules(&self.room_version(room_id)?)?;
        let mut others = Vec::with_capacity(pending.len());
        for (pos, id) in pending {
            if &*self.auth_event(&version, &id)?.sender != user_id {
                others.push((pos, id));
            }
        }
        let mut out = Unread::default();
        if others.is_empty() {
            return Ok(out);
        }
        let room = self.room(room_id)?;
        let mut reader = super::Reader::new(self, &room, user_id, self.joined_count(room_id)?)?;
        for (pos, id) in others {
            let Some(pdu) = self.pdu(&id)? else { continue };
            let thread = thread_of(&pdu);
            if pos <= read_in(thread.as_deref().unwrap_or("main")) {
                continue;
            }
            let pdu = Value::Object(pdu);
            let outcome = super::Outcome::of(&reader.actions(self, &room, &pdu)?);
            if !outcome.notify && !outcome.highlight {
                continue;
            }
            let counts = match thread {
                Some(root) => out.threads.entry(root).or_default(),
                None => &mut out.main,
            };
            counts.add(Counts { notifications: u64::from(outcome.notify), highlights: u64::from(outcome.highlight) });
        }
        Ok(out)
    }
}
