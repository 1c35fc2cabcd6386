//! [`Homeserver`]: the open database, the signing key, and the machinery every write goes
//! through (one writer at a time, stream positions, waking long-polling syncs).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tandem_storage::{Batch, Db, Table};

use crate::error::Result;
use crate::server_key::ServerKey;
use crate::tables::{self, meta};

/// The engine: everything a request handler calls goes through here.
pub struct Homeserver {
    pub(crate) db: Db,
    pub(crate) key: ServerKey,
    pub(crate) server_name: String,
    /// Held while a write is prepared and applied: positions are handed out in commit order,
    /// so a reader that saw position `n` has seen everything below it.
    /// Fair: a writer in a tight loop (a busy room's sends) cannot starve another waiting for
    /// its turn (a receipt whose resolution ran outside the lock).
    writer: parking_lot::FairMutex<()>,
    stream: AtomicU64,
    state_group: AtomicU64,
    /// Bumped after every commit and every ephemeral change; long-polling syncs wait on it.
    wake: tokio::sync::watch::Sender<u64>,
    pub(crate) ephemeral: crate::ephemeral::Ephemeral,
    /// The authorization view of events read lately, the most used [`AUTH_CACHE_EVENTS`].
    pub(crate) auth_cache: Mutex<lru::LruCache<String, Arc<tandem_state_res::AuthEvent>>>,
    /// The auth events of stored events read lately, by nid, the most used
    /// [`AUTH_EDGES_EVENTS`]: all that a resolution's walk of a large unconflicted state needs,
    /// a tenth of an authorization view's size, so a room of a hundred thousand members fits.
    pub(crate) auth_edges: Mutex<lru::LruCache<tandem_state_res::EventNid, Box<[tandem_state_res::EventNid]>>>,
    pub(crate) group_cache: crate::rooms::state::GroupCache,
    /// Events' client forms, as far as they do not depend on the reader.
    pub(crate) rendered: crate::rooms::render::RenderCache,
    /// The integers standing for event ids and state keys in states.
    pub(crate) nids: crate::rooms::nids::Nids,
    me: Weak<Homeserver>,
    pub(crate) media_dir: std::path::PathBuf,
    pub(crate) remote_fetches: crate::media::remote::Fetches,
    pub(crate) sliding: crate::sliding::Connections,
    /// Room versions never change: kept once read.
    pub(crate) versions: Mutex<HashMap<String, String>>,
    /// `(state group, user)` → history visibility and the user's membership in that state;
    /// state groups never change, so entries never go stale.
    pub(crate) visibility: Mutex<HashMap<(u64, String), Visibility>>,
    /// State group → servers with joined members in it.
    pub(crate) servers_cache: Mutex<HashMap<u64, Arc<std::collections::BTreeSet<String>>>>,
    /// Destinations that got something queued since the sender last looked.
    pub(crate) outbox_pending: Mutex<std::collections::BTreeSet<String>>,
    pub(crate) outbox_wake: tokio::sync::Notify,
    /// Whether any pusher exists: only then are new events noted for the push queue.
    pub(crate) pushers_exist: std::sync::atomic::AtomicBool,
    /// Pushers that got something queued since the push sender last looked.
    pub(crate) push_owners: Mutex<std::collections::BTreeSet<crate::push::pushers::PusherId>>,
    pub(crate) push_wake: tokio::sync::Notify,
    pub(crate) network: std::sync::OnceLock<Arc<dyn crate::network::Network>>,
    pub(crate) web: std::sync::OnceLock<Arc<dyn crate::network::Web>>,
    /// URL previews made lately, by URL, with when they were made.
    pub(crate) previews: Mutex<lru::LruCache<String, (u64, Arc<serde_json::Value>)>>,
    /// The received PDU pipeline's locks.
    pub(crate) inbound: crate::inbound::Inbound,
}

/// How many events' authorization views are kept in memory.
const AUTH_CACHE_EVENTS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(100_000).expect("not zero");

/// How many events' auth events are kept in memory (about 100 bytes each).
const AUTH_EDGES_EVENTS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(400_000).expect("not zero");

/// A room's history visibility in one state, and a user's membership in it.
pub(crate) type Visibility = (String, Option<String>);

/// One write: a batch and the stream positions it takes.
pub(crate) struct Txn {
    pub batch: Batch,
    next_pos: u64,
    next_group: u64,
    /// Destinations this write queued something for: the sender is woken once it commits.
    pub outbox: Vec<String>,
    /// Events this write (re)indexed: their cached authorization view may be stale (an
    /// outlier found rejected once its place in the room is known) and is dropped once it
    /// commits.
    pub reindexed: Vec<String>,
    /// Nids this write handed out.
    pub nids: crate::rooms::nids::Pending,
    /// Whether this write noted events for the push queue.
    pub pushes: bool,
    /// Pushers this write queued something for.
    pub push_owners: Vec<crate::push::pushers::PusherId>,
}

impl Txn {
    /// A new stream position for something this write adds.
    pub fn pos(&mut self) -> u64 {
        self.next_pos += 1;
        self.next_pos
    }

    pub fn new_group(&mut self) -> u64 {
        self.next_group += 1;
        self.next_group
    }

    pub fn put_json(&mut self, table: Table, key: Vec<u8>, value: &impl Serialize) {
        self.batch.put(table, key, serde_json::to_vec(value).expect("serializable"));
    }
}

impl Homeserver {
    /// Opens (creating if needed) the database in `data_dir/db`; uploaded media live in
    /// `data_dir/media`.
    pub fn open(data_dir: &Path, server_name: &str, key: ServerKey) -> Result<Arc<Self>, tandem_storage::Error> {
        let db = Db::open(&data_dir.join("db"), tables::ALL)?;
        crate::upgrade::upgrade(&db, server_name)?;
        let stream = meta::counter(&db, b"stream")?;
        let state_group = meta::counter(&db, b"state_group")?;
        let nids = crate::rooms::nids::Nids::open(&db)?;
        let pushers_exist = db.scan_prefix(tables::PUSHERS, &[])?.next().is_some();
        Ok(Arc::new_cyclic(|me| Homeserver {
            me: me.clone(),
            media_dir: data_dir.join("media"),
            remote_fetches: Default::default(),
            sliding: Default::default(),
            versions: Mutex::new(HashMap::new()),
            visibility: Mutex::new(HashMap::new()),
            servers_cache: Mutex::new(HashMap::new()),
            outbox_pending: Mutex::new(Default::default()),
            outbox_wake: tokio::sync::Notify::new(),
            pushers_exist: pushers_exist.into(),
            push_owners: Mutex::new(Default::default()),
            push_wake: tokio::sync::Notify::new(),
            network: std::sync::OnceLock::new(),
            web: std::sync::OnceLock::new(),
            previews: Mutex::new(lru::LruCache::new(crate::media::preview::CACHED_PREVIEWS)),
            inbound: Default::default(),
            db,
            key,
            server_name: server_name.to_owned(),
            writer: parking_lot::FairMutex::new(()),
            stream: AtomicU64::new(stream),
            state_group: AtomicU64::new(state_group),
            wake: tokio::sync::watch::Sender::new(0),
            ephemeral: crate::ephemeral::Ephemeral::new(),
            auth_cache: Mutex::new(lru::LruCache::new(AUTH_CACHE_EVENTS)),
            auth_edges: Mutex::new(lru::LruCache::new(AUTH_EDGES_EVENTS)),
            group_cache: crate::rooms::state::group_cache(),
            rendered: crate::rooms::render::render_cache(),
            nids,
        }))
    }

    /// This server as an `Arc`, for tasks that outlive a call.
    pub(crate) fn self_ref(&self) -> Option<Arc<Homeserver>> {
        self.me.upgrade()
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    pub fn signing_key(&self) -> &ServerKey {
        &self.key
    }

    /// The last committed stream position.
    pub fn stream_pos(&self) -> u64 {
        self.stream.load(Ordering::Acquire)
    }

    /// Runs `f` as the only writer, then applies its batch durably and publishes its positions.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        let _guard = self.writer.lock();
        let start = self.stream.load(Ordering::Acquire);
        let group = self.state_group.load(Ordering::Acquire);
        let mut txn = Txn {
            batch: Batch::new(),
            next_pos: start,
            next_group: group,
            outbox: Vec::new(),
            reindexed: Vec::new(),
            nids: Default::default(),
            pushes: false,
            push_owners: Vec::new(),
        };
        let out = f(&mut txn);
        // Group ids are never handed out twice while the process runs, even by a write that
        // failed: caches keyed by group stay true.
        self.state_group.fetch_max(txn.next_group, Ordering::AcqRel);
        let out = out?;
        if txn.next_pos > start {
            meta::put_counter(&mut txn.batch, b"stream", txn.next_pos);
        }
        if txn.next_group > group {
            meta::put_counter(&mut txn.batch, b"state_group", txn.next_group);
        }
        self.nids.put_counters(&txn.nids, &mut txn.batch);
        if !txn.batch.is_empty() {
            self.db.write(txn.batch)?;
        }
        self.state_group.store(txn.next_group, Ordering::Release);
        self.nids.commit(txn.nids);
        if txn.next_pos > start {
            self.stream.store(txn.next_pos, Ordering::Release);
            self.wake();
        }
        if !txn.reindexed.is_empty() {
            let mut cache = lock(&self.auth_cache);
            for id in &txn.reindexed {
                cache.pop(id);
            }
        }
        if !txn.outbox.is_empty() {
            lock(&self.outbox_pending).extend(txn.outbox);
            self.outbox_wake.notify_one();
        }
        if txn.pushes || !txn.push_owners.is_empty() {
            lock(&self.push_owners).extend(txn.push_owners);
            self.push_wake.notify_one();
        }
        Ok(out)
    }

    /// Wakes every waiting sync.
    pub(crate) fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever something syncable happens.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.wake.subscribe()
    }

    pub(crate) fn get_json<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        match self.db.get(table, key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every `(key, value)` under `prefix`, values decoded.
    pub(crate) fn scan_json<T: DeserializeOwned>(&self, table: Table, prefix: &[u8]) -> Result<Vec<(Box<[u8]>, T)>> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(table, prefix)? {
            let (k, v) = entry?;
            out.push((k, serde_json::from_slice(&v)?));
        }
        Ok(out)
    }

    /// A random opaque string of `len` letters and digits.
    pub(crate) fn random_string(len: usize) -> String {
        use rand::Rng;
        use rand::distr::Alphanumeric;
        rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
    }

    pub(crate) fn now_ms() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    /// Runs synchronous engine work (database reads and writes) on Tokio's blocking pool, off
    /// the threads that drive requests and other servers' transactions.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Homeserver) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let hs = self.clone();
        match tokio::task::spawn_blocking(move || f(&hs)).await {
            Ok(result) => result,
            Err(e) => Err(crate::Error::internal(format!("engine task failed: {e}"))),
        }
    }

    /// Whether `user_id` is one of this server's users.
    pub fn is_local(&self, user_id: &str) -> bool {
        user_id.split_once(':').is_some_and(|(_, server)| server == self.server_name)
    }
}

/// Locks a mutex, ignoring poisoning: the data under these locks (caches, the writer token)
/// stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A server on a fresh data directory, for unit tests (the directory lives as long as the
/// returned guard).
#[cfg(test)]
pub(crate) fn test_server() -> (tempfile::TempDir, Arc<Homeserver>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hs = Homeserver::open(dir.path(), "example.org", crate::server_key::ServerKey::generate("t")).expect("open");
    (dir, hs)
}
