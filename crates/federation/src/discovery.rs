//! Where another server's federation API lives, by the spec's server discovery: an IP literal
//! or an explicit port is used as is; otherwise `/.well-known/matrix/server` may delegate to
//! another name (used the same way); a hostname without a port is looked up as SRV
//! `_matrix-fed._tcp`, then the deprecated `_matrix._tcp`; otherwise port 8448. Answers are
//! cached for an hour.
//!
//! An SRV answer names the machine to connect to, but TLS and `Host` stay those of the server
//! name: the request goes to `https://<name>:<port>` and [`Overrides`], the HTTP client's DNS
//! resolver, sends `<name>` to the SRV target.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::policy::IpRange;

/// How to reach a server: the base URL to connect to, the `Host` it expects, and the machine
/// the base URL's host really is (an SRV target), if another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub base_url: String,
    pub host: String,
    pub connect_host: Option<String>,
}

/// One SRV record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The lookups discovery makes: a trait so that the steps can be tested without a network.
pub trait Lookups: Send + Sync {
    fn well_known<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Option<String>>;
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Vec<Srv>>;
}

const CACHE_FOR: Duration = Duration::from_secs(3600);

/// The HTTP client's DNS resolver: host names whose connections go to another machine (SRV
/// targets, shared with discovery), and the outbound IP blocklist applied to the very addresses
/// the connection will use, so that a name cannot resolve to a public address when checked and
/// to a private one when connected (DNS rebinding).
#[derive(Clone, Default)]
pub struct Overrides {
    targets: Arc<Mutex<HashMap<String, String>>>,
    blocklist: Arc<Vec<IpRange>>,
}

impl Overrides {
    pub fn new(blocklist: Vec<IpRange>) -> Self {
        Overrides { targets: Arc::default(), blocklist: Arc::new(blocklist) }
    }

    fn set(&self, host: &str, target: &str) {
        self.targets.lock().unwrap_or_else(|e| e.into_inner()).insert(host.to_owned(), target.to_owned());
    }

    pub fn target_of(&self, host: &str) -> Option<String> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner()).get(host).cloned()
    }

    pub fn blocked(&self, ip: IpAddr) -> bool {
        // The unspecified addresses reach this machine whatever the list says.
        ip.is_unspecified() || self.blocklist.iter().any(|r| r.contains(ip))
    }
}

impl reqwest::dns::Resolve for Overrides {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = self.target_of(name.as_str()).unwrap_or_else(|| name.as_str().to_owned());
        let this = self.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| !this.blocked(a.ip())).collect();
            if addrs.is_empty() {
                return Err(format!("every address of {host} is in the outbound IP blocklist").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub struct Discovery {
    cache: Mutex<HashMap<String, (Target, Instant)>>,
    lookups: Box<dyn Lookups>,
    pub overrides: Overrides,
}

pub use tandem_core::server_name::{ip_literal, split_server_name};

impl Discovery {
    pub fn new(lookups: Box<dyn Lookups>) -> Self {
        Discovery { cache: Mutex::default(), lookups, overrides: Overrides::default() }
    }

    pub async fn resolve(&self, server_name: &str) -> Option<Target> {
        if let Some((target, at)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(server_name)
            && at.elapsed() < CACHE_FOR
        {
            return Some(target.clone());
        }
        let target = discover(self.lookups.as_ref(), server_name).await?;
        if let (Some(connect), Ok(url)) = (&target.connect_host, reqwest::Url::parse(&target.base_url))
            && let Some(host) = url.host_str()
        {
            self.overrides.set(host, connect);
        }
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server_name.to_owned(), (target.clone(), Instant::now()));
        Some(target)
    }
}

/// The spec's steps, in order.
pub async fn discover(lookups: &dyn Lookups, server_name: &str) -> Option<Target> {
    let (host, port) = split_server_name(server_name)?;
    if ip_literal(host).is_some() || port.is_some() {
        return Some(direct(server_name, host, port));
    }
    let name = match lookups.well_known(host).await {
        Some(delegated) => {
            let (d_host, d_port) = split_server_name(&delegated)?;
            if ip_literal(d_host).is_some() || d_port.is_some() {
                return Some(direct(&delegated, d_host, d_port));
            }
            d_host.to_owned()
        }
        None => host.to_owned(),
    };
    for service in ["_matrix-fed._tcp", "_matrix._tcp"] {
        if let Some(srv) = pick(lookups.srv(&format!("{service}.{name}")).await) {
            return Some(Target {
                base_url: format!("https://{name}:{}", srv.port),
                host: name.clone(),
                connect_host: Some(srv.target),
            });
        }
    }
    Some(direct(&name, &name, None))
}

/// The record to use: the lowest priority, and among those the heaviest. (A record whose
/// target is `.` says the service is not offered.)
fn pick(mut records: Vec<Srv>) -> Option<Srv> {
    records.retain(|r| !r.target.is_empty() && r.target != ".");
    records.sort_by_key(|r| (r.priority, std::cmp::Reverse(r.weight)));
    records.into_iter().next().map(|mut r| {
        r.target = r.target.trim_end_matches('.').to_owned();
        r
    })
}

fn direct(name: &str, host: &str, port: Option<u16>) -> Target {
    Target { base_url: format!("https://{host}:{}", port.unwrap_or(8448)), host: name.to_owned(), connect_host: None }
}

/// The network's answers: `.well-known` over HTTPS, SRV from the system's DNS servers.
pub struct Network {
    pub http: reqwest::Client,
    pub dns: Option<hickory_resolver::TokioResolver>,
    pub overrides: Overrides,
}

/// Redirects followed for `.well-known` (the spec asks to follow them, avoiding loops).
const WELL_KNOWN_REDIRECTS: usize = 3;
/// The largest `.well-known` answer read (Synapse reads at most 50 KiB).
const WELL_KNOWN_MAX_BYTES: usize = 64 * 1024;

impl Lookups for Network {
    fn well_known<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut url = reqwest::Url::parse(&format!("https://{host}/.well-known/matrix/server")).ok()?;
            for _ in 0..=WELL_KNOWN_REDIRECTS {
                // The client follows no redirects itself: each hop is checked here (HTTPS only,
                // no IP literal in the blocklist; names are checked by the resolver).
                if url.scheme() != "https"
                    || url.host_str().and_then(ip_literal).is_some_and(|ip| self.overrides.blocked(ip))
                {
                    return None;
                }
                let mut response = self.http.get(url.clone()).timeout(Duration::from_secs(10)).send().await.ok()?;
                if response.status().is_redirection() {
                    let location = response.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
                    url = url.join(location).ok()?;
                    continue;
                }
                if !response.status().is_success() {
                    return None;
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.ok()? {
                    body.extend_from_slice(&chunk);
                    if body.len() > WELL_KNOWN_MAX_BYTES {
                        return None;
                    }
                }
                let body: Value = serde_json::from_slice(&body).ok()?;
                return body.get("m.server")?.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
            }
            None
        })
    }

    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Vec<Srv>> {
        Box::pin(async move {
            let Some(dns) = &self.dns else { return Vec::new() };
            match dns.srv_lookup(format!("{name}.")).await {
                Ok(found) => found
                    .iter()
                    .map(|r| Srv {
                        priority: r.priority(),
                        weight: r.weight(),
                        port: r.port(),
                        target: r.target().to_utf8(),
                    })
                    .collect(),
                Err(_) => Vec::new(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_names() {
        assert_eq!(direct("127.0.0.1:8481", "127.0.0.1", Some(8481)).base_url, "https://127.0.0.1:8481");
    }

    /// Answers from tables instead of the network.
    #[derive(Default)]
    struct Fixed {
        well_known: HashMap<String, String>,
        srv: HashMap<String, Vec<Srv>>,
    }

    impl Lookups for Fixed {
        fn well_known<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Option<String>> {
            Box::pin(async move { self.well_known.get(host).cloned() })
        }
        fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Vec<Srv>> {
            Box::pin(async move { self.srv.get(name).cloned().unwrap_or_default() })
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv { priority, weight, port, target: target.to_owned() }
    }

    fn run(lookups: &Fixed, name: &str) -> Target {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(discover(lookups, name)).expect("a target")
    }

    #[test]
    fn the_spec_steps_in_order() {
        let mut l = Fixed::default();
        l.well_known.insert("delegating.org".into(), "matrix.delegating.org".into());
        l.well_known.insert("ported.org".into(), "matrix.ported.org:1234".into());
        l.well_known.insert("literal.org".into(), "10.0.0.1".into());
        l.srv.insert("_matrix-fed._tcp.matrix.delegating.org".into(), vec![srv(10, 0, 8449, "fed.delegating.org.")]);
        l.srv.insert(
            "_matrix-fed._tcp.srv.org".into(),
            vec![srv(20, 5, 1, "backup.srv.org."), srv(10, 1, 2, "light.srv.org."), srv(10, 9, 3, "heavy.srv.org.")],
        );
        l.srv.insert("_matrix._tcp.old.org".into(), vec![srv(0, 0, 8000, "legacy.old.org.")]);
        l.srv.insert("_matrix-fed._tcp.none.org".into(), vec![srv(0, 0, 0, ".")]);

        // IP literals and explicit ports: no lookups at all.
        let t = run(&l, "127.0.0.1:8481");
        assert_eq!(
            (t.base_url.as_str(), t.host.as_str(), t.connect_host),
            ("https://127.0.0.1:8481", "127.0.0.1:8481", None)
        );
        assert_eq!(run(&l, "[::1]").base_url, "https://[::1]:8448");
        assert_eq!(run(&l, "delegating.org:9000").base_url, "https://delegating.org:9000");
        // .well-known to a hostname, then its SRV record: TLS and Host stay the delegated name.
        let t = run(&l, "delegating.org");
        assert_eq!(t.base_url, "https://matrix.delegating.org:8449");
        assert_eq!(t.host, "matrix.delegating.org");
        assert_eq!(t.connect_host.as_deref(), Some("fed.delegating.org"));
        // .well-known with a port or an IP literal: used as is.
        assert_eq!(run(&l, "ported.org").base_url, "https://matrix.ported.org:1234");
        assert_eq!(run(&l, "ported.org").host, "matrix.ported.org:1234");
        assert_eq!(run(&l, "literal.org").base_url, "https://10.0.0.1:8448");
        // No .well-known: SRV of the name itself, lowest priority then highest weight.
        let t = run(&l, "srv.org");
        assert_eq!((t.base_url.as_str(), t.connect_host.as_deref()), ("https://srv.org:3", Some("heavy.srv.org")));
        // The deprecated _matrix._tcp after _matrix-fed._tcp.
        assert_eq!(run(&l, "old.org").connect_host.as_deref(), Some("legacy.old.org"));
        // A "." target means no service: port 8448 on the name.
        let t = run(&l, "none.org");
        assert_eq!((t.base_url.as_str(), t.connect_host), ("https://none.org:8448", None));
        assert_eq!(run(&l, "plain.org").base_url, "https://plain.org:8448");
    }
}
