//! The app flows of Element X, through the Rust SDK it is built on (`conformance/sdk`, its own
//! workspace), against the server: membership changes and forgetting rooms, room aliases and
//! previews, read receipts and unread counts, threads, reactions, edits, redactions, pinned
//! events, and verifying a new device with emoji or a QR code. Each flow runs on its own, so
//! one that fails does not hide the others. `scripts/test` builds the SDK check and names it in
//! `TANDEM_SDK_CHECK`.

use std::process::Command;

use tandem_conformance::push_gateway::Gateway;
use tandem_conformance::server::LoopbackServer;
use tandem_conformance::{Server, server};

fn sdk_flow(name: &str) {
    sdk_flow_on(server(), name, &[]);
}

fn sdk_flow_on(s: &Server, name: &str, env: &[(&str, &str)]) {
    let Some(bin) = std::env::var_os("TANDEM_SDK_CHECK") else {
        eprintln!("skipped: TANDEM_SDK_CHECK not set (scripts/test builds conformance/sdk and sets it)");
        return;
    };
    let url = format!("http://{}", s.addr());
    let out =
        Command::new(bin).args(["flows", &url, name]).envs(env.iter().copied()).output().expect("run the sdk check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the SDK's {name} flow failed against {url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Invite, decline, re-invite, accept; leave and forget, the room gone from the room list.
#[test]
fn element_x_membership() {
    sdk_flow("membership");
}

/// An alias published, made canonical, resolved and deleted; a public room previewed.
#[test]
fn element_x_aliases_and_previews() {
    sdk_flow("directory");
}

/// A read receipt clears the unread count that sliding sync reports.
#[test]
fn element_x_read_receipts() {
    sdk_flow("receipts");
}

/// Threads, reactions, edits, redactions and pinned events between two users.
#[test]
fn element_x_message_actions() {
    sdk_flow("messages");
}

/// Emoji (SAS) verification between two devices of one user.
#[test]
fn element_x_sas_verification() {
    sdk_flow("sas");
}

/// QR-code verification between two devices of one user.
#[test]
fn element_x_qr_verification() {
    sdk_flow("qr");
}

/// A phone's pusher set through the SDK; an encrypted direct message and a mention pushed to
/// the push gateway with the badge count, which reading both rooms brings to 0.
#[test]
fn element_x_push_notifications() {
    let s = LoopbackServer::start();
    let gateway = Gateway::start();
    sdk_flow_on(&s, "push", &[("TANDEM_PUSH_GATEWAY", &gateway.addr)]);
}
