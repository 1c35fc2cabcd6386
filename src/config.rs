//! The configuration: TOML, every key with a default, each overridable by `TANDEM_<KEY>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server_name: String,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub registration: Registration,
    pub registration_tokens: Vec<String>,
    pub registration_shared_secret: Option<String>,
    pub max_request_size: u64,
    pub media_quota_per_user: u64,
    /// Whether `/preview_url` fetches the pages users link to.
    pub url_previews: bool,
    pub public_base_url: Option<String>,
    pub rate_limit_message_per_second: f64,
    pub rate_limit_message_burst: f64,
    pub rate_limit_login_per_second: f64,
    pub rate_limit_login_burst: f64,
    pub rate_limit_registration_per_second: f64,
    pub rate_limit_registration_burst: f64,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub federation: Federation,
    pub limits: Limits,
    pub turn: Turn,
    /// Extra keys of `/.well-known/matrix/client` (`m.homeserver` is always the server's own).
    pub well_known_client: serde_json::Map<String, serde_json::Value>,
}

/// `[turn]`: the TURN servers clients are given for calls (`/voip/turnServer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Turn {
    pub uris: Vec<String>,
    /// coturn's `static-auth-secret`: each user gets credentials of its own, valid for
    /// `user_lifetime_secs`.
    pub shared_secret: Option<String>,
    /// Fixed credentials, when there is no shared secret.
    pub username: Option<String>,
    pub password: Option<String>,
    pub user_lifetime_secs: u64,
}

impl Default for Turn {
    fn default() -> Self {
        Turn { uris: Vec::new(), shared_secret: None, username: None, password: None, user_lifetime_secs: 3600 }
    }
}

/// `[limits]`: how long and how many connections the listeners hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 4096, header_timeout_secs: 30, body_timeout_secs: 60 }
    }
}

/// `[federation]`: talking to other homeservers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Federation {
    pub enabled: bool,
    /// A TLS listener of Tandem's own for the federation API (with `tls_cert` and `tls_key`).
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub verify_tls: bool,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub ip_range_blocklist: Vec<String>,
    pub well_known_server: Option<String>,
    pub trusted_key_servers: Vec<String>,
    pub request_timeout_secs: u64,
}

impl Default for Federation {
    fn default() -> Self {
        let defaults = tandem_federation::FederationConfig::default();
        Federation {
            enabled: true,
            listen: None,
            tls_cert: None,
            tls_key: None,
            verify_tls: true,
            allow: Vec::new(),
            deny: Vec::new(),
            ip_range_blocklist: defaults.ip_range_blocklist,
            well_known_server: None,
            trusted_key_servers: Vec::new(),
            request_timeout_secs: defaults.request_timeout.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Disabled,
    Token,
    Open,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: "localhost".into(),
            data_dir: PathBuf::from("./tandem-data"),
            listen: "127.0.0.1:8008".parse().expect("a socket address"),
            registration: Registration::Disabled,
            registration_tokens: Vec::new(),
            registration_shared_secret: None,
            max_request_size: 50 * 1024 * 1024,
            media_quota_per_user: 10 * 1024 * 1024 * 1024,
            url_previews: true,
            public_base_url: None,
            rate_limit_message_per_second: 0.2,
            rate_limit_message_burst: 10.0,
            rate_limit_login_per_second: 0.003,
            rate_limit_login_burst: 5.0,
            rate_limit_registration_per_second: 0.17,
            rate_limit_registration_burst: 3.0,
            trusted_proxies: Vec::new(),
            federation: Federation::default(),
            limits: Limits::default(),
            turn: Turn::default(),
            well_known_client: serde_json::Map::new(),
        }
    }
}

/// The documented configuration `tandem generate-config` prints: every key, at its default.
pub const TEMPLATE: &str = r#"# Tandem configuration. Every key is optional; shown here at its default.
# Each key can also be set by an environment variable TANDEM_<KEY>, e.g. TANDEM_SERVER_NAME.

# The server name: the part after the colon in user ids (@alice:example.org). It cannot change
# once users and rooms exist.
server_name = "localhost"

# Where the database and the signing key live.
data_dir = "./tandem-data"

# Address and port of the HTTP listener (client-server API).
listen = "127.0.0.1:8008"

# Who may register: "disabled", "token" (with a token from registration_tokens) or "open".
registration = "disabled"
registration_tokens = []

# When set, enables Synapse's shared-secret registration endpoint
# /_synapse/admin/v1/register (used by register_new_matrix_user and test suites).
# registration_shared_secret = "a long random string"

# The largest request body accepted, in bytes (uploads included).
max_request_size = 52428800

# The most bytes of media one user may upload in all (10 GiB); 0 for no limit. Uploads past
# it get M_RESOURCE_LIMIT_EXCEEDED.
media_quota_per_user = 10737418240

# Link previews (/preview_url): the server fetches the pages users link to and their images,
# through the outbound IP blocklist of [federation] (so never this server's own network).
# Turn off where the server must not fetch what users link to.
url_previews = true

# The URL clients should use, announced in /.well-known/matrix/client
# (default: http:// and the address the client reached this server at).
# public_base_url = "https://matrix.example.org"

# Rate limits, as token buckets: actions per second sustained, and the burst allowed.
# Synapse's defaults. A per_second of 0 turns a limit off. Messages are counted per user,
# logins and registrations per client address.
rate_limit_message_per_second = 0.2
rate_limit_message_burst = 10.0
rate_limit_login_per_second = 0.003
rate_limit_login_burst = 5.0
rate_limit_registration_per_second = 0.17
rate_limit_registration_burst = 3.0

# Reverse proxies (IP addresses) in front of Tandem: for requests from these, the client's
# address is taken from X-Forwarded-For, so that rate limits count per client and not one
# bucket for everyone behind the proxy. Leave empty when clients connect directly.
trusted_proxies = []

# Federation: talking to other homeservers. Nested keys are set from the environment with a
# double underscore, e.g. TANDEM_FEDERATION__VERIFY_TLS=false.
[federation]
enabled = true

# Federation is served on the main listener (for a reverse proxy terminating TLS on port
# 8448). To have Tandem terminate TLS itself, give an address and a PEM certificate and key:
# listen = "0.0.0.0:8448"
# tls_cert = "/etc/tandem/fullchain.pem"
# tls_key = "/etc/tandem/privkey.pem"

# Check other servers' certificates. Only tests with self-signed peers turn this off.
verify_tls = true

# Server names (wildcards * and ?) we federate with; an empty allow list allows all not
# denied. Enforced both ways: denied servers get M_FORBIDDEN and are never contacted.
allow = []
deny = []

# IP ranges never connected to, whatever a server name resolves to (Synapse's default list).
ip_range_blocklist = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "0.0.0.0/8", "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10"]

# Served as /.well-known/matrix/server, to delegate federation to another host:port.
# well_known_server = "matrix.example.org:443"

# Notary servers asked for the keys of servers that do not answer themselves.
trusted_key_servers = []

# The longest a request to another server may take, its answer included (a server that
# answers slowly or without end is given up on then). Answers are also cut at 100 MiB.
request_timeout_secs = 60

# Listeners (client and federation alike): open connections at most per listener (more are
# closed at once), and how long a TLS handshake or a request's headers (including a kept-alive
# connection's wait for its next request) and a request's body may take to arrive, so that
# slow or silent peers cannot hold connections.
[limits]
max_connections = 4096
header_timeout_secs = 30
body_timeout_secs = 60

# TURN servers for voice and video calls, given to clients by /voip/turnServer. With coturn,
# set its static-auth-secret as shared_secret: each user then gets credentials of its own,
# valid for user_lifetime_secs. Without URIs, clients are told there is no TURN server.
[turn]
uris = []
# uris = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
# shared_secret = "the static-auth-secret of coturn"
# username = "fixed user, when there is no shared secret"
# password = "its password"
user_lifetime_secs = 3600

# Extra keys served in /.well-known/matrix/client, for example Element Call's focus:
# [well_known_client]
# "org.matrix.msc4143.rtc_foci" = [{ type = "livekit", livekit_service_url = "https://livekit-jwt.example.org" }]
"#;

/// Why a configuration was refused: the key, the value and the reason.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Defaults, then the file (if any), then `TANDEM_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!("config file {}: no such file", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        // A variable naming no key (a script's TANDEM_BIN) is someone else's: warned about by
        // `unknown_environment`, not taken.
        let known = known_keys();
        let env = Env::prefixed("TANDEM_").split("__").filter(move |key| names_a_key(&known, key.as_str()));
        let figment = figment.merge(env);
        let config: Config = figment.extract().map_err(|e| {
            let errors: Vec<String> = e.into_iter().map(|e| describe(&figment, &e)).collect();
            ConfigError(errors.join("\n"))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, value: &str, why: &str| Err(ConfigError(format!("config key `{key}` = {value:?}: {why}")));
        if !valid_server_name(&self.server_name) {
            return bad(
                "server_name",
                &self.server_name,
                "not a server name (a host name or IP literal, with an optional port)",
            );
        }
        if self.registration == Registration::Token && self.registration_tokens.is_empty() {
            return bad("registration_tokens", "[]", "registration = \"token\" needs at least one token");
        }
        if self.max_request_size < 1024 {
            return bad("max_request_size", &self.max_request_size.to_string(), "must be at least 1024 bytes");
        }
        for (key, value) in [
            ("rate_limit_message_per_second", self.rate_limit_message_per_second),
            ("rate_limit_message_burst", self.rate_limit_message_burst),
            ("rate_limit_login_per_second", self.rate_limit_login_per_second),
            ("rate_limit_login_burst", self.rate_limit_login_burst),
            ("rate_limit_registration_per_second", self.rate_limit_registration_per_second),
            ("rate_limit_registration_burst", self.rate_limit_registration_burst),
        ] {
            if !value.is_finite() || value < 0.0 {
                return bad(key, &value.to_string(), "must be a number at least 0");
            }
        }
        let fed = &self.federation;
        if fed.request_timeout_secs == 0 {
            return bad("federation.request_timeout_secs", "0", "must be at least 1 second");
        }
        if fed.listen.is_some() && (fed.tls_cert.is_none() || fed.tls_key.is_none()) {
            return bad(
                "federation.listen",
                &format!("{:?}", fed.listen),
                "needs federation.tls_cert and federation.tls_key",
            );
        }
        for range in &fed.ip_range_blocklist {
            if tandem_federation::policy::IpRange::parse(range).is_none() {
                return bad("federation.ip_range_blocklist", range, "not an IP range (address/prefix)");
            }
        }
        for name in fed.allow.iter().chain(&fed.deny) {
            if name.is_empty() {
                return bad("federation.allow/deny", name, "empty server name pattern");
            }
        }
        if self.limits.max_connections == 0 {
            return bad("limits.max_connections", "0", "must be at least 1");
        }
        for (key, value) in [
            ("limits.header_timeout_secs", self.limits.header_timeout_secs),
            ("limits.body_timeout_secs", self.limits.body_timeout_secs),
        ] {
            if value == 0 {
                return bad(key, "0", "must be at least 1 second");
            }
        }
        if self.registration_shared_secret.as_deref() == Some("") {
            return bad("registration_shared_secret", "", "must not be empty (leave it out to disable the endpoint)");
        }
        Ok(())
    }
}

/// The keys a configuration has, as the defaults serialize them.
fn known_keys() -> serde_json::Value {
    serde_json::to_value(Config::default()).unwrap_or_default()
}

/// Whether an environment key (`federation__verify_tls`, the prefix stripped; figment's filter
/// sees it as `federation.verify_tls`) names a key of the configuration. Below a table that is empty by default (`well_known_client`) any key is
/// taken.
fn names_a_key(known: &serde_json::Value, env_key: &str) -> bool {
    let mut at = known;
    for part in env_key.to_ascii_lowercase().replace("__", ".").split('.') {
        match at.as_object() {
            Some(table) if table.is_empty() => return true,
            Some(table) => match table.get(part) {
                Some(next) => at = next,
                None => return false,
            },
            None => return false,
        }
    }
    true
}

/// The `TANDEM_*` environment variables that name no configuration key, which are not taken.
pub fn unknown_environment() -> Vec<String> {
    let known = known_keys();
    std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("TANDEM_").map(|rest| (k.clone(), rest.to_owned())))
        .filter(|(_, rest)| !names_a_key(&known, rest))
        .map(|(k, _)| k)
        .collect()
}

impl Config {
    /// The configuration as TOML, with its secrets masked (`tandem check-config`).
    pub fn to_masked_toml(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        for path in [
            &["registration_shared_secret"][..],
            &["registration_tokens"],
            &["turn", "shared_secret"],
            &["turn", "password"],
        ] {
            let (last, parents) = path.split_last().expect("a path");
            let mut at = &mut value;
            for p in parents {
                at = &mut at[*p];
            }
            if let Some(v) = at.get_mut(*last) {
                *v = match v {
                    serde_json::Value::Null => serde_json::Value::Null,
                    serde_json::Value::Array(a) => serde_json::json!(vec!["********"; a.len()]),
                    _ => serde_json::json!("********"),
                };
            }
        }
        // TOML has no null: unset keys are left out, as in a file.
        fn drop_nulls(v: &mut serde_json::Value) {
            if let Some(map) = v.as_object_mut() {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(drop_nulls);
            }
        }
        drop_nulls(&mut value);
        toml::to_string(&value).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

/// "config key `listen` = "nope" (from …): invalid socket address syntax".
fn describe(figment: &Figment, e: &figment::Error) -> String {
    let key = e.path.join(".");
    let source = e.metadata.as_ref().map(|m| format!(" (from {})", m.name)).unwrap_or_default();
    if key.is_empty() {
        return format!("config{source}: {}", e.kind);
    }
    let value = match figment.find_value(&key) {
        Ok(figment::value::Value::String(_, s)) => format!(" = {s:?}"),
        Ok(v) => v.clone().into_string().map(|s| format!(" = {s}")).unwrap_or_else(|| format!(" = {v:?}")),
        Err(_) => String::new(),
    };
    format!("config key `{key}`{value}{source}: {}", e.kind)
}

/// A host name or IP literal (IPv6 in brackets), with an optional port, as the spec's server
/// name grammar has it.
fn valid_server_name(name: &str) -> bool {
    let (host, port) = match name.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, Some(p)),
        _ => (name, None),
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[') {
        return v6.strip_suffix(']').is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !host.is_empty() && host.len() <= 255 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_naming_no_key_are_not_taken() {
        let known = known_keys();
        for key in [
            "server_name",
            "federation__verify_tls",
            "FEDERATION__IP_RANGE_BLOCKLIST",
            "well_known_client__x",
            "turn.password",
        ] {
            assert!(names_a_key(&known, key), "{key}");
        }
        for key in ["bin", "federation__nope", "conformance_url", "server_name__x"] {
            assert!(!names_a_key(&known, key), "{key}");
        }
        let mut config = Config { registration_shared_secret: Some("hunter2".into()), ..Default::default() };
        config.turn.password = Some("s3cret".into());
        let shown = config.to_masked_toml();
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("server_name = \"localhost\""), "{shown}");
    }

    #[test]
    fn the_template_is_the_defaults() {
        let parsed: Config =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(TEMPLATE)).extract().unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn server_names() {
        for ok in ["localhost", "example.org", "127.0.0.1:8481", "[::1]:8448", "matrix.example.org:443"] {
            assert!(valid_server_name(ok), "{ok}");
        }
        for bad in ["", "a b", "host:", "host:port", "[::1", "ex_ample.org", "h:123456"] {
            assert!(!valid_server_name(bad), "{bad}");
        }
    }
}
