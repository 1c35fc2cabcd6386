//! What every handler shares: the engine, the configuration, user-interactive auth sessions
//! and the rate limiters.

use std::ops::Deref;
use std::sync::Arc;

use tandem_core::Homeserver;

use crate::ratelimit::Limiters;
use crate::uia::UiaSessions;

/// Who may register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationMode {
    Disabled,
    Token,
    Open,
}

/// One rate limit: a token bucket refilled at `per_second`, holding at most `burst`.
/// `per_second == 0` turns it off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub server_name: String,
    /// The client-server base URL clients are told to use, if known.
    pub public_base_url: Option<String>,
    pub registration: RegistrationMode,
    pub registration_tokens: Vec<String>,
    pub registration_shared_secret: Option<String>,
    pub rate_limit_message: RateLimit,
    pub rate_limit_login: RateLimit,
    pub rate_limit_registration: RateLimit,
    /// The largest request body, announced as the upload limit.
    pub max_request_size: u64,
    /// The most bytes of media one user may upload in all; 0 for no limit.
    pub media_quota_per_user: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for rate limits and devices'
    /// last seen addresses).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub turn: TurnConfig,
    /// Extra keys of `/.well-known/matrix/client`.
    pub well_known_client: serde_json::Map<String, serde_json::Value>,
}

/// The TURN servers of `/voip/turnServer`.
#[derive(Clone, Debug, Default)]
pub struct TurnConfig {
    pub uris: Vec<String>,
    /// coturn's shared secret (its REST API scheme): credentials per user and expiry.
    pub shared_secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub user_lifetime: std::time::Duration,
}

pub struct ApiInner {
    pub hs: Arc<Homeserver>,
    pub config: ApiConfig,
    pub uia: UiaSessions,
    pub limits: Limiters,
}

/// The router's state: cheap to clone.
#[derive(Clone)]
pub struct Api(pub Arc<ApiInner>);

impl Deref for Api {
    type Target = ApiInner;
    fn deref(&self) -> &ApiInner {
        &self.0
    }
}
