//! Push: which events notify whom. The rules ([`rules`]) evaluated for one reader of a room
//! ([`Reader`]) decide `/sync`'s unread counts ([`unread`]), the `/notifications` list
//! ([`notifications`]) and what is sent to users' push gateways: the pushers a client
//! registers ([`pushers`]) and the persisted queue of what each is owed ([`queue`]), which the
//! push sender (`tandem-federation`) delivers.

pub mod notifications;
pub mod pushers;
pub mod queue;
pub mod rules;
pub mod unread;

use std::collections::HashMap;

use serde_json::Value;

pub use rules::{Context, KINDS, Outcome, actions, default_rules, evaluate, glob, tweaks};

use crate::error::Result;
use crate::rooms::Room;
use crate::server::Homeserver;

/// One local user reading one room: what rule evaluation needs to know, read once for many
/// events.
pub(crate) struct Reader<'a> {
    user_id: &'a str,
    rules: Value,
    display_name: Option<String>,
    member_count: u64,
    notification_level: i64,
    powers: HashMap<String, i64>,
}

impl<'a> Reader<'a> {
    /// `member_count` is the room's joined members (the same for every reader of the room).
    pub(crate) fn new(hs: &Homeserver, room: &Room, user_id: &'a str, member_count: u64) -> Result<Self> {
        let display_name = room
            .state_id(hs, "m.room.member", user_id)?
            .and_then(|id| hs.pdu(&id).ok().flatten())
            .and_then(|p| p["content"]["displayname"].as_str().map(str::to_owned));
        let notification_level = room.required_power(
            hs,
            |pl| pl.notifications.iter().find(|(k, _)| &**k == "room").map_or(50, |(_, v)| *v),
            50,
        )?;
        Ok(Reader {
            user_id,
            rules: hs.push_rules(user_id)?,
            display_name,
            member_count,
            notification_level,
            powers: HashMap::new(),
        })
    }

    /// The actions of the rule that decides for `event` (a PDU).
    pub(crate) fn actions(&mut self, hs: &Homeserver, room: &Room, event: &Value) -> Result<Vec<Value>> {
        let Some(sender) = event.get("sender").and_then(Value::as_str) else { return Ok(Vec::new()) };
        let sender_power = match self.powers.get(sender) {
            Some(p) => *p,
            None => {
                let p = room.power(hs, sender)?;
                self.powers.insert(sender.to_owned(), p);
                p
            }
        };
        let ctx = Context {
            user_id: self.user_id,
            display_name: self.display_name.as_deref(),
            member_count: self.member_count,
            sender_power,
            room_notification_level: self.notification_level,
        };
        Ok(actions(&self.rules, event, &ctx))
    }
}

impl Homeserver {
    /// How many members a room has joined, for the `room_member_count` condition.
    pub(crate) fn joined_count(&self, room_id: &str) -> Result<u64> {
        Ok(self.members_with(room_id, "join")?.len() as u64)
    }
}
