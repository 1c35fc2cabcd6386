//! What each pusher is owed, persisted so that nothing is missed or sent twice across a
//! restart. An event that enters a timeline while any pusher exists is noted as pending in the
//! write that stores it; [`Homeserver::route_pushes`] later evaluates each pending event for
//! the local users with pushers and queues one notification per pusher it notifies; a read
//! receipt queues a badge update. The push sender takes a pusher's queue in order
//! ([`Homeserver::next_push`]) and reports each delivery ([`Homeserver::push_done`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::pushers::{Pusher, PusherId};
use super::{Outcome, Reader};
use crate::error::Result;
use crate::server::{Homeserver, Txn, lock};
use crate::tables::{PUSH_PENDING, PUSH_QUEUE, key, key_pos, split, trailing_pos};

/// How many pending events one routing pass takes.
const ROUTE_BATCH: usize = 200;

/// A pusher whose deliveries have failed this long is dropped.
pub const GIVE_UP_MS: u64 = 24 * 60 * 60 * 1000;

/// One queued item.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Queued {
    /// An event that notifies, with the actions of the rule that said so.
    Event { room_id: String, event_id: String, actions: Vec<Value> },
    /// The user read something: the badge count may have dropped.
    Badge,
}

/// One request for the push sender to make.
#[derive(Clone, Debug)]
pub struct Push {
    /// The queue position, to report back.
    pub pos: u64,
    pub url: String,
    /// The body: `{"notification": …}`.
    pub body: Value,
    /// The badge count it tells the gateway.
    pub badge: u64,
}

/// How a delivery went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The gateway answered that it rejects this pushkey.
    Rejected,
    /// No answer, or an error status.
    Failed,
}

impl Homeserver {
    /// Notes, in the write that adds it to a timeline, that an event may be owed to pushers.
    pub(crate) fn stage_push_pending(&self, txn: &mut Txn, room_id: &str, event_id: &str, pos: u64) {
        if self.pushers_exist.load(Ordering::Acquire) {
            txn.put_json(PUSH_PENDING, key_pos(&[], pos), &(room_id, event_id));
            txn.pushes = true;
        }
    }

    /// Evaluates pending events for the local users with pushers and queues what notifies.
    /// Returns the pushers that got something, and whether pending events remain.
    pub fn route_pushes(&self) -> Result<(BTreeSet<PusherId>, bool)> {
        let mut pending = Vec::new();
        for entry in self.db.scan_prefix(PUSH_PENDING, &[])?.take(ROUTE_BATCH) {
            let (k, v) = entry?;
            let (room_id, event_id): (String, String) = serde_json::from_slice(&v)?;
            let pos = trailing_pos(&k);
            pending.push((k, pos, room_id, event_id));
        }
        if pending.is_empty() {
            return Ok((BTreeSet::new(), false));
        }
        let more = pending.len() == ROUTE_BATCH;
        let mut by_user: HashMap<String, Vec<Pusher>> = HashMap::new();
        for p in self.all_pushers()?.into_iter().filter(|p| p.kind == "http") {
            by_user.entry(p.user_id.clone()).or_default().push(p);
        }
        let mut queued = Vec::new();
        // A room and its readers are read once per pass, however many of its events it routes.
        let mut rooms: HashMap<&str, (crate::rooms::Room, u64)> = HashMap::new();
        let mut readers: HashMap<(&str, &str), Reader<'_>> = HashMap::new();
        for (_, pos, room_id, event_id) in &pending {
            if by_user.is_empty() {
                break;
            }
            let Some(pdu) = self.pdu(event_id)? else { continue };
            let pdu = Value::Object(pdu);
            let sender = pdu["sender"].as_str().unwrap_or_default();
            let invitee = (pdu["type"] == "m.room.member" && pdu["content"]["membership"] == "invite")
                .then(|| pdu["state_key"].as_str())
                .flatten();
            for (user_id, pushers) in &by_user {
                if user_id == sender {
                    continue;
                }
                let joined = self.current_membership(room_id, user_id)?.as_deref() == Some("join");
                if !joined && invitee != Some(user_id.as_str()) {
                    continue;
                }
                if !rooms.contains_key(room_id.as_str()) {
                    rooms.insert(room_id, (self.room(room_id)?, self.joined_count(room_id)?));
                }
                let (room, count) = &rooms[room_id.as_str()];
                let reader = match readers.entry((room_id, user_id)) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(Reader::new(self, room, user_id, *count)?),
                };
                let actions = reader.actions(self, room, &pdu)?;
                if !Outcome::of(&actions).notify {
                    continue;
                }
                for p in pushers.iter().filter(|p| p.since < *pos) {
                    let item = Queued::Event {
                        room_id: room_id.clone(),
                        event_id: event_id.clone(),
                        actions: actions.clone(),
                    };
                    queued.push((p.id(), *pos, item));
                }
            }
        }
        let owners: BTreeSet<PusherId> = queued.iter().map(|(id, _, _)| id.clone()).collect();
        self.write(|txn| {
            for (k, ..) in &pending {
                txn.batch.delete(PUSH_PENDING, k.to_vec());
            }
            for (id, pos, item) in &queued {
                txn.put_json(PUSH_QUEUE, queue_key(id, *pos), item);
            }
            Ok(())
        })?;
        Ok((owners, more))
    }

    /// Queues a badge update for each of a user's pushers (the user read something).
    pub(crate) fn stage_badge_update(&self, txn: &mut Txn, user_id: &str) -> Result<()> {
        for p in self.pushers(user_id)?.into_iter().filter(|p| p.kind == "http") {
            let pos = txn.pos();
            txn.put_json(PUSH_QUEUE, queue_key(&p.id(), pos), &Queued::Badge);
            txn.push_owners.push(p.id());
        }
        Ok(())
    }

    /// The pushers with something queued (at start, and whenever writes queue something).
    pub fn queued_pushers(&self) -> Result<BTreeSet<PusherId>> {
        let mut out = BTreeSet::new();
        for entry in self.db.scan_prefix(PUSH_QUEUE, &[])? {
            let (k, _) = entry?;
            if let [user_id, app_id, pushkey, ..] = split(&k[..k.len().saturating_sub(8)])[..] {
                out.insert(PusherId { user_id: user_id.into(), app_id: app_id.into(), pushkey: pushkey.into() });
            }
        }
        Ok(out)
    }

    /// Pushers that got something queued since the last call.
    pub fn take_push_owners(&self) -> BTreeSet<PusherId> {
        std::mem::take(&mut *lock(&self.push_owners))
    }

    /// Woken when events become pending or something is queued.
    pub fn push_signal(&self) -> &tokio::sync::Notify {
        &self.push_wake
    }

    /// The next request owed to a pusher, or `None` when its queue is empty (or it is gone).
    /// Badge updates that would tell the gateway what it knows already are dropped here.
    pub fn next_push(&self, id: &PusherId) -> Result<Option<Push>> {
        loop {
            let Some(pusher) = self.pusher(id)? else {
                self.write(|txn| self.stage_clear_queue(txn, id))?;
                return Ok(None);
            };
            let prefix = key(&[&id.user_id, &id.app_id, &id.pushkey]);
            let Some(entry) = self.db.scan_prefix(PUSH_QUEUE, &prefix)?.next() else { return Ok(None) };
            let (k, v) = entry?;
            let pos = trailing_pos(&k);
            let item: Queued = serde_json::from_slice(&v)?;
            let badge = self.badge(&id.user_id)?;
            let url = pusher.url().unwrap_or_default().to_owned();
            let body = match &item {
                Queued::Badge if pusher.last_badge == Some(badge) => {
                    self.write(|txn| {
                        txn.batch.delete(PUSH_QUEUE, k.to_vec());
                        Ok(())
                    })?;
                    continue;
                }
                Queued::Badge => badge_body(&pusher, badge),
                Queued::Event { room_id, event_id, actions } => {
                    self.event_body(&pusher, room_id, event_id, actions, badge)?
                }
            };
            return Ok(Some(Push { pos, url, body, badge }));
        }
    }

    /// Records how the delivery of `push` went. Returns whether the pusher still exists.
    pub fn push_done(&self, id: &PusherId, push: &Push, outcome: Delivery) -> Result<bool> {
        let Some(mut pusher) = self.pusher(id)? else { return Ok(false) };
        let now = Self::now_ms();
        self.write(|txn| match outcome {
            Delivery::Sent => {
                txn.batch.delete(PUSH_QUEUE, queue_key(id, push.pos));
                if pusher.failing_since.is_some() || pusher.last_badge != Some(push.badge) {
                    pusher.failing_since = None;
                    pusher.last_badge = Some(push.badge);
                    self.stage_pusher(txn, &pusher);
                }
                Ok(true)
            }
            Delivery::Rejected => {
                tracing::info!(user = %id.user_id, app_id = %id.app_id, "the push gateway rejected a pushkey: pusher removed");
                self.stage_delete_pusher(txn, id).map(|()| false)
            }
            Delivery::Failed => {
                let since = *pusher.failing_since.get_or_insert(now);
                if now.saturating_sub(since) > GIVE_UP_MS {
                    tracing::warn!(user = %id.user_id, app_id = %id.app_id, "pushes failed for a day: pusher removed");
                    return self.stage_delete_pusher(txn, id).map(|()| false);
                }
                self.stage_pusher(txn, &pusher);
                Ok(true)
            }
        })
    }

    /// Drops everything queued for a pusher.
    pub(crate) fn stage_clear_queue(&self, txn: &mut Txn, id: &PusherId) -> Result<()> {
        for entry in self.db.scan_prefix(PUSH_QUEUE, &key(&[&id.user_id, &id.app_id, &id.pushkey]))? {
            let (k, _) = entry?;
            txn.batch.delete(PUSH_QUEUE, k.to_vec());
        }
        Ok(())
    }

    /// The badge count, as Synapse counts it by default: rooms with unread notifications, plus
    /// invites.
    pub fn badge(&self, user_id: &str) -> Result<u64> {
        let to = self.stream_pos();
        let mut n = 0;
        for (room_id, row) in self.memberships(user_id)? {
            match row.membership.as_str() {
                "invite" => n += 1,
                "join" if self.unread_counts(&room_id, user_id, row.pos, to)?.total().notifications > 0 => n += 1,
                _ => {}
            }
        }
        Ok(n)
    }

    /// The notification of an event, in the format the pusher asked for.
    fn event_body(
        &self,
        pusher: &Pusher,
        room_id: &str,
        event_id: &str,
        actions: &[Value],
        badge: u64,
    ) -> Result<Value> {
        let tweaks = super::tweaks(actions);
        let pdu = self.pdu(event_id)?.unwrap_or_default();
        let truthy = |v: Option<&Value>| v.is_some_and(|v| *v != Value::Bool(false) && !v.is_null());
        let high = pdu.get("type").and_then(Value::as_str) == Some("m.room.encrypted")
            || truthy(tweaks.get("highlight"))
            || truthy(tweaks.get("sound"));
        let prio = if high { "high" } else { "low" };
        let counts = json!({ "unread": badge });
        if pusher.data.get("format").and_then(Value::as_str) == Some("event_id_only") {
            let n = json!({ "event_id": event_id, "room_id": room_id, "prio": prio, "counts": counts, "devices": [device(pusher, None)] });
            return Ok(json!({ "notification": n }));
        }
        let mut n = Map::new();
        n.insert("event_id".into(), event_id.into());
        n.insert("room_id".into(), room_id.into());
        for field in ["type", "sender", "content"] {
            if let Some(v) = pdu.get(field) {
                n.insert(field.into(), v.clone());
            }
        }
        n.insert("prio".into(), prio.into());
        n.insert("counts".into(), counts);
        if pdu.get("type").and_then(Value::as_str) == Some("m.room.member") {
            let target = pdu.get("state_key").and_then(Value::as_str);
            n.insert("membership".into(), pdu["content"]["membership"].clone());
            n.insert("user_is_target".into(), (target == Some(&pusher.user_id)).into());
        }
        let content_of = |kind: &str, state_key: &str| -> Result<Option<Map<String, Value>>> {
            let Some(id) = self.current_state_id(room_id, kind, state_key)? else { return Ok(None) };
            Ok(self.pdu(&id)?.and_then(|mut p| match p.remove("content") {
                Some(Value::Object(c)) => Some(c),
                _ => None,
            }))
        };
        if let Some(sender) = pdu.get("sender").and_then(Value::as_str)
            && let Some(name) = content_of("m.room.member", sender)?.and_then(|c| c.get("displayname").cloned())
            && name.as_str().is_some_and(|s| !s.is_empty())
        {
            n.insert("sender_display_name".into(), name);
        }
        let room_name = content_of("m.room.name", "")?
            .and_then(|c| c.get("name").cloned())
            .or_else(|| content_of("m.room.canonical_alias", "").ok().flatten().and_then(|c| c.get("alias").cloned()));
        if let Some(name) = room_name.filter(|n| n.as_str().is_some_and(|s| !s.is_empty())) {
            n.insert("room_name".into(), name);
        }
        n.insert("devices".into(), json!([device(pusher, Some(tweaks))]));
        Ok(json!({ "notification": n }))
    }
}

fn queue_key(id: &PusherId, pos: u64) -> Vec<u8> {
    key_pos(&[&id.user_id, &id.app_id, &id.pushkey], pos)
}

/// The `devices` entry for a pusher: its `data` without the gateway's `url`.
fn device(pusher: &Pusher, tweaks: Option<Map<String, Value>>) -> Value {
    let mut data = pusher.data.as_object().cloned().unwrap_or_default();
    data.remove("url");
    let mut d =
        json!({ "app_id": pusher.app_id, "pushkey": pusher.pushkey, "pushkey_ts": pusher.ts / 1000, "data": data });
    if let Some(t) = tweaks.filter(|t| !t.is_empty()) {
        d["tweaks"] = Value::Object(t);
    }
    d
}

/// A notification that only updates the badge.
fn badge_body(pusher: &Pusher, badge: u64) -> Value {
    json!({ "notification": { "id": "", "type": null, "sender": "", "counts": { "unread": badge }, "devices": [device(pusher, None)] } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::create::CreateRoom;

    /// A message in a two-member room is queued once for the other member's pusher, with the
    /// badge; the sender's own is not; a read receipt queues a badge of 0.
    #[test]
    fn a_message_is_queued_for_the_other_member_then_the_badge_clears() {
        let (_dir, hs) = crate::server::test_server();
        let alice = hs.create_account("alice", None, false).unwrap();
        let bob = hs.create_account("bob", None, false).unwrap();
        let req =
            CreateRoom { invite: vec![bob.clone()], preset: Some("trusted_private_chat".into()), ..Default::default() };
        let room = hs.create_room(&alice, req).unwrap();
        hs.set_membership(&bob, &room, &bob, "join", None, None).unwrap();
        let body = json!({
            "kind": "http", "app_id": "a", "app_display_name": "A", "device_display_name": "D", "pushkey": "k",
            "lang": "en", "data": { "url": "https://push.example/_matrix/push/v1/notify" },
        });
        hs.set_pusher(&bob, Some("PHONE"), &body).unwrap();
        let id = hs.pushers(&bob).unwrap()[0].id();
        let message = hs
            .send_message(&alice, "D", &room, "m.room.message", "t1", json!({"msgtype": "m.text", "body": "hi"}))
            .unwrap();
        hs.send_message(&bob, "D", &room, "m.room.message", "t2", json!({"msgtype": "m.text", "body": "mine"}))
            .unwrap();
        let (owners, more) = hs.route_pushes().unwrap();
        assert_eq!(owners.into_iter().collect::<Vec<_>>(), vec![id.clone()]);
        assert!(!more);
        let push = hs.next_push(&id).unwrap().expect("queued");
        assert_eq!(push.url, "https://push.example/_matrix/push/v1/notify");
        assert_eq!(push.body["notification"]["event_id"], message.as_str());
        assert_eq!(push.body["notification"]["counts"]["unread"], 1);
        assert!(hs.push_done(&id, &push, Delivery::Sent).unwrap());
        assert!(hs.next_push(&id).unwrap().is_none(), "the sender's own message was queued");

        hs.set_receipt(&bob, &room, "m.read", &message, None).unwrap();
        assert_eq!(hs.take_push_owners().into_iter().collect::<Vec<_>>(), vec![id.clone()]);
        let badge = hs.next_push(&id).unwrap().expect("a badge update");
        assert_eq!(badge.body["notification"]["counts"]["unread"], 0);
        assert!(hs.push_done(&id, &badge, Delivery::Sent).unwrap());
        // A second receipt with the badge unchanged sends nothing.
        hs.set_receipt(&bob, &room, "m.read", &message, None).unwrap();
        assert!(hs.next_push(&id).unwrap().is_none());

        // Deleting the device that set the pusher deletes it.
        hs.delete_devices(&bob, &["PHONE".to_owned()]).unwrap();
        assert!(hs.pushers(&bob).unwrap().is_empty());
    }
}
