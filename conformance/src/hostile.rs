//! A hostile homeserver of the test's making: a server name on loopback, a signing key of its
//! own, a TLS listener that publishes its key document and answers the server under test as
//! a script says (templates for other rooms, huge or redirecting answers, ...), and the
//! federation requests it sends itself. Everything it does is logged, so a test can assert
//! what the server under test asked of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use crate::fedclient::Identity;
use crate::federation::{free_port, self_signed};
use crate::http::Response;

/// A request the server under test made.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: Vec<u8>,
}

/// How to answer a request.
pub enum Reply {
    Json(u16, Value),
    /// A status and headers with an empty body (redirects).
    Headers(u16, Vec<(String, String)>),
    /// A 200 whose body is `bytes` bytes of JSON-looking filler, streamed.
    Huge(usize),
    /// A status, headers and `body`; with `filler` more bytes, the body ends by closing the
    /// connection (no `Content-Length`, as a stream of unknown length), else it has a length.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        filler: usize,
    },
    /// A 200 announcing a body it sends a byte at a time, every half second, for ten minutes
    /// (longer than the suite waits for any answer) or until the other side hangs up.
    Endless,
}

type Script = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

pub struct Hostile {
    pub identity: Identity,
    /// `127.0.0.1:<port>`.
    pub name: String,
    script: Arc<Mutex<Arc<Script>>>,
    key_document: Arc<Mutex<Option<Value>>>,
    log: Arc<Mutex<Vec<Request>>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Hostile {
    /// Starts listening; its key document is served at once.
    pub fn start() -> Hostile {
        let port = free_port();
        let name = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = self_signed(dir.path());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&cert).expect("cert").collect::<Result<_, _>>().expect("cert");
        let key = PrivateKeyDer::from_pem_file(&key).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS config");
        let config = Arc::new(config);
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let none: Arc<Script> = Arc::new(|_: &Request| None);
        let hostile = Hostile {
            identity: Identity::generate(&name),
            name,
            script: Arc::new(Mutex::new(none)),
            key_document: Arc::default(),
            log: Arc::default(),
        };
        let (script, log, doc) = (hostile.script.clone(), hostile.log.clone(), hostile.key_document.clone());
        let own_doc = hostile.own_key_document(now_ms() + 24 * 3600 * 1000, json!({}));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (config, script, log, doc, own_doc) =
                    (config.clone(), script.clone(), log.clone(), doc.clone(), own_doc.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let _ = tls.sock.set_read_timeout(Some(Duration::from_secs(30)));
                    let Some(request) = read_request(&mut tls) else { return };
                    log.lock().expect("log").push(request.clone());
                    let reply = {
                        let script = script.lock().expect("script").clone();
                        script(&request)
                    };
                    let reply = reply.unwrap_or_else(|| {
                        if request.path.starts_with("/_matrix/key/v2/server") {
                            let doc = doc.lock().expect("doc").clone().unwrap_or(own_doc);
                            Reply::Json(200, doc)
                        } else {
                            Reply::Json(404, json!({ "errcode": "M_UNRECOGNIZED", "error": "hostile: no script" }))
                        }
                    });
                    write_reply(&mut tls, reply);
                    // A body that ends with the connection must end cleanly for TLS.
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        std::mem::forget(dir);
        hostile
    }

    /// Its key document, signed, valid until `valid_until_ts`, with these `old_verify_keys`.
    pub fn own_key_document(&self, valid_until_ts: u64, old_verify_keys: Value) -> Value {
        let mut doc = json!({
            "server_name": self.name,
            "valid_until_ts": valid_until_ts,
            "verify_keys": { self.identity.key_id.clone(): { "key": self.identity.public_key() } },
            "old_verify_keys": old_verify_keys,
        });
        self.identity.sign(&mut doc);
        doc
    }

    /// Serves this key document instead of the default one.
    pub fn set_key_document(&self, doc: Value) {
        *self.key_document.lock().expect("doc") = Some(doc);
    }

    /// Answers requests by `script` (`None`: the default answers).
    pub fn script(&self, script: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static) {
        *self.script.lock().expect("script") = Arc::new(script);
    }

    /// The requests received whose path starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<Request> {
        self.log.lock().expect("log").iter().filter(|r| r.path.starts_with(prefix)).cloned().collect()
    }

    /// A signed request to `destination`'s federation port, as this server.
    pub fn request(&self, destination: &str, method: &str, path: &str, body: Option<&Value>) -> Response {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        self.identity.request(destination, method, path, bytes.as_deref())
    }

    /// A transaction of `pdus` and `edus` to `destination`.
    pub fn send(&self, destination: &str, txn: &str, pdus: Vec<Value>, edus: Vec<Value>) -> Response {
        let body = json!({ "origin": self.name, "origin_server_ts": now_ms(), "pdus": pdus, "edus": edus });
        self.request(destination, "PUT", &format!("/_matrix/federation/v1/send/{txn}"), Some(&body))
    }

    /// A user of this server.
    pub fn user(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.name)
    }
}

fn read_request(stream: &mut impl Read) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(64 * 1024 * 1024)];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

fn write_reply(stream: &mut impl Write, reply: Reply) {
    let head = |status: u16, extra: &str, length: usize| {
        format!("HTTP/1.1 {status} X\r\nContent-Length: {length}\r\nConnection: close\r\n{extra}\r\n")
    };
    match reply {
        Reply::Json(status, body) => {
            let body = serde_json::to_vec(&body).expect("json");
            let _ = stream.write_all(head(status, "Content-Type: application/json\r\n", body.len()).as_bytes());
            let _ = stream.write_all(&body);
        }
        Reply::Headers(status, headers) => {
            let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            let _ = stream.write_all(head(status, &extra, 0).as_bytes());
        }
        Reply::Endless => {
            let _ = stream.write_all(head(200, "Content-Type: application/json\r\n", 1 << 20).as_bytes());
            for _ in 0..1200 {
                if stream.write_all(b" ").and_then(|()| stream.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Reply::Raw { status, headers, body, filler } => {
            let mut extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            if filler == 0 {
                extra.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            let _ = stream.write_all(format!("HTTP/1.1 {status} X\r\nConnection: close\r\n{extra}\r\n").as_bytes());
            let _ = stream.write_all(&body);
            fill(stream, b'x', filler);
        }
        Reply::Huge(bytes) => {
            let _ = stream.write_all(head(200, "Content-Type: application/json\r\n", bytes).as_bytes());
            fill(stream, b' ', bytes);
        }
    }
    let _ = stream.flush();
}

/// Writes `count` bytes of `byte`, until the other side stops reading.
fn fill(stream: &mut impl Write, byte: u8, count: usize) {
    let chunk = vec![byte; 64 * 1024];
    let mut left = count;
    while left > 0 {
        let n = left.min(chunk.len());
        if stream.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n;
    }
}
