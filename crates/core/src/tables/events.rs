//! The event tables, and the only code that knows their keys: PDUs and their metadata, the
//! indexes of event ids by position (a room's timeline and backfill region, an event's
//! relations) and by timestamp, redactions waiting for their target, and each event's auth
//! edges.

use tandem_state_res::EventNid;
use tandem_storage::codec::{get_u64, put_str, take_str};
use tandem_storage::{Batch, Db, Direction, Table};

use super::{key, key_pos, trailing_pos};
use crate::error::Result;
use crate::rooms::EventMeta;

/// event_id → the PDU, canonical JSON.
pub(super) const PDUS: Table = Table("pdus");
/// event_id → [`EventMeta`].
pub(super) const EVENT_META: Table = Table("event_meta");
/// room_id, origin_server_ts, event_id → "": a room's events by timestamp
/// (`/timestamp_to_event`).
pub(super) const TIMESTAMPS: Table = Table("timestamps");
/// target event_id, redaction event_id → "": redactions whose target this server has not
/// seen yet, checked and applied when it arrives.
pub(super) const PENDING_REDACTIONS: Table = Table("pending_redactions");
/// Event nid → the nids of its auth events, each 8 bytes big-endian: all that state
/// resolution's walk of a large state's auth chains reads.
pub(super) const AUTH_EDGES: Table = Table("auth_edges");

/// An index of event ids under a name by a position, in position order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Index(pub(super) Table);

/// room_id, stream position → event_id: a room's timeline in stream order.
pub(crate) const TIMELINE: Index = Index(Table("timeline"));
/// room_id, n → event_id: history from before this server's first event in the room, got by
/// `/backfill`; n = 1 is the newest such event and n grows into the past.
pub(crate) const BACKFILL: Index = Index(Table("backfill"));
/// related event_id, stream position → event_id of the relating event.
pub(crate) const RELATIONS: Index = Index(Table("relations"));

impl Index {
    pub(crate) fn put(self, batch: &mut Batch, name: &str, pos: u64, event_id: &str) {
        batch.put(self.0, key_pos(&[name], pos), event_id.as_bytes().to_vec());
    }

    /// `(position, event id)` under `name`, from `from` (included) on in `dir`.
    pub(crate) fn scan<'a>(
        self,
        db: &'a Db,
        name: &str,
        from: u64,
        dir: Direction,
    ) -> Result<impl Iterator<Item = Result<(u64, String)>> + 'a> {
        Ok(scan_under(db, self.0, key(&[name]), &key_pos(&[name], from), dir)?.map(|entry| {
            let (k, v) = entry?;
            Ok((trailing_pos(&k), String::from_utf8_lossy(&v).into_owned()))
        }))
    }
}

/// Entries of `table` from `from` on in `dir` while their key starts with `prefix`.
fn scan_under<'a>(
    db: &'a Db,
    table: Table,
    prefix: Vec<u8>,
    from: &[u8],
    dir: Direction,
) -> tandem_storage::Result<impl Iterator<Item = tandem_storage::Result<tandem_storage::Entry>> + use<'a>> {
    Ok(db.scan(table, &[], from, dir)?.take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix))))
}

/// The PDU of an event, its JSON as stored.
pub(crate) fn pdu(db: &Db, event_id: &str) -> tandem_storage::Result<Option<Vec<u8>>> {
    db.get(PDUS, &key(&[event_id]))
}

pub(crate) fn put_pdu(batch: &mut Batch, event_id: &str, pdu: Vec<u8>) {
    batch.put(PDUS, key(&[event_id]), pdu);
}

/// Every stored PDU, by event id.
pub(crate) fn each_pdu(
    db: &Db,
) -> tandem_storage::Result<impl Iterator<Item = tandem_storage::Result<(String, Box<[u8]>)>> + '_> {
    Ok(db.scan_prefix(PDUS, &[])?.map(|entry| {
        let (k, v) = entry?;
        Ok((take_str(&k).map(|(id, _)| id.to_owned()).unwrap_or_default(), v))
    }))
}

pub(crate) fn meta(db: &Db, event_id: &str) -> Result<Option<EventMeta>> {
    match db.get(EVENT_META, &key(&[event_id]))? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn put_meta(batch: &mut Batch, event_id: &str, meta: &EventMeta) {
    batch.put(EVENT_META, key(&[event_id]), serde_json::to_vec(meta).expect("serializable"));
}

fn timestamp_key(room_id: &str, ts: u64, event_id: &str) -> Vec<u8> {
    let mut k = key_pos(&[room_id], ts);
    put_str(&mut k, event_id);
    k
}

/// Indexes an event of a room by its `origin_server_ts`.
pub(crate) fn put_timestamp(batch: &mut Batch, room_id: &str, ts: impl TryInto<u64>, event_id: &str) {
    batch.put(TIMESTAMPS, timestamp_key(room_id, ts.try_into().unwrap_or(0), event_id), Vec::new());
}

/// `(timestamp, event id)` of a room's events, from `ts` (included) on in `dir`.
pub(crate) fn scan_timestamps<'a>(
    db: &'a Db,
    room_id: &str,
    ts: u64,
    dir: Direction,
) -> Result<impl Iterator<Item = Result<(u64, String)>> + 'a> {
    let prefix = key(&[room_id]);
    let skip = prefix.len();
    let entries = scan_under(db, TIMESTAMPS, prefix, &key_pos(&[room_id], ts), dir)?;
    Ok(entries.filter_map(move |entry| {
        let (k, _) = match entry {
            Ok(e) => e,
            Err(e) => return Some(Err(e.into())),
        };
        let rest = k.get(skip..)?;
        let (ts, (event_id, _)) = (get_u64(rest, 0)?, rest.get(8..).and_then(take_str)?);
        Some(Ok((ts, event_id.to_owned())))
    }))
}

/// Keeps a redaction until its target arrives.
pub(crate) fn put_pending_redaction(batch: &mut Batch, target: &str, redaction_id: &str) {
    batch.put(PENDING_REDACTIONS, key(&[target, redaction_id]), Vec::new());
}

/// The redactions that waited for `target`, taken: their entries are deleted in `batch`.
pub(crate) fn take_pending_redactions(db: &Db, batch: &mut Batch, target: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in db.scan_prefix(PENDING_REDACTIONS, &key(&[target]))? {
        let (k, _) = entry?;
        if let Some(redaction) = super::split(&k).get(1) {
            out.push(redaction.to_string());
        }
        batch.delete(PENDING_REDACTIONS, k.to_vec());
    }
    Ok(out)
}

pub(crate) fn put_auth_edges(batch: &mut Batch, event: EventNid, auth_events: &[EventNid]) {
    let edges: Vec<u8> = auth_events.iter().flat_map(|n| n.0.to_be_bytes()).collect();
    batch.put(AUTH_EDGES, event.0.to_be_bytes().to_vec(), edges);
}

/// The auth events of a stored event, as stored with it (events stored before edges were kept
/// have none).
pub(crate) fn auth_edges(db: &Db, event: EventNid) -> Result<Option<Box<[EventNid]>>> {
    Ok(db.get(AUTH_EDGES, &event.0.to_be_bytes())?.map(|bytes| {
        bytes.chunks_exact(8).map(|b| EventNid(u64::from_be_bytes(b.try_into().expect("8 bytes")))).collect()
    }))
}
