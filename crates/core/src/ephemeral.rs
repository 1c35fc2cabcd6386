//! What lives only in memory: typing notifications. Their changes are numbered by a counter
//! that starts at the clock's milliseconds when the server starts, so numbers handed out
//! before a restart stay below those handed out after it and sync tokens stay comparable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::server::{Homeserver, lock};

/// Who is typing in one room (user → until when), and the serial of the room's last change.
type RoomTyping = (HashMap<String, Instant>, u64);

pub(crate) struct Ephemeral {
    serial: AtomicU64,
    typing: Mutex<HashMap<String, RoomTyping>>,
}

impl Ephemeral {
    pub fn new() -> Self {
        Ephemeral { serial: AtomicU64::new(Homeserver::now_ms()), typing: Mutex::new(HashMap::new()) }
    }

    pub fn serial(&self) -> u64 {
        self.serial.load(Ordering::Acquire)
    }

    fn bump(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// The longest typing timeout honoured, as Synapse caps it.
const MAX_TYPING: Duration = Duration::from_secs(120);

impl Homeserver {
    /// Starts (`Some(timeout)`) or stops a user's typing notification in a room.
    pub fn set_typing(&self, room_id: &str, user_id: &str, timeout: Option<Duration>) {
        let now = Instant::now();
        {
            let mut typing = lock(&self.ephemeral.typing);
            let entry = typing.entry(room_id.to_owned()).or_default();
            let changed = match timeout {
                Some(t) => entry.0.insert(user_id.to_owned(), now + t.min(MAX_TYPING)).is_none(),
                None => entry.0.remove(user_id).is_some(),
            };
            if changed {
                entry.1 = self.ephemeral.bump();
            }
        }
        self.wake();
        if let Some(t) = timeout
            && let Ok(handle) = tokio::runtime::Handle::try_current()
            && let Some(hs) = self.self_ref()
        {
            let t = t.min(MAX_TYPING) + Duration::from_millis(50);
            handle.spawn(async move {
                tokio::time::sleep(t).await;
                hs.expire_typing();
            });
        }
    }

    fn expire_typing(&self) {
        let now = Instant::now();
        let mut changed = false;
        {
            let mut typing = lock(&self.ephemeral.typing);
            for (users, serial) in typing.values_mut() {
                let before = users.len();
                users.retain(|_, until| *until > now);
                if users.len() != before {
                    *serial = self.ephemeral.bump();
                    changed = true;
                }
            }
        }
        if changed {
            self.wake();
        }
    }

    /// Who is typing in a room, if that changed after `since` (always, when `since` is `None`).
    pub fn typing_since(&self, room_id: &str, since: Option<u64>) -> Option<Vec<String>> {
        let now = Instant::now();
        let typing = lock(&self.ephemeral.typing);
        let (users, serial) = typing.get(room_id)?;
        if since.is_some_and(|s| *serial <= s) {
            return None;
        }
        let mut list: Vec<String> = users.iter().filter(|(_, t)| **t > now).map(|(u, _)| u.clone()).collect();
        list.sort();
        if since.is_none() && list.is_empty() {
            return None;
        }
        Some(list)
    }

    pub fn ephemeral_serial(&self) -> u64 {
        self.ephemeral.serial()
    }
}
