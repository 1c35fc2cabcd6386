//! The tests' push gateway (`src/bin/push_gateway.rs`), run as a process of its own, and
//! a server that may push to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::http::request;

pub struct Gateway {
    child: Child,
    pub addr: String,
}

impl Gateway {
    pub fn start() -> Gateway {
        let mut child = Command::new(crate::server::built("push_gateway"))
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn push_gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("gateway address");
        let addr = line.trim().trim_start_matches("listening on http://").to_owned();
        Gateway { child, addr }
    }

    /// The notify URL pushers are given.
    pub fn url(&self) -> String {
        format!("http://{}/_matrix/push/v1/notify", self.addr)
    }

    /// Every notify request so far: `{"status", "body"}`.
    pub fn received(&self) -> Vec<Value> {
        let r = request(&self.addr, "GET", "/received", &[], None).expect(200);
        r["received"].as_array().cloned().unwrap_or_default()
    }

    /// The notifications it accepted (answered 200).
    pub fn accepted(&self) -> Vec<Value> {
        self.received().into_iter().filter(|r| r["status"] == 200).map(|r| r["body"]["notification"].clone()).collect()
    }

    /// Answers 500 to every notify request while `fail`.
    pub fn set_failing(&self, fail: bool) {
        self.control(json!({ "fail": fail }));
    }

    /// Answers that it rejects these pushkeys.
    pub fn reject(&self, pushkeys: &[&str]) {
        self.control(json!({ "reject": pushkeys }));
    }

    /// Names these pushkeys as rejected in every answer, sent or not (a hostile gateway).
    pub fn claim_rejected(&self, pushkeys: &[&str]) {
        self.control(json!({ "claim": pushkeys }));
    }

    fn control(&self, body: Value) {
        let body = body.to_string();
        request(&self.addr, "POST", "/control", &[("Content-Type", "application/json")], Some(body.as_bytes()))
            .expect(200);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
