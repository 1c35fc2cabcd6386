//! What the engine asks of other servers. The engine runs every Matrix flow that crosses
//! servers itself (joins, invites, backfill, the received PDU pipeline, key queries); what it
//! needs from the federation layer (`tandem-federation`, installed with
//! [`Homeserver::set_network`]) is transport only: a [`Request`] of the server-server API sent,
//! signed, to one server, and other servers' signing keys. The client API reaches other servers
//! only through the engine, so neither HTTP layer depends on the other.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ruma::signatures::PublicKeyMap;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request of the server-server API, in the engine's terms; the federation layer gives it
/// its method, path and body. Answers come back as the JSON the other server sent, unchecked:
/// the engine checks them.
#[derive(Clone, Debug)]
pub enum Request {
    /// `GET /make_{join,knock,leave}`: a membership event template. Joins and knocks list the
    /// room versions this server supports.
    MakeMembership { membership: &'static str, room_id: String, user_id: String },
    /// `PUT /send_{join,knock,leave}`: the signed membership event.
    SendMembership { membership: &'static str, room_id: String, event_id: String, pdu: Value },
    /// `PUT /v2/invite`: `{room_version, event, invite_room_state}`.
    Invite { room_id: String, event_id: String, body: Value },
    /// `GET /event/{eventId}`.
    Event { event_id: String },
    /// `GET /event_auth/{roomId}/{eventId}`.
    EventAuth { room_id: String, event_id: String },
    /// `GET /state_ids/{roomId}?event_id=`.
    StateIds { room_id: String, event_id: String },
    /// `GET /state/{roomId}?event_id=`.
    State { room_id: String, event_id: String },
    /// `POST /get_missing_events/{roomId}`.
    MissingEvents { room_id: String, earliest: Vec<String>, latest: Vec<String>, limit: usize },
    /// `GET /backfill/{roomId}?v=…&limit=`.
    Backfill { room_id: String, from: Vec<String>, limit: usize },
    /// `GET /timestamp_to_event/{roomId}?ts=&dir=`.
    TimestampToEvent { room_id: String, ts: u64, forward: bool },
    /// `GET /query/directory?room_alias=`.
    Alias { alias: String },
    /// `GET /query/profile?user_id=&field=`.
    Profile { user_id: String, field: Option<String> },
    /// `GET /publicRooms`, or `POST` with a search term.
    PublicRooms { limit: Option<usize>, since: Option<String>, search: Option<String> },
    /// `GET /hierarchy/{roomId}?suggested_only=`.
    Hierarchy { room_id: String, suggested_only: bool },
    /// `GET /user/devices/{userId}`.
    UserDevices { user_id: String },
    /// `POST /user/keys/query`.
    KeysQuery { body: Value },
    /// `POST /user/keys/claim`.
    KeysClaim { body: Value },
}

/// What another server said of media it sent; the bytes went to the file.
#[derive(Clone, Debug, Default)]
pub struct MediaDownload {
    pub content_type: Option<String>,
    pub filename: Option<String>,
}

/// The federation layer, as the engine sees it.
pub trait Network: Send + Sync {
    /// Sends `request` to `destination` and returns its answer. Refusals and unreachable
    /// servers are errors (a 403 or 404 of the other server keeps its kind).
    fn request(&self, destination: String, request: Request) -> BoxFuture<'_, Result<Value>>;

    /// The verify keys of each `(server, key ids)` that could be had and were valid at `at`
    /// (ms since the epoch): fetched, cached, or ours. A server whose keys could not be had is
    /// absent; the signature check then fails for it.
    fn verify_keys(&self, wanted: Vec<(String, Vec<String>)>, at: u64) -> BoxFuture<'_, PublicKeyMap>;

    /// Downloads `media_id` of `destination` into `file`: at most `max_bytes`, waiting at most
    /// `timeout_ms` for media not uploaded yet. An answer larger than `max_bytes` is
    /// [`ErrorKind::RemoteTooLarge`], media the server does not have is `M_NOT_FOUND`.
    fn download_media(
        &self,
        destination: String,
        media_id: String,
        timeout_ms: u64,
        file: std::path::PathBuf,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<MediaDownload>>;
}

/// A page fetched from the web (outside federation): where it ended up after redirects, its
/// type and its body.
#[derive(Clone, Debug)]
pub struct WebPage {
    pub url: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Requests to the web outside federation (URL previews), installed whether or not the
/// server federates. Every hop goes through the outbound IP blocklist.
pub trait Web: Send + Sync {
    /// `GET url`, following at most a few redirects, reading at most `max_bytes` of the body
    /// (more is [`ErrorKind::RemoteTooLarge`]); a status other than 2xx is an error.
    fn get(&self, url: String, max_bytes: usize) -> BoxFuture<'_, Result<WebPage>>;
}

impl Homeserver {
    /// Installs the client for the web outside federation. Without one, URL previews fail.
    pub fn set_web(&self, web: Arc<dyn Web>) {
        let _ = self.web.set(web);
    }

    pub(crate) fn web(&self) -> Result<Arc<dyn Web>> {
        self.web
            .get()
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Forbidden, "URL previews are disabled on this server"))
    }

    /// Installs the federation layer. Without one, everything remote fails with `M_FORBIDDEN`.
    pub fn set_network(&self, network: Arc<dyn Network>) {
        let _ = self.network.set(network);
    }

    pub(crate) fn network(&self) -> Result<Arc<dyn Network>> {
        self.network
            .get()
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Forbidden, "Federation is disabled on this server"))
    }

    /// Sends one request to another server.
    pub(crate) async fn ask(&self, destination: &str, request: Request) -> Result<Value> {
        self.network()?.request(destination.to_owned(), request).await
    }
}
