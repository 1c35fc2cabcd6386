//! Starting the servers under test: Tandem from its binary, Synapse from the peers recipe on
//! PostgreSQL (the production set-up), both with their data under one directory on one disk.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::conn::Conn;

pub struct Running {
    pub name: &'static str,
    pub addr: String,
    pub pid: u32,
    /// The name other servers know it by, if it federates.
    pub server_name: Option<String>,
    /// Where the server keeps its data, for disk use (Synapse: PostgreSQL's size query).
    pub data: DataLocation,
    pub startup: Duration,
    stop: Stop,
}

pub enum DataLocation {
    Dir(PathBuf),
    Postgres { database: String },
}

enum Stop {
    Child(Child),
    Script { peers: PathBuf, dir: PathBuf },
}

/// Waits until `GET /_matrix/client/versions` answers.
fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            let (status, _) = Conn::new(addr, None).call("GET", "/_matrix/client/versions", None);
            if status == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{addr} did not come up");
}

pub fn start_tandem(bin: &Path, data: &Path) -> Running {
    launch_tandem(bin, data, &[], None)
}

/// A Tandem that federates (over TLS on a port of its own, named after it), its certificate
/// kept in `tls_dir`.
pub fn start_tandem_federating(bin: &Path, data: &Path, tls_dir: &Path) -> Running {
    let port = crate::federation::free_port();
    let env = crate::federation::tandem_federation_env(port, tls_dir);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    launch_tandem(bin, data, &env, Some(format!("127.0.0.1:{port}")))
}

fn launch_tandem(bin: &Path, data: &Path, extra: &[(&str, &str)], server_name: Option<String>) -> Running {
    let started = Instant::now();
    let mut env = vec![("TANDEM_REGISTRATION", "open")];
    env.extend_from_slice(extra);
    let (child, addr) = crate::server::launch(bin, data, &env);
    wait_ready(&addr);
    Running {
        name: "Tandem",
        pid: child.id(),
        addr,
        server_name,
        data: DataLocation::Dir(data.to_owned()),
        startup: started.elapsed(),
        stop: Stop::Child(child),
    }
}

/// Runs a statement as the `postgres` superuser.
fn psql(sql: &str) -> String {
    let out = Command::new("su").args(["postgres", "-c", &format!("psql -qAtX -c \"{sql}\"")]).output().expect("psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Makes sure the local PostgreSQL cluster runs and has a fresh database for Synapse.
pub fn prepare_postgres(database: &str) {
    let _ = Command::new("pg_ctlcluster").args(["15", "main", "start"]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("pg_isready").arg("-q").status().map(|s| !s.success()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "PostgreSQL did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    if psql("SELECT 1 FROM pg_roles WHERE rolname='synapse_bench'").is_empty() {
        psql("CREATE ROLE synapse_bench LOGIN PASSWORD 'bench'");
    }
    psql(&format!("DROP DATABASE IF EXISTS {database}"));
    psql(&format!(
        "CREATE DATABASE {database} OWNER synapse_bench ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    ));
}

pub fn postgres_database_bytes(database: &str) -> u64 {
    psql(&format!("SELECT pg_database_size('{database}')")).parse().unwrap_or(0)
}

pub fn start_synapse(peers: &Path, dir: &Path, database: &str) -> Running {
    let fed = crate::federation::free_port();
    let client = crate::federation::free_port();
    let status = Command::new("bash")
        .arg(peers.join("setup.sh"))
        .args([dir.to_str().expect("utf-8 path"), "127.0.0.1", &fed.to_string(), &client.to_string()])
        .env("LOGLEVEL", "WARNING")
        .stdout(Stdio::null())
        .status()
        .expect("setup.sh");
    assert!(status.success(), "setup.sh failed");
    // Production set-up: PostgreSQL instead of the recipe's SQLite.
    let yaml_path = dir.join("homeserver.yaml");
    let yaml = std::fs::read_to_string(&yaml_path).expect("homeserver.yaml");
    let start = yaml.find("database:").expect("a database section");
    let end = start + yaml[start..].find("\n\n").expect("end of the database section");
    let postgres = format!(
        "database:\n  name: psycopg2\n  args:\n    user: synapse_bench\n    password: bench\n    dbname: {database}\n    host: 127.0.0.1\n    cp_min: 5\n    cp_max: 10"
    );
    // Registration is never what is measured, but at bcrypt's default 12 rounds registering
    // the growth workload's 10,000 users alone would take most of an hour.
    let yaml = format!("{}{}{}\nbcrypt_rounds: 4\n", &yaml[..start], postgres, &yaml[end..]);
    std::fs::write(&yaml_path, yaml).expect("write yaml");
    launch_synapse(peers, dir, client, database)
}

/// The `nth` listener port in a Synapse directory's configuration (0: federation, 1: client).
fn synapse_port(dir: &Path, nth: usize) -> u16 {
    let yaml = std::fs::read_to_string(dir.join("homeserver.yaml")).expect("homeserver.yaml");
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("- port: "))
        .filter_map(|p| p.trim().parse().ok())
        .nth(nth)
        .expect("a listener port")
}

/// Starts Synapse (already set up in `dir`) with the recipe's start.sh and waits for it.
fn launch_synapse(peers: &Path, dir: &Path, client: u16, database: &str) -> Running {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(peers.join("start.sh"))
        .args([dir.to_str().expect("utf-8 path"), &client.to_string()])
        .env("NO_NS", "1")
        .stdout(Stdio::null())
        .status()
        .expect("start.sh");
    assert!(status.success(), "start.sh failed (see {}/homeserver.log)", dir.display());
    let addr = format!("127.0.0.1:{client}");
    wait_ready(&addr);
    let pid = std::fs::read_to_string(dir.join("run.pid")).expect("run.pid").trim().parse().expect("pid");
    Running {
        name: "Synapse",
        addr,
        pid,
        server_name: Some(format!("127.0.0.1:{}", synapse_port(dir, 0))),
        data: DataLocation::Postgres { database: database.to_owned() },
        startup: started.elapsed(),
        stop: Stop::Script { peers: peers.to_owned(), dir: dir.to_owned() },
    }
}

impl Running {
    /// CPU seconds used so far by the server: for Synapse, its process and its PostgreSQL
    /// backends (a backend that exited takes its time with it; Synapse keeps a pool open).
    pub fn cpu_seconds(&self) -> f64 {
        let own = crate::bench::stats::cpu_seconds(self.pid);
        match &self.data {
            DataLocation::Dir(_) => own,
            DataLocation::Postgres { database } => own + crate::bench::stats::cpu_seconds_matching(database),
        }
    }

    pub fn disk_bytes(&self) -> u64 {
        match &self.data {
            DataLocation::Dir(d) => crate::bench::stats::dir_bytes(d),
            DataLocation::Postgres { database } => postgres_database_bytes(database),
        }
    }

    pub fn stop(self) {
        match self.stop {
            Stop::Child(mut c) => {
                let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
                let _ = c.wait();
            }
            Stop::Script { peers, dir } => {
                let _ = Command::new("bash").arg(peers.join("stop.sh")).arg(&dir).status();
            }
        }
    }
}

/// Starts a stopped Synapse again on its directory and database.
pub fn restart_synapse(peers: &Path, dir: &Path, database: &str) -> Running {
    launch_synapse(peers, dir, synapse_port(dir, 1), database)
}
