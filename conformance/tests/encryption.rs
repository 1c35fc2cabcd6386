//! End-to-end encryption with the crypto stack of Element X (`conformance/sdk`, the Rust SDK):
//! cross-signing, encrypted rooms and direct chats, a second device, key backup restored on a
//! fresh device, a signed-out device left out — on one server, and between Tandem and Synapse.
//! `scripts/test` builds the SDK check and names it in `TANDEM_SDK_CHECK`.

use std::process::Command;

use tandem_conformance::federation::{Kind, Peer};
use tandem_conformance::server;

fn sdk_e2ee(url_a: &str, url_b: &str) {
    let Some(bin) = std::env::var_os("TANDEM_SDK_CHECK") else {
        eprintln!("skipped: TANDEM_SDK_CHECK not set (scripts/test builds conformance/sdk and sets it)");
        return;
    };
    let out = Command::new(bin).args(["e2ee", url_a, url_b]).output().expect("run the sdk check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the SDK's encryption check failed between {url_a} and {url_b}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn element_x_encryption_on_one_server() {
    let url = format!("http://{}", server().addr());
    sdk_e2ee(&url, &url);
}

#[test]
fn element_x_encryption_between_tandem_and_synapse() {
    if std::env::var_os("TANDEM_SDK_CHECK").is_none() {
        eprintln!("skipped: TANDEM_SDK_CHECK not set");
        return;
    }
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Synapse, None)];
    let url = |p: &Peer| format!("http://{}", p.server.addr());
    sdk_e2ee(&url(&peers[0]), &url(&peers[1]));
    sdk_e2ee(&url(&peers[1]), &url(&peers[0]));
}

#[test]
fn element_x_encryption_between_two_tandems() {
    if std::env::var_os("TANDEM_SDK_CHECK").is_none() {
        eprintln!("skipped: TANDEM_SDK_CHECK not set");
        return;
    }
    let peers = [Peer::start(Kind::Tandem, None), Peer::start(Kind::Tandem, None)];
    let url = |p: &Peer| format!("http://{}", p.server.addr());
    sdk_e2ee(&url(&peers[0]), &url(&peers[1]));
}
