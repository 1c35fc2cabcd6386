//! Several homeservers federating on loopback, with TLS: Tandem processes with a federation
//! listener of their own, and Synapse from the peers recipe. Server names are IP literals with
//! the federation port (`127.0.0.1:PORT`), so no name resolution is involved.
//!
//! The federation tests describe a set-up as a list of [`Kind`]s; run as the oracle
//! (`TANDEM_CONFORMANCE_URL` set, i.e. against Synapse) every peer is a Synapse, which proves
//! the tests encode Matrix behaviour.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::server::Server;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tandem,
    Synapse,
}

/// Whether the suite runs as the oracle: then every federation peer is a Synapse.
pub fn oracle() -> bool {
    std::env::var_os("TANDEM_CONFORMANCE_URL").is_some()
}

/// `kind`, or Synapse when running as the oracle.
pub fn peer_kind(kind: Kind) -> Kind {
    if oracle() { Kind::Synapse } else { kind }
}

/// One federating homeserver.
pub struct Peer {
    pub kind: Kind,
    /// The server name: `127.0.0.1:<federation port>`.
    pub name: String,
    pub server: Server,
    synapse: Option<SynapseDir>,
}

struct SynapseDir {
    peers: PathBuf,
    dir: PathBuf,
    client_port: u16,
    _tmp: TempDir,
}

impl Drop for SynapseDir {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.peers.join("stop.sh"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A free port below Linux's ephemeral range (32768–60999), so that while a server is down
/// for a restart no other process's outgoing connection or `:0` listener can take its port
/// (its server name includes the port). A port is handed out once per test process: between
/// this check and the server's own bind (a certificate and a process start later), a test
/// running in parallel could otherwise be handed the same port.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = 20_000 + rand::random::<u16>() % 12_000;
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// The settings of a Tandem named `127.0.0.1:port` that federates over TLS on that port, with
/// a self-signed certificate made in `tls_dir`, with other servers on loopback.
pub fn tandem_federation_env(port: u16, tls_dir: &Path) -> Vec<(String, String)> {
    let (cert, key) = self_signed(tls_dir);
    let name = format!("127.0.0.1:{port}");
    [
        ("TANDEM_SERVER_NAME", name.as_str()),
        ("TANDEM_FEDERATION__LISTEN", name.as_str()),
        ("TANDEM_FEDERATION__TLS_CERT", cert.to_str().expect("utf-8")),
        ("TANDEM_FEDERATION__TLS_KEY", key.to_str().expect("utf-8")),
        ("TANDEM_FEDERATION__VERIFY_TLS", "false"),
        // Loopback is in the default blocklist; these servers federate over nothing else.
        ("TANDEM_FEDERATION__IP_RANGE_BLOCKLIST", "[]"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The Synapse recipe: `TANDEM_PEERS`, or `shared/peers/synapse` beside the repository.
pub fn peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TANDEM_PEERS") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/synapse")
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

impl Peer {
    /// Starts a peer of `kind` (or a Synapse, as the oracle). `allow` restricts the servers it
    /// federates with (Tandem's `federation.allow`, Synapse's `federation_domain_whitelist`).
    pub fn start(kind: Kind, allow: Option<&[String]>) -> Peer {
        match peer_kind(kind) {
            Kind::Tandem => Self::tandem(free_port(), allow),
            Kind::Synapse => Self::synapse(free_port(), allow),
        }
    }

    /// Picks the federation port now, so that other peers' allow lists can name this one.
    pub fn reserve_name() -> (u16, String) {
        let port = free_port();
        (port, format!("127.0.0.1:{port}"))
    }

    pub fn start_on(kind: Kind, port: u16, allow: Option<&[String]>) -> Peer {
        match peer_kind(kind) {
            Kind::Tandem => Self::tandem(port, allow),
            Kind::Synapse => Self::synapse(port, allow),
        }
    }

    /// A Tandem peer with extra `TANDEM_*` settings (those a test needs beyond the usual:
    /// limits, a blocklist), whatever the run; `None` as the oracle, where there is no Tandem.
    pub fn tandem_with(extra: &[(&str, &str)]) -> Option<Peer> {
        if oracle() {
            return None;
        }
        Some(Self::tandem_env(free_port(), None, extra))
    }

    fn tandem(port: u16, allow: Option<&[String]>) -> Peer {
        Self::tandem_env(port, allow, &[])
    }

    fn tandem_env(port: u16, allow: Option<&[String]>, extra: &[(&str, &str)]) -> Peer {
        let tls = tempfile::tempdir().expect("tempdir");
        let name = format!("127.0.0.1:{port}");
        let mut env = tandem_federation_env(port, tls.path());
        if let Some(a) = allow {
            let list = a.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(",");
            env.push(("TANDEM_FEDERATION__ALLOW".into(), format!("[{list}]")));
        }
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let server = Server::spawn_tandem(&env);
        // The certificate files must outlive the server's start only; keep them anyway.
        std::mem::forget(tls);
        Peer { kind: Kind::Tandem, name, server, synapse: None }
    }

    fn synapse(port: u16, allow: Option<&[String]>) -> Peer {
        let peers = std::fs::canonicalize(peers_dir()).expect("the Synapse recipe (shared/peers/synapse)");
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("synapse");
        let client_port = free_port();
        let status = Command::new("bash")
            .arg(peers.join("setup.sh"))
            .arg(&dir)
            .args(["127.0.0.1", &port.to_string(), &client_port.to_string()])
            .env("LOGLEVEL", "WARNING")
            .stdout(Stdio::null())
            .status()
            .expect("setup.sh");
        assert!(status.success(), "setup.sh failed");
        let yaml = dir.join("homeserver.yaml");
        let mut text = std::fs::read_to_string(&yaml).expect("homeserver.yaml");
        // Off by default in Synapse; Tandem serves its directory to the servers it federates with.
        text.push_str("\nallow_public_rooms_over_federation: true\n");
        if let Some(allow) = allow {
            text.push_str("federation_domain_whitelist:\n");
            for s in allow {
                text.push_str(&format!("  - \"{s}\"\n"));
            }
        }
        std::fs::write(&yaml, text).expect("write homeserver.yaml");
        let synapse = SynapseDir { peers, dir, client_port, _tmp: tmp };
        synapse.start();
        let server = Server::external(&format!("127.0.0.1:{client_port}"), crate::server::SHARED_SECRET);
        Peer { kind: Kind::Synapse, name: format!("127.0.0.1:{port}"), server, synapse: Some(synapse) }
    }

    /// The peer's identity (server name and signing key), to speak federation as it.
    pub fn identity(&self) -> crate::fedclient::Identity {
        let key = match &self.synapse {
            Some(s) => s.dir.join("signing.key"),
            None => self.server.data_dir().expect("a Tandem started here").join("signing.key"),
        };
        crate::fedclient::Identity::from_key_file(&self.name, &key)
    }

    /// Kills the server with SIGKILL and starts it again on the same data and ports.
    pub fn crash_and_restart(&self) {
        match &self.synapse {
            None => self.server.restart(true),
            Some(s) => {
                let pid = std::fs::read_to_string(s.dir.join("run.pid")).expect("run.pid");
                Command::new("kill").args(["-KILL", pid.trim()]).status().expect("kill");
                crate::eventually(std::time::Duration::from_secs(30), "Synapse to die", || {
                    (!Path::new(&format!("/proc/{}", pid.trim())).exists()).then_some(())
                });
                let _ = std::fs::remove_file(s.dir.join("homeserver.pid"));
                let _ = std::fs::remove_file(s.dir.join("run.pid"));
                s.start();
            }
        }
    }
}

/// One Synapse starts at a time: a dozen Python processes importing Synapse at once on two
/// cores can take longer than the recipe's own wait for `/health`.
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl SynapseDir {
    fn start(&self) {
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let status = Command::new("bash")
            .arg(self.peers.join("start.sh"))
            .arg(&self.dir)
            .arg(self.client_port.to_string())
            .env("NO_NS", "1")
            .stdout(Stdio::null())
            .status()
            .expect("start.sh");
        if status.success() {
            return;
        }
        // start.sh gives up after a minute but leaves a slow Synapse running: wait longer for
        // it, as long as it lives.
        let pid = std::fs::read_to_string(self.dir.join("run.pid")).unwrap_or_default();
        let health = format!("http://127.0.0.1:{}/health", self.client_port);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        while std::time::Instant::now() < deadline {
            if !Path::new(&format!("/proc/{}", pid.trim())).exists() {
                break;
            }
            let up = Command::new("curl").args(["-fsS", "-o", "/dev/null", &health]).stderr(Stdio::null()).status();
            if up.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("homeserver.log")).unwrap_or_default();
        let stdout = std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        let tail =
            |s: &str| s.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!(
            "Synapse in {} did not start\n--- homeserver.log ---\n{}\n--- stdout.log ---\n{}",
            self.dir.display(),
            tail(&log),
            tail(&stdout)
        );
    }
}
