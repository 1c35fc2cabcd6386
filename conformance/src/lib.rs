//! Black-box tests of a Matrix homeserver, over HTTP only.
//!
//! By default each test binary starts its own `tandem serve` on a fresh data directory and a
//! free port. With `TANDEM_CONFORMANCE_URL` (and `TANDEM_CONFORMANCE_SECRET`, the server's
//! `registration_shared_secret`) the same tests run against any homeserver, which is how CI
//! proves them against Synapse: a test that passes on both encodes Matrix behaviour, not
//! Tandem's. `TANDEM_CONFORMANCE_RESTART` is a shell command that restarts an external server,
//! for the persistence tests.

pub mod attack;
pub mod bench;
pub mod client;
pub mod e2ee;
pub mod fedclient;
pub mod federation;
pub mod hostile;
pub mod http;
pub mod images;
pub mod push_gateway;
pub mod server;

pub use client::{User, enc, unique};
pub use http::Response;
pub use server::{Server, server};

use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, or panics with `what` after `within`.
pub fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
