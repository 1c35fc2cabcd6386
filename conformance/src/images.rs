//! Images for media tests, made here so the tests need no image library.

use base64::Engine;

/// A 64×48 PNG of one colour.
const PNG_64X48: &str = "iVBORw0KGgoAAAANSUhEUgAAAEAAAAAwCAIAAAAuKetIAAAAQ0lEQVR42u3PQQkAAAgEsItz/VMYywp+hcEKLNO+FgEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGBqwWPoCDEkZcDMwAAAABJRU5ErkJggg==";

pub fn png_64x48() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(PNG_64X48).expect("base64")
}

/// The width and height a PNG's header gives.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {:?}", &bytes[..bytes.len().min(16)]);
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}
