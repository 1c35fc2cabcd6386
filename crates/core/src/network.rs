//! What the engine asks of other servers, as a trait the federation layer implements
//! (`tandem-federation`) and the binary installs with [`Homeserver::set_network`]. The client
//! API reaches other servers only through it, so neither HTTP layer depends on the other.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Membership handshakes and queries that need another server.
pub trait Network: Send + Sync {
    /// Joins (or knocks on, `membership == "knock"`) a room this server is not in, through
    /// the first of `via` that answers.
    fn join(
        &self,
        user_id: String,
        room_id: String,
        via: Vec<String>,
        membership: &'static str,
    ) -> BoxFuture<'_, Result<()>>;

    /// Leaves a room this server is not in (declines an invite, withdraws a knock).
    fn leave(&self, user_id: String, room_id: String) -> BoxFuture<'_, Result<()>>;

    /// Invites a user of another server to a room this server is in; the invite's event id.
    fn invite(
        &self,
        sender: String,
        room_id: String,
        target: String,
        reason: Option<String>,
        is_direct: bool,
    ) -> BoxFuture<'_, Result<String>>;

    /// Another server's alias: the room id and servers to join through.
    fn query_alias(&self, alias: String) -> BoxFuture<'_, Result<(String, Vec<String>)>>;

    /// Asks servers in the room for up to `limit` events of history before `frontier` (events
    /// this server lacks) and adds those that pass the checks; how many were added.
    fn backfill(&self, room_id: String, frontier: Vec<String>, limit: usize) -> BoxFuture<'_, Result<usize>>;

    /// Asks the other servers in the room for the event nearest `ts`: its id and timestamp.
    fn timestamp_to_event(
        &self,
        room_id: String,
        ts: u64,
        forward: bool,
    ) -> BoxFuture<'_, Result<Option<(String, u64)>>>;

    /// Another server's public room directory (`/publicRooms` with `server`).
    fn public_rooms(
        &self,
        server: String,
        limit: Option<usize>,
        since: Option<String>,
        search: Option<String>,
    ) -> BoxFuture<'_, Result<Value>>;

    /// `/hierarchy` of a room this server is not in, from the first of `via` that answers: the
    /// answer as given (`room`, `children`, `inaccessible_children`).
    fn hierarchy(&self, room_id: String, via: Vec<String>, suggested_only: bool) -> BoxFuture<'_, Result<Value>>;

    /// `/user/keys/query` on `server`: its users' device and cross-signing keys.
    fn query_keys(&self, server: String, request: Value) -> BoxFuture<'_, Result<Value>>;

    /// `/user/keys/claim` on `server`: one-time keys of its users' devices.
    fn claim_keys(&self, server: String, request: Value) -> BoxFuture<'_, Result<Value>>;

    /// Fetches another server's user's devices (`/user/devices`) into the device list cache.
    fn resync_devices(&self, user_id: String) -> BoxFuture<'_, Result<()>>;

    /// Another server's user's profile (or one field of it).
    fn query_profile(&self, user_id: String, field: Option<String>) -> BoxFuture<'_, Result<Value>>;
}

impl Homeserver {
    /// Installs the federation layer. Without one, everything remote fails with `M_FORBIDDEN`.
    pub fn set_network(&self, network: Arc<dyn Network>) {
        let _ = self.network.set(network);
    }

    pub fn network(&self) -> Result<Arc<dyn Network>> {
        self.network
            .get()
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Forbidden, "Federation is disabled on this server"))
    }
}
