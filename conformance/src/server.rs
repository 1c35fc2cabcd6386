//! The server under test: a `tandem` process this harness starts, or an external server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use tempfile::TempDir;

/// The shared secret the harness configures (Synapse's peer recipe uses the same).
pub const SHARED_SECRET: &str = "test-shared-secret";

pub struct Server {
    addr: Mutex<String>,
    pub secret: String,
    tandem: Option<Spawned>,
    restart_command: Option<String>,
}

struct Spawned {
    child: Mutex<Option<Child>>,
    data: TempDir,
    env: Vec<(String, String)>,
}

/// The server this test binary runs against, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("TANDEM_CONFORMANCE_URL") {
        Ok(url) => Server {
            addr: Mutex::new(url.trim_start_matches("http://").trim_end_matches('/').to_owned()),
            secret: std::env::var("TANDEM_CONFORMANCE_SECRET").unwrap_or_else(|_| SHARED_SECRET.to_owned()),
            tandem: None,
            restart_command: std::env::var("TANDEM_CONFORMANCE_RESTART").ok(),
        },
        Err(_) => Server::spawn_tandem(&[]),
    })
}

/// The `tandem` binary: `TANDEM_BIN`, or the one cargo built beside this test.
fn tandem_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANDEM_BIN") {
        return bin.into();
    }
    built("tandem")
}

/// A binary of the workspace that cargo built beside this test (`tandem`, `push_gateway`).
pub fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(bin.exists(), "{} not built: run `cargo build --workspace`", bin.display());
    bin
}

/// Starts `bin serve` on `data` and a free port with only the given `TANDEM_*` settings
/// (never the caller's own, which the server would read as configuration), shared-secret
/// registration on and rate limits off; returns the child and its address, read from the
/// "listening on" log line. The server stops when the caller's end of its stdin closes.
pub fn launch(bin: &Path, data: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("TANDEM_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["serve", "--exit-on-stdin-eof"])
        .env("TANDEM_DATA_DIR", data)
        .env("TANDEM_LISTEN", "127.0.0.1:0")
        .env("TANDEM_REGISTRATION_SHARED_SECRET", SHARED_SECRET)
        .env("TANDEM_RATE_LIMIT_MESSAGE_PER_SECOND", "0")
        .env("TANDEM_RATE_LIMIT_LOGIN_PER_SECOND", "0")
        .env("TANDEM_RATE_LIMIT_REGISTRATION_PER_SECOND", "0")
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,tandem=info".into()))
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn tandem");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut before = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("tandem exited before listening:\n{}", before.join("\n"));
        };
        before.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("address")
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .to_owned();
        }
    };
    let echo = std::env::var_os("TANDEM_CONFORMANCE_LOG").is_some();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if echo {
                eprintln!("[tandem] {line}");
            }
        }
    });
    (child, addr)
}

/// The suite's Tandem: open registration and a 1 MiB request limit, plus a test's settings.
fn start(data: &Path, env: &[(String, String)]) -> (Child, String) {
    let mut all: Vec<(&str, &str)> = vec![("TANDEM_REGISTRATION", "open"), ("TANDEM_MAX_REQUEST_SIZE", "1048576")];
    all.extend(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    launch(&tandem_bin(), data, &all)
}

impl Server {
    /// A server started elsewhere, reached at `addr` (`host:port`), with its shared secret.
    pub fn external(addr: &str, secret: &str) -> Server {
        Server { addr: Mutex::new(addr.to_owned()), secret: secret.to_owned(), tandem: None, restart_command: None }
    }

    /// Starts a Tandem of this test's own, with extra `TANDEM_*` settings.
    pub fn spawn_tandem(env: &[(&str, &str)]) -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, addr) = start(data.path(), &env);
        Server {
            addr: Mutex::new(addr),
            secret: SHARED_SECRET.to_owned(),
            tandem: Some(Spawned { child: Mutex::new(Some(child)), data, env }),
            restart_command: None,
        }
    }

    pub fn addr(&self) -> String {
        self.addr.lock().expect("addr").clone()
    }

    /// The data directory of a Tandem this harness started.
    pub fn data_dir(&self) -> Option<&Path> {
        self.tandem.as_ref().map(|t| t.data.path())
    }

    pub fn is_tandem(&self) -> bool {
        self.tandem.is_some()
    }

    /// Whether [`Server::restart`] can work here.
    pub fn can_restart(&self) -> bool {
        self.tandem.is_some() || self.restart_command.is_some()
    }

    /// Stops the server (`kill -9` when `crash`, else SIGTERM) and starts it again on the same
    /// data. External servers run `TANDEM_CONFORMANCE_RESTART`.
    pub fn restart(&self, crash: bool) {
        if let Some(t) = &self.tandem {
            let mut slot = t.child.lock().expect("child");
            if let Some(mut child) = slot.take() {
                let signal = if crash { "-KILL" } else { "-TERM" };
                Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
                child.wait().expect("wait");
            }
            let (child, addr) = start(t.data.path(), &t.env);
            *slot = Some(child);
            *self.addr.lock().expect("addr") = addr;
        } else if let Some(cmd) = &self.restart_command {
            let status = Command::new("sh").args(["-c", cmd]).status().expect("restart command");
            assert!(status.success(), "restart command failed: {cmd}");
        } else {
            panic!("this server cannot be restarted (set TANDEM_CONFORMANCE_RESTART)");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = &self.tandem
            && let Some(mut child) = t.child.lock().ok().and_then(|mut c| c.take())
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The server under test, able to reach IPv4 loopback (a push gateway, a web site to preview)
/// and nothing else: the external server as it is (the Synapse of CI blocks everything but
/// 127.0.0.0/8), or a Tandem of the test's own whose outbound IP blocklist is all of IPv6 (the
/// suite's Tandem keeps the default, which blocks loopback).
pub enum LoopbackServer {
    Own(Server),
    Shared(&'static Server),
}

impl LoopbackServer {
    pub fn start() -> LoopbackServer {
        if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
            LoopbackServer::Shared(server())
        } else {
            LoopbackServer::Own(Server::spawn_tandem(&[("TANDEM_FEDERATION__IP_RANGE_BLOCKLIST", "[\"::/0\"]")]))
        }
    }
}

impl std::ops::Deref for LoopbackServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        match self {
            LoopbackServer::Own(s) => s,
            LoopbackServer::Shared(s) => s,
        }
    }
}
