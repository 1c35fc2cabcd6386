//! Any `Authorization` header: the X-Matrix parser the federation listener runs before
//! anything else. Nothing may panic, and what it accepts has the fields a request needs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    for header in [header.to_owned(), format!("X-Matrix {header}")] {
        if let Some(x) = tandem_wire::parse_x_matrix(&header) {
            assert!(!x.origin.is_empty() && !x.key.is_empty() && !x.sig.is_empty());
            let _ = tandem_wire::valid_server_name(&x.origin);
        }
    }
});
