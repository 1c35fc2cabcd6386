//! Calls: TURN credentials (`/voip/turnServer`), checked by a real coturn.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tandem_conformance::{Server, eventually, server};

/// Without TURN servers configured the answer is an empty object, as Synapse gives, not an
/// error clients would show; the endpoint still needs a user.
#[test]
fn no_turn_server_is_an_empty_answer() {
    let s = server();
    let u = s.register("turnless");
    assert_eq!(u.get("/_matrix/client/v3/voip/turnServer").expect(200), json!({}));
    s.call("GET", "/_matrix/client/v3/voip/turnServer", None, None).expect_err(401, "M_MISSING_TOKEN");
}

struct Coturn(Child);

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// coturn with its shared secret (`static-auth-secret`) allocates a relay with the
/// credentials Tandem hands out, and refuses altered ones.
#[test]
fn coturn_accepts_the_credentials_tandem_hands_out() {
    if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
        eprintln!("skipped: needs a server configured with the TURN server's secret");
        return;
    }
    if Command::new("turnserver").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!("skipped: coturn (turnserver) is not installed");
        return;
    }
    let port = free_port().to_string();
    let secret = "the-shared-secret";
    let coturn = Coturn(
        Command::new("turnserver")
            .args(["--use-auth-secret", &format!("--static-auth-secret={secret}"), "--realm=tandem.test"])
            .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", &format!("--listening-port={port}")])
            .args(["--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--log-file=stdout"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver"),
    );
    eventually(Duration::from_secs(20), "coturn listening", || TcpStream::connect(format!("127.0.0.1:{port}")).ok());
    let uri = format!("turn:127.0.0.1:{port}?transport=tcp");
    let s =
        Server::spawn_tandem(&[("TANDEM_TURN__URIS", &format!("[\"{uri}\"]")), ("TANDEM_TURN__SHARED_SECRET", secret)]);
    let u = s.register("caller");
    let creds = u.get("/_matrix/client/v3/voip/turnServer").expect(200);
    assert_eq!(creds["uris"], json!([uri]));
    assert_eq!(creds["ttl"], 3600);
    let username = creds["username"].as_str().expect("username");
    assert!(username.ends_with(&format!(":{}", u.user_id)), "{creds}");
    let password = creds["password"].as_str().expect("password");
    let allocate = |password: &str| {
        Command::new("turnutils_uclient")
            .args(["-u", username, "-w", password, "-p", &port, "-y", "-t", "-n", "2", "-l", "100", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("turnutils_uclient")
            .success()
    };
    assert!(allocate(password), "coturn refused Tandem's credentials");
    assert!(!allocate(&format!("{password}x")), "coturn took altered credentials: the check proves nothing");
    drop(coturn);
}
