//! Key encoding: fixed-width big-endian integers and length-safe strings, so that the bytewise
//! order RocksDB keeps is the order the engine means.

/// Appends `n` big-endian.
pub fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

/// Reads a big-endian `u64` at `at`.
pub fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// A key made of big-endian integers.
pub fn key_u64s(parts: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.len() * 8);
    for &p in parts {
        put_u64(&mut out, p);
    }
    out
}

/// Appends a string followed by a 0xFF terminator. No UTF-8 string contains 0xFF, so the
/// prefix written for one string never matches a longer string that starts the same way, and
/// the parts after a string group under it. (The order between strings is bytewise except that
/// a string sorts after the longer strings it begins: "ab" before "a".)
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0xFF);
}

/// Splits a string written by [`put_str`] off the front of `bytes`; the rest follows.
pub fn take_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let end = bytes.iter().position(|&b| b == 0xFF)?;
    Some((std::str::from_utf8(&bytes[..end]).ok()?, &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_sort_numerically() {
        let mut keys: Vec<Vec<u8>> = [300u64, 2, 1 << 40, 0, 255, 256].iter().map(|&n| key_u64s(&[n])).collect();
        keys.sort();
        let back: Vec<u64> = keys.iter().map(|k| get_u64(k, 0).unwrap()).collect();
        assert_eq!(back, vec![0, 2, 255, 256, 300, 1 << 40]);
    }

    #[test]
    fn strings_then_integers() {
        let key = |s: &str, n: u64| {
            let mut k = Vec::new();
            put_str(&mut k, s);
            put_u64(&mut k, n);
            k
        };
        let mut keys = vec![key("ab", 1), key("a", 9), key("a", 2), key("b", 0)];
        keys.sort();
        assert_eq!(keys, vec![key("ab", 1), key("a", 2), key("a", 9), key("b", 0)]);
        // The prefix of "a" does not reach into "ab".
        let mut prefix = Vec::new();
        put_str(&mut prefix, "a");
        assert_eq!(keys.iter().filter(|k| k.starts_with(&prefix)).count(), 2);
        let (s, rest) = take_str(&keys[0]).unwrap();
        assert_eq!((s, get_u64(rest, 0)), ("ab", Some(1)));
        assert_eq!(take_str(b"no terminator"), None);
    }
}
