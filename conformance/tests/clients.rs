//! Real client libraries against the server: matrix-nio (Python, installed with Synapse by
//! `../shared/peers/synapse/install.sh`), which validates every response against its schemas,
//! and matrix-js-sdk (the SDK inside Element Web), driving its own sync loop.

use std::path::PathBuf;
use std::process::Command;

use tandem_conformance::server;

fn nio_python() -> Option<PathBuf> {
    let python = match std::env::var_os("TANDEM_SYNAPSE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/matrix-peers/synapse-venv/bin/python"),
    };
    python.exists().then_some(python)
}

#[test]
fn two_nio_clients_chat() {
    let Some(python) = nio_python() else {
        // scripts/test installs the venv first; this only happens when run by hand without it.
        panic!("matrix-nio's venv not found: run ../shared/peers/synapse/install.sh or set TANDEM_SYNAPSE_PYTHON");
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/nio_chat.py");
    let url = format!("http://{}", server().addr());
    let out = Command::new(python).arg(script).arg(&url).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "nio_chat.py failed against {url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs one of the matrix-js-sdk (the SDK inside Element Web) scenarios in `clients/js` against
/// the server; each prints its steps and ends with "ok". The SDK comes from `npm ci` in that
/// folder, which `scripts/test` runs.
fn js_sdk_scenario(script: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js");
    assert!(
        std::path::Path::new(dir).join("node_modules/matrix-js-sdk").exists(),
        "matrix-js-sdk not installed: run `npm ci --prefix {dir}` (scripts/test does)"
    );
    let url = format!("http://{}", server().addr());
    let out = Command::new("node").arg(script).arg(&url).current_dir(dir).output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{script} failed against {url} (JS_SDK_DEBUG=1 shows the SDK's logs):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sign-up through interactive auth, invites, typing, messages, a picture uploaded and
/// downloaded through authenticated media, read receipts and the unread counts they clear.
#[test]
fn two_js_sdk_clients_chat() {
    js_sdk_scenario("chat.mjs");
}

/// An invite declined, a second one accepted, then leaving and forgetting the room.
#[test]
fn js_sdk_invite_decline_leave_forget() {
    js_sdk_scenario("membership.mjs");
}

/// Threads, reactions, edits and redactions, seen by the other side and aggregated by the server.
#[test]
fn js_sdk_threads_reactions_edits_redactions() {
    js_sdk_scenario("relations.mjs");
}

/// Element Web's Rust crypto (WASM): a Megolm room read on both sides and by a device that
/// arrives later, then cross-signing bootstrapped and reset through interactive auth.
#[test]
fn js_sdk_rust_crypto_e2ee() {
    js_sdk_scenario("e2ee.mjs");
}

/// Element Web's Secure Backup: secret storage under a recovery key and a server-side key
/// backup, from which a later device, given the recovery key, reads older messages.
#[test]
fn js_sdk_secure_backup() {
    js_sdk_scenario("backup.mjs");
}

/// The Rust SDK Element X is built on (`conformance/sdk`, its own workspace): sliding sync,
/// room list, timeline. `scripts/test` builds it and names the binary in `TANDEM_SDK_CHECK`.
#[test]
fn two_rust_sdk_clients_chat() {
    let Some(bin) = std::env::var_os("TANDEM_SDK_CHECK") else {
        eprintln!("skipped: TANDEM_SDK_CHECK not set (scripts/test builds conformance/sdk and sets it)");
        return;
    };
    let url = format!("http://{}", server().addr());
    let out = Command::new(bin).arg(&url).output().expect("run the sdk check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the Rust SDK check failed against {url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
