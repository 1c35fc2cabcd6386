//! What this server owes other servers: one persisted queue per destination, written in the
//! same batch as the event that caused it, so nothing acknowledged to a client can be lost
//! before it is sent. The federation sender drains it (`tandem-federation`).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::rooms::Room;
use crate::rooms::nids::Pending;
use crate::rooms::state::StateMap;
use crate::server::{Homeserver, Txn, lock};
use crate::tables::{OUTBOX, key, key_pos, split, trailing_pos};

/// One queued item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Outgoing {
    /// An event, by id (the PDU is read when the transaction is built).
    Pdu(String),
    /// An EDU, whole.
    Edu(Value),
}

/// A transaction's worth of a destination's queue.
#[derive(Debug, Default)]
pub struct Batch {
    /// The position of the last item taken: acknowledge up to it once the peer accepted.
    pub last: u64,
    pub pdus: Vec<Value>,
    pub edus: Vec<Value>,
}

pub use tandem_wire::{MAX_EDUS, MAX_PDUS};

impl Homeserver {
    /// Queues `event_id` for every other server with a member joined to the room, in the state
    /// before or after it (so a server hears of its own users being kicked), except `skip`.
    pub(crate) fn enqueue_pdu(
        &self,
        txn: &mut Txn,
        room: &Room,
        before: u64,
        event_id: &str,
        skip: &[&str],
    ) -> Result<()> {
        let pending = Some(&txn.nids);
        let mut servers = self.joined_servers(room, room.info.state_group, pending)?.as_ref().clone();
        if before != room.info.state_group {
            servers.extend(self.joined_servers(room, before, pending)?.iter().cloned());
        }
        for server in servers {
            if server != self.server_name && !skip.contains(&server.as_str()) {
                self.enqueue(txn, &server, Outgoing::Pdu(event_id.to_owned()));
            }
        }
        Ok(())
    }

    /// Queues one item for `destination`.
    pub(crate) fn enqueue(&self, txn: &mut Txn, destination: &str, item: Outgoing) {
        let pos = txn.pos();
        txn.put_json(OUTBOX, key_pos(&[destination], pos), &item);
        txn.outbox.push(destination.to_owned());
    }

    /// Queues EDUs for servers outside a write of their own (typing, receipts, presence).
    pub fn enqueue_edu(&self, destinations: &BTreeSet<String>, edu: Value) -> Result<()> {
        self.write(|txn| {
            for d in destinations.iter().filter(|d| **d != self.server_name) {
                self.enqueue(txn, d, Outgoing::Edu(edu.clone()));
            }
            Ok(())
        })
    }

    /// Tells the other servers in a room that a local user started or stopped typing.
    pub fn share_typing(&self, room_id: &str, user_id: &str, typing: bool) -> Result<()> {
        let mut servers = self.room_servers(room_id)?;
        servers.remove(&self.server_name);
        if servers.is_empty() {
            return Ok(());
        }
        let edu = serde_json::json!({
            "edu_type": "m.typing",
            "content": { "room_id": room_id, "user_id": user_id, "typing": typing },
        });
        self.enqueue_edu(&servers, edu)
    }

    /// Queues a local user's public read receipt for the other servers in the room.
    pub(crate) fn share_receipt(
        &self,
        txn: &mut Txn,
        room_id: &str,
        user_id: &str,
        event_id: &str,
        thread_id: Option<&str>,
    ) -> Result<()> {
        let mut servers = self.room_servers(room_id)?;
        servers.remove(&self.server_name);
        let mut data = serde_json::json!({ "ts": Self::now_ms() });
        if let Some(t) = thread_id {
            data["thread_id"] = t.into();
        }
        let edu = serde_json::json!({
            "edu_type": "m.receipt",
            "content": { room_id: { "m.read": { user_id: { "event_ids": [event_id], "data": data } } } },
        });
        for server in servers {
            self.enqueue(txn, &server, Outgoing::Edu(edu.clone()));
        }
        Ok(())
    }

    /// Servers with at least one member joined in state group `group` of the room.
    pub(crate) fn joined_servers(
        &self,
        room: &Room,
        group: u64,
        pending: Option<&Pending>,
    ) -> Result<Arc<BTreeSet<String>>> {
        if let Some(s) = lock(&self.servers_cache).get(&group) {
            return Ok(s.clone());
        }
        let servers = match self.servers_after_step(room, group, pending)? {
            Some(servers) => servers,
            None => Arc::new(self.servers_in(room, &*room.group_map(self, group)?, pending)?),
        };
        // Group ids are never handed out twice in a process ([`Homeserver::write`]), so even a
        // group of a write that fails later cannot give this entry another meaning.
        let mut cache = lock(&self.servers_cache);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(group, servers.clone());
        Ok(servers)
    }

    /// The servers of a group this write made by one event from its parent's, without reading
    /// the whole state (a join in a big room must not cost a walk of its members); `None` when
    /// that is not enough: a member of a server that was in leaves.
    fn servers_after_step(
        &self,
        room: &Room,
        group: u64,
        pending: Option<&Pending>,
    ) -> Result<Option<Arc<BTreeSet<String>>>> {
        let Some((parent, kind, user, event_id)) = room.pending_step(group) else { return Ok(None) };
        let base = self.joined_servers(room, *parent, pending)?;
        if kind != "m.room.member" {
            return Ok(Some(base));
        }
        let Some((_, server)) = user.split_once(':') else { return Ok(Some(base)) };
        let joined = room.auth_event(self, event_id)?.membership().is_some_and(|m| m.as_str() == "join");
        Ok(match (joined, base.contains(server)) {
            (true, false) => {
                let mut servers = (*base).clone();
                servers.insert(server.to_owned());
                Some(Arc::new(servers))
            }
            (true, true) | (false, false) => Some(base),
            (false, true) => None,
        })
    }

    fn servers_in(&self, room: &Room, map: &StateMap, pending: Option<&Pending>) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for (user, event_id) in self.state_of_type_pending(pending, map, "m.room.member")? {
            let Some((_, server)) = user.split_once(':') else { continue };
            if out.contains(server) {
                continue;
            }
            if room.auth_event(self, &event_id)?.membership().is_some_and(|m| m.as_str() == "join") {
                out.insert(server.to_owned());
            }
        }
        Ok(out)
    }

    /// The servers in a room now: where to send what concerns it.
    pub fn room_servers(&self, room_id: &str) -> Result<BTreeSet<String>> {
        let room = self.room(room_id)?;
        Ok(self.joined_servers(&room, room.info.state_group, None)?.as_ref().clone())
    }

    /// Destinations with something queued (all of them once after a start, then those that
    /// got something new since the last call).
    pub fn outbox_destinations(&self, all: bool) -> Result<Vec<String>> {
        if all {
            let mut out: Vec<String> = Vec::new();
            for entry in self.db.scan_prefix(OUTBOX, &[])? {
                let (k, _) = entry?;
                if let Some(d) = split(&k).first()
                    && out.last().map(String::as_str) != Some(*d)
                {
                    out.push(d.to_string());
                }
            }
            return Ok(out);
        }
        Ok(std::mem::take(&mut *lock(&self.outbox_pending)).into_iter().collect())
    }

    /// Waits until something is queued for some server.
    pub async fn outbox_changed(&self) {
        self.outbox_wake.notified().await
    }

    /// The oldest queued items for `destination`, at most one transaction's worth.
    pub fn outbox_batch(&self, destination: &str) -> Result<Batch> {
        let mut batch = Batch::default();
        let prefix = key(&[destination]);
        for entry in self.db.scan_prefix(OUTBOX, &prefix)? {
            let (k, v) = entry?;
            let item: Outgoing = serde_json::from_slice(&v)?;
            match item {
                Outgoing::Pdu(id) => {
                    if batch.pdus.len() >= MAX_PDUS {
                        break;
                    }
                    if let Some(pdu) = self.pdu(&id)? {
                        batch.pdus.push(Value::Object(pdu));
                    }
                }
                Outgoing::Edu(edu) => {
                    if batch.edus.len() >= MAX_EDUS {
                        break;
                    }
                    batch.edus.push(edu);
                }
            }
            batch.last = trailing_pos(&k);
        }
        Ok(batch)
    }

    /// Drops `destination`'s items up to `last`: the peer has them.
    pub fn outbox_ack(&self, destination: &str, last: u64) -> Result<()> {
        let prefix = key(&[destination]);
        let mut batch = tandem_storage::Batch::new();
        for entry in self.db.scan_prefix(OUTBOX, &prefix)? {
            let (k, _) = entry?;
            if trailing_pos(&k) > last {
                break;
            }
            batch.delete(OUTBOX, k.into_vec());
        }
        // No stream position is taken: deleting from the queue changes nothing a client sees.
        self.db.write(batch)?;
        Ok(())
    }
}
