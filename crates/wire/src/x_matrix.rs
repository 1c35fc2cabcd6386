//! The `X-Matrix` Authorization header of federation requests (the spec's grammar, which
//! allows quoted and unquoted values, in any order, with unknown parameters ignored).

/// The fields of an `X-Matrix` header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct XMatrix {
    pub origin: String,
    pub destination: Option<String>,
    pub key: String,
    pub sig: String,
}

/// The header's fields, if it is an `X-Matrix` header with origin, key and signature.
pub fn parse_x_matrix(header: &str) -> Option<XMatrix> {
    let params = header.strip_prefix("X-Matrix ").or_else(|| header.strip_prefix("x-matrix "))?;
    let mut out = XMatrix::default();
    for param in split_params(params) {
        let (name, value) = param.split_once('=')?;
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => unescape(quoted),
            None => value.to_owned(),
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "origin" => out.origin = value,
            "destination" => out.destination = Some(value),
            "key" => out.key = value,
            "sig" => out.sig = value,
            _ => {}
        }
    }
    (!out.origin.is_empty() && !out.key.is_empty() && !out.sig.is_empty()).then_some(out)
}

/// Whether `name` is a server name by the spec's grammar (host, optional port).
pub fn valid_server_name(name: &str) -> bool {
    name.len() <= 255 && <&ruma::ServerName>::try_from(name).is_ok()
}

/// A quoted string's value: `\x` stands for `x` (RFC 9110's quoted-pair).
fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Splits on commas outside double quotes.
fn split_params(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let x = parse_x_matrix(r#"X-Matrix origin="a.org",destination="b.org",key="ed25519:k",sig="ab/c+""#).unwrap();
        assert_eq!(x.origin, "a.org");
        assert_eq!(x.destination.as_deref(), Some("b.org"));
        assert_eq!(x.key, "ed25519:k");
        assert_eq!(x.sig, "ab/c+");
        let unquoted = parse_x_matrix("X-Matrix origin=127.0.0.1:8481,key=ed25519:a_1,sig=xyz").unwrap();
        assert_eq!(unquoted.origin, "127.0.0.1:8481");
        let escaped = parse_x_matrix(r#"X-Matrix origin="a\"b",key="k,1",sig="s\\""#).unwrap();
        assert_eq!((escaped.origin.as_str(), escaped.key.as_str(), escaped.sig.as_str()), ("a\"b", "k,1", "s\\"));
        assert!(parse_x_matrix("Bearer abc").is_none());
        assert!(parse_x_matrix(r#"X-Matrix origin="a.org""#).is_none());
        assert!(parse_x_matrix("X-Matrix origin=a.org,key,sig=x").is_none());
    }

    #[test]
    fn server_names() {
        assert!(valid_server_name("example.org:8448"));
        assert!(valid_server_name("127.0.0.1:8481"));
        assert!(!valid_server_name("exa mple.org"));
        assert!(!valid_server_name(&"a".repeat(256)));
    }
}
