//! Who this server federates with: allow and deny lists of server names (with `*` and `?`
//! wildcards), and the IP ranges it never connects to.

use std::net::IpAddr;

/// Server names allowed and denied. An empty allow list allows every server not denied.
#[derive(Clone, Debug, Default)]
pub struct ServerPolicy {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl ServerPolicy {
    pub fn allows(&self, server: &str) -> bool {
        if self.deny.iter().any(|p| glob(p, server)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|p| glob(p, server))
    }
}

pub use tandem_core::push::glob;

/// Synapse's default: loopback, private, link-local, shared, documentation and multicast.
pub const DEFAULT_IP_BLOCKLIST: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "0.0.0.0/8",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
];

/// A parsed CIDR range.
#[derive(Clone, Debug)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpRange { net: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask(u32::from(n) as u128, u32::from(a) as u128, self.prefix, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask(u128::from(n), u128::from(a), self.prefix, 128),
            _ => false,
        }
    }
}

fn mask(net: u128, addr: u128, prefix: u8, bits: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix as u32;
    (net >> shift) == (addr >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.example.org", "matrix.example.org"));
        assert!(!glob("*.example.org", "example.org"));
        assert!(glob("127.0.0.1:84??", "127.0.0.1:8481"));
        assert!(!glob("127.0.0.1:84??", "127.0.0.1:848"));
        assert!(glob("*", "anything"));
        assert!(glob("Example.ORG", "example.org"));
    }

    #[test]
    fn policy() {
        let p = ServerPolicy { allow: vec!["*.gouv.fr".into(), "bund.de".into()], deny: vec!["evil.gouv.fr".into()] };
        assert!(p.allows("matrix.gouv.fr"));
        assert!(p.allows("bund.de"));
        assert!(!p.allows("evil.gouv.fr"));
        assert!(!p.allows("example.com"));
        assert!(ServerPolicy::default().allows("example.com"));
    }

    #[test]
    fn ranges() {
        let r = IpRange::parse("127.0.0.0/8").unwrap();
        assert!(r.contains("127.1.2.3".parse().unwrap()));
        assert!(r.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!r.contains("128.0.0.1".parse().unwrap()));
        assert!(IpRange::parse("fc00::/7").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
    }
}
