//! The `tandem` binary, run as a process: configuration, start-up on defaults, shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tandem() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    // Only what a test sets: no TANDEM_* from the environment running the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("TANDEM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    cmd
}

/// Starts `tandem serve` on a free port in `data`; returns the child and its address, read
/// from its "listening on" log line.
fn start(data: &Path) -> (Child, String) {
    start_with(data, &[])
}

/// [`start`] with these environment variables too.
fn start_with(data: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = tandem()
        .args(["serve"])
        .envs(env.iter().copied())
        .env("TANDEM_DATA_DIR", data)
        .env("TANDEM_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("tandem exited before listening").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// One HTTP/1.1 request; the status line's code, the raw head, and the body.
fn http(addr: &str, request_head: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{request_head}Host: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "tandem did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_on_defaults_answers_discovery_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, addr) = start(&data);

    let (status, _, body) = http(&addr, "GET /_matrix/client/versions HTTP/1.1\r\n");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"versions\""), "{body}");

    let (status, _, body) = http(&addr, "GET /.well-known/matrix/client HTTP/1.1\r\n");
    assert_eq!(status, 200);
    // No `public_base_url`: clients are sent where they reached the server, not to
    // `https://<server_name>`, which serves nothing here.
    assert!(body.contains(&format!("\"http://{addr}\"")), "{body}");

    let (status, _, body) = http(&addr, "GET /_matrix/client/v3/no_such_endpoint HTTP/1.1\r\n");
    assert_eq!(status, 404);
    assert!(body.contains("M_UNRECOGNIZED"), "{body}");

    let (status, head, _) = http(
        &addr,
        "OPTIONS /_matrix/client/versions HTTP/1.1\r\nOrigin: https://app.element.io\r\nAccess-Control-Request-Method: GET\r\n",
    );
    assert!(status < 300, "{status}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");

    let key = std::fs::read_to_string(data.join("signing.key")).unwrap();
    assert!(key.starts_with("ed25519 "));
    assert!(stop(child).success());

    // The same key after a restart.
    let (child, _) = start(&data);
    assert_eq!(std::fs::read_to_string(data.join("signing.key")).unwrap(), key);
    assert!(stop(child).success());
}

#[test]
fn bad_configuration_is_refused_with_the_key_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec![("TANDEM_LISTEN", "not-an-address")], None, "listen"),
        (vec![("TANDEM_REGISTRATION", "token")], None, "registration_tokens"),
        (vec![("TANDEM_REGISTRATION", "sometimes")], None, "registration"),
        (vec![("TANDEM_SERVER_NAME", "bad name")], None, "server_name"),
        (vec![], Some("no_such_key = 1\n"), "no_such_key"),
        (vec![], Some("listen = 8008\n"), "listen"),
    ];
    for (env, file, key) in cases {
        let mut cmd = tandem();
        cmd.arg("serve").env("TANDEM_DATA_DIR", dir.path().join("never"));
        if let Some(contents) = file {
            let path = dir.path().join("tandem.toml");
            std::fs::write(&path, contents).unwrap();
            cmd.arg("--config").arg(&path);
        }
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?} {file:?}: {stderr}");
        assert!(stderr.contains(key), "{env:?} {file:?}: {stderr}");
    }
    assert!(!dir.path().join("never").exists(), "a refused configuration created the data directory");
}

/// A `TANDEM_*` variable naming no key (a script's `TANDEM_BIN`) is warned about and left
/// alone: the server starts; `check-config` prints what it runs with, secrets masked, and the
/// nested keys the environment set.
#[test]
fn unknown_environment_variables_are_warned_about_and_check_config_shows_the_rest() {
    let out = tandem()
        .arg("check-config")
        .env("TANDEM_BIN", "/usr/local/bin/tandem")
        .env("TANDEM_SERVER_NAME", "example.org")
        .env("TANDEM_REGISTRATION_SHARED_SECRET", "hunter2")
        .env("TANDEM_FEDERATION__VERIFY_TLS", "false")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("TANDEM_BIN"), "{stderr}");
    assert!(stdout.contains("server_name = \"example.org\""), "{stdout}");
    assert!(stdout.contains("verify_tls = false"), "{stdout}");
    assert!(!stdout.contains("hunter2") && stdout.contains("registration_shared_secret = \"********\""), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let (child, _) = start_with(dir.path(), &[("TANDEM_BIN", "/usr/local/bin/tandem")]);
    assert!(stop(child).success());
}

#[test]
fn generate_config_prints_the_documented_defaults_and_they_load() {
    let out = tandem().arg("generate-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("server_name = \"localhost\""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.toml");
    std::fs::write(
        &path,
        text.replace("./tandem-data", &dir.path().join("d").display().to_string())
            .replace("127.0.0.1:8008", "127.0.0.1:0"),
    )
    .unwrap();
    let mut child = tandem().args(["serve", "--config"]).arg(&path).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    assert!(line.contains("listening on"), "{line}");
    std::thread::spawn(move || for _ in stderr.lines() {});
    assert!(stop(child).success());
}

#[test]
fn create_user_works_stopped_and_refuses_clearly_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let create = |user: &str| {
        tandem()
            .args(["create-user", "--user", user, "--password", "pw", "--admin"])
            .env("TANDEM_DATA_DIR", &data)
            .output()
            .unwrap()
    };
    let out = create("alice");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("@alice:localhost"));
    let again = create("alice");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("taken"), "{}", String::from_utf8_lossy(&again.stderr));

    let (child, _) = start(&data);
    let running = create("bob");
    assert!(!running.status.success());
    let err = String::from_utf8_lossy(&running.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(stop(child).success());
}
