//! A push gateway for the tests: a process of its own that implements the Push Gateway API's
//! `POST /_matrix/push/v1/notify` and records every request it gets. A test steers it over
//! HTTP: `POST /control` with `{"fail": true|false, "reject": [pushkeys], "claim": [pushkeys]}`
//! makes it answer 500, reject pushkeys when they are sent, or (as a hostile gateway would)
//! name pushkeys as rejected in every answer; `GET /received` returns every notify request with the status it was
//! answered. Prints `listening on http://ADDR` once it accepts connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

#[derive(Default)]
struct Gateway {
    received: Vec<Value>,
    fail: bool,
    reject: Vec<String>,
    claim: Vec<String>,
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("listening on http://{}", listener.local_addr().expect("address"));
    let state = Arc::new(Mutex::new(Gateway::default()));
    for stream in listener.incoming().flatten() {
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &state);
        });
    }
}

/// Answers the requests of one connection (HTTP/1.1, kept alive unless the client asks
/// otherwise) until it closes.
fn serve(stream: TcpStream, state: &Mutex<Gateway>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
        let mut length = 0;
        let mut close = false;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, answer) = answer(state, &method, &path, body);
        let text = answer.to_string();
        write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn answer(state: &Mutex<Gateway>, method: &str, path: &str, body: Value) -> (u16, Value) {
    let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
    match (method, path) {
        ("POST", "/_matrix/push/v1/notify") => {
            let status = if g.fail { 500 } else { 200 };
            let pushkeys: Vec<String> = body["notification"]["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["pushkey"].as_str().map(str::to_owned))
                .collect();
            let rejected: Vec<&String> = pushkeys.iter().filter(|k| g.reject.contains(k)).chain(&g.claim).collect();
            let answer = if status == 200 { json!({ "rejected": rejected }) } else { json!({}) };
            g.received.push(json!({ "status": status, "body": body }));
            (status, answer)
        }
        ("POST", "/control") => {
            if let Some(fail) = body["fail"].as_bool() {
                g.fail = fail;
            }
            let keys = |v: &Value| -> Option<Vec<String>> {
                Some(v.as_array()?.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            };
            if let Some(reject) = keys(&body["reject"]) {
                g.reject = reject;
            }
            if let Some(claim) = keys(&body["claim"]) {
                g.claim = claim;
            }
            (200, json!({}))
        }
        ("GET", "/received") => (200, json!({ "received": g.received })),
        _ => (404, json!({ "errcode": "M_UNRECOGNIZED" })),
    }
}
