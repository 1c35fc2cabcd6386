//! The engine's tables and their key layouts. Keys are built with `tandem_storage::codec`, so
//! scans run in the order the comments give. Values are JSON unless said otherwise.
//!
//! Every table is read and written by one module only, which alone builds its keys: the
//! tables several concepts share belong to a family module here ([`events`], [`meta`],
//! [`rooms`], [`txns`]); each table declared below belongs to the one concept module that uses
//! it (`USERS` and `PROFILES` to `accounts`, `DEVICES` and the tokens to `sessions`, the key
//! tables to `keys::*`, and so on). These modules are the seam where another storage backend
//! would plug in.

pub(crate) mod events;
pub(crate) mod meta;
pub(crate) mod rooms;
pub(crate) mod txns;

use tandem_storage::Table;
use tandem_storage::codec::{put_str, put_u64};

/// user_id → [`crate::accounts::Account`].
pub const USERS: Table = Table("users");
/// user_id → profile object (`displayname`, `avatar_url`).
pub const PROFILES: Table = Table("profiles");
/// user_id, device_id → [`crate::sessions::Device`].
pub const DEVICES: Table = Table("devices");
/// access token → [`crate::sessions::Session`].
pub const ACCESS_TOKENS: Table = Table("access_tokens");
/// refresh token → [`crate::sessions::Session`] of the access token it renews.
pub const REFRESH_TOKENS: Table = Table("refresh_tokens");
/// user_id, device_id ("" for the cross-signing keys) → {"deleted": bool}: local device and
/// key changes committed but not yet queued to other servers (queued after the change's own
/// write; left over after a crash, they are queued at the next start).
pub const UNSHARED_DEVICE_CHANGES: Table = Table("unshared_device_changes");
/// user_id, room_id ("" for global), type → {content, pos}.
pub const ACCOUNT_DATA: Table = Table("account_data");
/// room_id, receipt type, user_id, thread → {event_id, ts, pos}.
pub const RECEIPTS: Table = Table("receipts");
/// alias → {room_id, creator}.
pub const ALIASES: Table = Table("aliases");
/// room_id → "" for rooms published in the directory.
pub const PUBLIC_ROOMS: Table = Table("public_rooms");
/// user_id, filter id → filter JSON.
pub const FILTERS: Table = Table("filters");
/// user_id, device_id, stream position → to-device message.
pub const TO_DEVICE: Table = Table("to_device");
/// user_id, device_id → signed device keys.
pub const DEVICE_KEYS: Table = Table("device_keys");
/// user_id, device_id, "algorithm:key_id" → one-time key; fallback keys under "fallback/".
pub const ONE_TIME_KEYS: Table = Table("one_time_keys");
/// user_id, `master` | `self_signing` | `user_signing` → a cross-signing key (local users'
/// as uploaded; other servers' users' as their servers reported them).
pub const CROSS_SIGNING_KEYS: Table = Table("cross_signing_keys");
/// user_id, device id or cross-signing public key, signer user_id, signer key id → a
/// signature uploaded after the key (`/keys/signatures/upload`).
pub const KEY_SIGNATURES: Table = Table("key_signatures");
/// user_id → the device list's state: the last update sent (local users) or applied (others).
pub const DEVICE_LISTS: Table = Table("device_lists");
/// user_id, device_id → another server's user's device keys, as cached.
pub const REMOTE_DEVICES: Table = Table("remote_devices");
/// user_id → the user's dehydrated device (MSC3814): its id and the client's encrypted data.
pub const DEHYDRATED_DEVICES: Table = Table("dehydrated_devices");
/// user_id, version number → a key backup version (algorithm, auth_data, count, etag).
pub const BACKUP_VERSIONS: Table = Table("backup_versions");
/// user_id, version, room_id, session_id → the backed-up key data of one session.
pub const BACKUP_KEYS: Table = Table("backup_keys");
/// stream position → user_id whose devices or keys changed.
pub const KEY_CHANGES: Table = Table("key_changes");
/// user_id → presence object.
pub const PRESENCE: Table = Table("presence");
/// media id → [`crate::media::MediaInfo`]; the bytes are files in the media directory.
pub const MEDIA: Table = Table("media");
/// media id → the creator and expiry of a media id created for a later upload.
pub const MEDIA_PENDING: Table = Table("media_pending");
/// file id (a local media id, or `r` and a remote copy's file), size and method
/// (`96x96-crop`) → a [`crate::media::thumbnails::Thumbnail`], its bytes in the file
/// `<original's file>.<size and method>`.
pub const MEDIA_THUMBNAILS: Table = Table("media_thumbnails");
/// server name, media id → another server's media kept here: its metadata and the name of its
/// file in `media/remote/`.
pub const MEDIA_REMOTE: Table = Table("media_remote");
/// user_id → bytes of media the user uploaded (JSON number), for the upload quota.
pub const MEDIA_USAGE: Table = Table("media_usage");
/// destination server, stream position → [`crate::outbox::Outgoing`]: what each server has yet
/// to receive from us, in order.
pub const OUTBOX: Table = Table("outbox");
/// server_name, key id → [`crate::remote_keys::RemoteKey`]: other servers' verify keys.
pub const REMOTE_KEYS: Table = Table("remote_keys");
/// user_id, app_id, pushkey → [`crate::push::pushers::Pusher`].
pub const PUSHERS: Table = Table("pushers");
/// stream position → [room_id, event_id]: events that entered a timeline while pushers
/// existed, not yet evaluated for them ([`crate::push::queue`]).
pub const PUSH_PENDING: Table = Table("push_pending");
/// user_id, app_id, pushkey, position → what that pusher is owed, in order.
pub const PUSH_QUEUE: Table = Table("push_queue");
/// OpenID token → {user_id, expires_at} ([`crate::openid`]).
pub const OPENID_TOKENS: Table = Table("openid_tokens");
/// stream position → [`crate::reports::Report`]: content reported to the administrators.
pub const REPORTS: Table = Table("reports");
/// Interned names ([`crate::rooms::nids`]): a space byte (`e` event id, `t` event type, `k`
/// type nid and state key) then the name → the nid, 8 bytes big-endian.
pub const NIDS: Table = Table("nids");
/// The space byte then the nid → the name.
pub const NAMES: Table = Table("names");

pub const ALL: &[Table] = &[
    meta::META,
    USERS,
    PROFILES,
    DEVICES,
    ACCESS_TOKENS,
    REFRESH_TOKENS,
    rooms::ROOMS,
    events::PDUS,
    events::EVENT_META,
    events::TIMELINE.0,
    events::BACKFILL.0,
    events::TIMESTAMPS,
    rooms::CURRENT_STATE,
    rooms::STATE_GROUPS,
    rooms::MEMBERSHIPS,
    rooms::REMOTE_MEMBERS,
    txns::TXNS,
    events::PENDING_REDACTIONS,
    UNSHARED_DEVICE_CHANGES,
    events::RELATIONS.0,
    ACCOUNT_DATA,
    RECEIPTS,
    ALIASES,
    PUBLIC_ROOMS,
    FILTERS,
    TO_DEVICE,
    DEVICE_KEYS,
    ONE_TIME_KEYS,
    KEY_CHANGES,
    CROSS_SIGNING_KEYS,
    KEY_SIGNATURES,
    DEVICE_LISTS,
    REMOTE_DEVICES,
    DEHYDRATED_DEVICES,
    BACKUP_VERSIONS,
    BACKUP_KEYS,
    PRESENCE,
    MEDIA,
    MEDIA_USAGE,
    OUTBOX,
    REMOTE_KEYS,
    txns::FEDERATION_TXNS,
    rooms::STRIPPED_STATE,
    NIDS,
    NAMES,
    events::AUTH_EDGES,
    PUSHERS,
    PUSH_PENDING,
    PUSH_QUEUE,
    OPENID_TOKENS,
    REPORTS,
    MEDIA_PENDING,
    MEDIA_THUMBNAILS,
    MEDIA_REMOTE,
];

/// A key of strings, each terminated, so that any leading run of them is a scan prefix.
pub fn key(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        put_str(&mut out, p);
    }
    out
}

/// Strings then a big-endian position.
pub fn key_pos(parts: &[&str], pos: u64) -> Vec<u8> {
    let mut out = key(parts);
    put_u64(&mut out, pos);
    out
}

/// The strings of a key written by [`key`] (or the string part of [`key_pos`]).
pub fn split(mut bytes: &[u8]) -> Vec<&str> {
    let mut out = Vec::new();
    while let Some((s, rest)) = tandem_storage::codec::take_str(bytes) {
        out.push(s);
        bytes = rest;
    }
    out
}

/// The position at the end of a [`key_pos`] key.
pub fn trailing_pos(bytes: &[u8]) -> u64 {
    bytes.len().checked_sub(8).and_then(|at| tandem_storage::codec::get_u64(bytes, at)).unwrap_or(0)
}
