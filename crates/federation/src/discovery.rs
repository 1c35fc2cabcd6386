//! Where another server's federation API lives, by the spec's server discovery: an IP literal
//! or an explicit port is used as is; otherwise `/.well-known/matrix/server` may delegate to
//! another name; otherwise port 8448. Answers are cached for an hour.
//!
//! Not yet done: the SRV lookups (`_matrix-fed._tcp`, `_matrix._tcp`) between the well-known
//! step and the 8448 fallback.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How to reach a server: the base URL to connect to and the `Host` it expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub base_url: String,
    pub host: String,
}

const CACHE_FOR: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Discovery {
    cache: Mutex<HashMap<String, (Target, Instant)>>,
}

/// `host` and the port, if the name gives one. IPv6 literals keep their brackets.
pub fn split_server_name(name: &str) -> Option<(&str, Option<u16>)> {
    if name.is_empty() {
        return None;
    }
    if let Some(rest) = name.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &name[..end + 2];
        return match &rest[end + 1..] {
            "" => Some((host, None)),
            port => Some((host, Some(port.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match name.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((name, None)),
    }
}

pub fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

impl Discovery {
    pub async fn resolve(&self, http: &reqwest::Client, server_name: &str) -> Option<Target> {
        if let Some((target, at)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(server_name)
            && at.elapsed() < CACHE_FOR
        {
            return Some(target.clone());
        }
        let target = discover(http, server_name).await?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server_name.to_owned(), (target.clone(), Instant::now()));
        Some(target)
    }
}

async fn discover(http: &reqwest::Client, server_name: &str) -> Option<Target> {
    let (host, port) = split_server_name(server_name)?;
    if ip_literal(host).is_some() || port.is_some() {
        return Some(direct(server_name, host, port));
    }
    if let Some(delegated) = well_known(http, host).await
        && let Some((d_host, d_port)) = split_server_name(&delegated)
    {
        return Some(direct(&delegated, d_host, d_port));
    }
    Some(direct(server_name, host, None))
}

fn direct(name: &str, host: &str, port: Option<u16>) -> Target {
    Target { base_url: format!("https://{host}:{}", port.unwrap_or(8448)), host: name.to_owned() }
}

async fn well_known(http: &reqwest::Client, host: &str) -> Option<String> {
    let url = format!("https://{host}/.well-known/matrix/server");
    let response = http.get(url).timeout(Duration::from_secs(10)).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body.get("m.server")?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert_eq!(split_server_name("example.org"), Some(("example.org", None)));
        assert_eq!(split_server_name("127.0.0.1:8481"), Some(("127.0.0.1", Some(8481))));
        assert_eq!(split_server_name("[::1]:8448"), Some(("[::1]", Some(8448))));
        assert_eq!(split_server_name("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_server_name("host:notaport"), None);
        assert!(ip_literal("[::1]").is_some());
        assert_eq!(direct("127.0.0.1:8481", "127.0.0.1", Some(8481)).base_url, "https://127.0.0.1:8481");
    }
}
