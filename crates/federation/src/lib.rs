//! The server-server API: how this server talks to other homeservers, both ways.
//!
//! - Outbound: [`client`] signs requests (`X-Matrix`) and sends them where [`discovery`] says
//!   the server lives; [`keys`] fetches and caches other servers' signing keys; [`sender`]
//!   drains the engine's per-destination queue into transactions; [`push`] delivers the
//!   engine's push queue to users' push gateways (the only requests that leave federation); [`network`] is the engine's
//!   [`tandem_core::network::Network`]: the engine's requests given their paths and sent.
//! - Inbound: [`server`] holds the routes (`/_matrix/federation/*`, `/_matrix/key/*`), each
//!   authenticated by [`auth`], parsing and handing over to the engine, which runs every
//!   Matrix flow (the received PDU pipeline is `tandem_core::inbound`).
//! - [`tls`]: the optional listener of our own, for set-ups without a reverse proxy.

pub mod auth;
pub mod client;
pub mod discovery;
mod error;
pub mod keys;
pub mod media;
pub mod network;
pub mod policy;
pub mod push;
pub mod sender;
pub mod server;
pub mod web;

use std::sync::Arc;

use tandem_core::Homeserver;

pub use error::FedError;
pub use policy::ServerPolicy;

/// How this server federates.
#[derive(Clone, Debug)]
pub struct FederationConfig {
    /// Check other servers' TLS certificates. Off only for tests with self-signed peers.
    pub verify_tls: bool,
    /// Which servers may talk to us and be talked to.
    pub policy: ServerPolicy,
    /// IP ranges (CIDR) never connected to, whatever a server name resolves to.
    pub ip_range_blocklist: Vec<String>,
    /// Served as `/.well-known/matrix/server` (`host:port` of the federation endpoint).
    pub well_known_server: Option<String>,
    /// Notary servers asked for keys a server does not give itself.
    pub trusted_key_servers: Vec<String>,
    /// The longest a request to another server may take, answer included.
    pub request_timeout: std::time::Duration,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            verify_tls: true,
            policy: ServerPolicy::default(),
            ip_range_blocklist: policy::DEFAULT_IP_BLOCKLIST.iter().map(|s| s.to_string()).collect(),
            well_known_server: None,
            trusted_key_servers: Vec::new(),
            request_timeout: client::REQUEST_TIMEOUT,
        }
    }
}

/// The federation layer: shared by the routes, the sender and the remote handshakes.
pub struct Federation {
    pub hs: Arc<Homeserver>,
    pub config: FederationConfig,
    pub(crate) client: client::Client,
    pub(crate) keys: keys::KeyCache,
    pub(crate) sender: sender::Sender,
}

impl Federation {
    /// Sets up federation over `hs`: the outbound client, the engine's [`Network`] and the
    /// sender task (which needs a running Tokio runtime).
    ///
    /// [`Network`]: tandem_core::network::Network
    pub fn start(hs: Arc<Homeserver>, config: FederationConfig) -> Result<Arc<Self>, FedError> {
        if !config.verify_tls {
            tracing::warn!("federation: TLS certificates of other servers are NOT verified (verify_tls = false)");
        }
        let client = client::Client::new(&config)?;
        let fed = Arc::new(Federation {
            hs: hs.clone(),
            config,
            client,
            keys: keys::KeyCache::default(),
            sender: sender::Sender::default(),
        });
        hs.set_network(Arc::new(network::Remote(fed.clone())));
        // Device and key changes a crash kept from being queued go out now.
        if let Err(e) = hs.share_unshared_changes() {
            tracing::error!("queueing device changes left from before a restart: {e}");
        }
        tokio::spawn(sender::run(fed.clone()));
        tokio::spawn(prune_received(hs));
        Ok(fed)
    }

    pub fn server_name(&self) -> &str {
        self.hs.server_name()
    }
}

/// How long the transactions and to-device message ids other servers sent are remembered.
const RECEIVED_KEPT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Forgets old received transactions, hourly.
async fn prune_received(hs: Arc<Homeserver>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let hs = hs.clone();
        let older_than = now_ms().saturating_sub(RECEIVED_KEPT.as_millis() as u64);
        match blocking(move || hs.prune_received(older_than)).await {
            Ok(n) => tracing::debug!("forgot {n} received transactions"),
            Err(e) => tracing::warn!("pruning received transactions: {e}"),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Runs engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> tandem_core::Result<T> + Send + 'static,
) -> Result<T, FedError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(FedError::from),
        Err(e) => Err(FedError::Internal(format!("engine task failed: {e}"))),
    }
}
