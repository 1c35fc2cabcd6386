//! The grammar of server names (`host[:port]`, IPv6 literals in brackets) and of the ids that
//! end in one (`@user:server`, `#alias:server`).

use std::net::IpAddr;

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

/// The address a host part names, if it is an IP literal.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// The server an id (`@user:server`, `#alias:server`, `!room:server`) belongs to, if it names a
/// well-formed one.
pub fn server_of(id: &str) -> Option<&str> {
    id.split_once(':').map(|(_, s)| s).filter(|s| split_server_name(s).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_server_name("example.org"), Some(("example.org", None)));
        assert_eq!(split_server_name("127.0.0.1:8481"), Some(("127.0.0.1", Some(8481))));
        assert_eq!(split_server_name("[::1]:8448"), Some(("[::1]", Some(8448))));
        assert_eq!(split_server_name("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_server_name("host:notaport"), None);
        assert_eq!(split_server_name(""), None);
        assert!(ip_literal("[::1]").is_some());
        assert!(ip_literal("example.org").is_none());
        assert_eq!(server_of("@a:example.org:8448"), Some("example.org:8448"));
        assert_eq!(server_of("@a"), None);
    }
}
