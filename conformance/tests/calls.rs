//! Calls and widgets: TURN credentials (`/voip/turnServer`), checked by a real coturn, and
//! OpenID tokens, which a widget or Element Call's focus checks with the user's server.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tandem_conformance::{Response, Server, enc, eventually, server};

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

/// A GET of the server's federation API with no signature, as a third party makes it: on the
/// main listener of the suite's Tandem, over TLS at the server name of an external server.
fn federation_get(s: &Server, path: &str) -> Response {
    if s.is_tandem() {
        s.call("GET", path, None, None)
    } else {
        let name = s.register("probe").server_name().to_owned();
        tandem_conformance::fedclient::send(&name, "GET", path, &[], None)
    }
}

/// A widget gets an OpenID token from the user's client and asks the user's server who it
/// stands for; the token is good for nothing else.
#[test]
fn openid_tokens_tell_a_third_party_who_the_user_is() {
    let s = server();
    let u = s.register("widgetuser");
    let other = s.register("otheruser");
    let path = |user: &str| format!("/_matrix/client/v3/user/{}/openid/request_token", enc(user));
    let t = u.post(&path(&u.user_id), json!({})).expect(200);
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert_eq!(t["expires_in"], 3600, "{t}");
    assert_eq!(t["matrix_server_name"], u.server_name(), "{t}");
    let token = t["access_token"].as_str().expect("access_token");
    u.post(&path(&other.user_id), json!({})).expect_err(403, "M_FORBIDDEN");
    s.call("POST", &path(&u.user_id), None, Some(&json!({}))).expect_err(401, "M_MISSING_TOKEN");

    let info = federation_get(s, &format!("/_matrix/federation/v1/openid/userinfo?access_token={}", enc(token)));
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.body["sub"], u.user_id.as_str());
    let wrong = federation_get(s, "/_matrix/federation/v1/openid/userinfo?access_token=not-a-token");
    assert_eq!((wrong.status, wrong.body["errcode"].as_str()), (401, Some("M_UNKNOWN_TOKEN")), "{}", wrong.body);
    let missing = federation_get(s, "/_matrix/federation/v1/openid/userinfo");
    assert_eq!((missing.status, missing.body["errcode"].as_str()), (401, Some("M_MISSING_TOKEN")), "{}", missing.body);
    // Not an access token of the client-server API.
    s.call("GET", "/_matrix/client/v3/account/whoami", Some(token), None).expect_err(401, "M_UNKNOWN_TOKEN");
}

/// Element Call finds its focus in `/.well-known/matrix/client`: keys the operator configures
/// are served beside `m.homeserver`, which stays the server's own.
#[test]
fn well_known_carries_the_configured_call_focus() {
    if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
        eprintln!("skipped: needs a server configured with extra .well-known keys");
        return;
    }
    let foci = r#"{"org.matrix.msc4143.rtc_foci"=[{type="livekit",livekit_service_url="https://lk.example.org"}],"m.homeserver"={base_url="https://elsewhere.example"}}"#;
    let s = Server::spawn_tandem(&[("TANDEM_WELL_KNOWN_CLIENT", foci)]);
    let wk = s.call("GET", "/.well-known/matrix/client", None, None).expect(200);
    assert_eq!(
        wk["org.matrix.msc4143.rtc_foci"],
        json!([{ "type": "livekit", "livekit_service_url": "https://lk.example.org" }])
    );
    assert_eq!(wk["m.homeserver"]["base_url"], format!("http://{}", s.addr()), "{wk}");
}
