//! A registered user and the requests tests make as that user.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::http::{Response, request};
use crate::server::Server;

/// Percent-encodes one path segment.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Synapse's shared-secret registration MAC: HMAC-SHA1 over
/// `nonce\0username\0password\0admin|notadmin`, hex.
pub fn shared_secret_mac(secret: &str, nonce: &str, localpart: &str, password: &str, admin: bool) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("hmac");
    let admin_word: &[u8] = if admin { b"admin" } else { b"notadmin" };
    for (i, part) in [nonce.as_bytes(), localpart.as_bytes(), password.as_bytes(), admin_word].iter().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

pub struct User<'s> {
    pub server: &'s Server,
    pub user_id: String,
    pub localpart: String,
    pub password: String,
    pub token: String,
    pub device_id: String,
}

/// A username no other test run has used.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", rand::random::<u32>())
}

impl Server {
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        request(&self.addr(), method, path, &headers, bytes.as_deref())
    }

    /// A raw request: any bytes as the body, any headers.
    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
        request(&self.addr(), method, path, headers, body)
    }

    /// Registers a fresh user the way client apps do (see [`Server::register_as`]).
    pub fn register(&self, prefix: &str) -> User<'_> {
        self.register_as(&unique(prefix), false)
    }

    /// Registers `localpart`. A user registers as Element and the SDKs do: `POST /register`
    /// with `{}` to learn the flows and open a session (401), then the account with
    /// `m.login.dummy` in that session. Only a server admin (`admin`) is made through the
    /// shared-secret admin endpoint, the one way to create one.
    pub fn register_as(&self, localpart: &str, admin: bool) -> User<'_> {
        if admin {
            return self.register_admin(localpart);
        }
        let password = format!("pw-{localpart}");
        let challenge = self.call("POST", "/_matrix/client/v3/register", None, Some(&json!({}))).expect(401);
        let flows = challenge["flows"].as_array().expect("flows");
        assert!(
            flows.iter().any(|f| f["stages"] == json!(["m.login.dummy"])),
            "the suite needs open registration (an m.login.dummy flow): {challenge}"
        );
        let session = challenge["session"].as_str().expect("session");
        let body = json!({
            "username": localpart,
            "password": password,
            "initial_device_display_name": "conformance",
            "auth": { "type": "m.login.dummy", "session": session },
        });
        let r = self.call("POST", "/_matrix/client/v3/register", None, Some(&body)).expect(200);
        self.user_from(localpart, password, &r)
    }

    /// A server admin, through Synapse's shared-secret registration endpoint.
    pub fn register_admin(&self, localpart: &str) -> User<'_> {
        let nonce = self.call("GET", "/_synapse/admin/v1/register", None, None).expect(200)["nonce"]
            .as_str()
            .expect("nonce")
            .to_owned();
        let password = format!("pw-{localpart}");
        let mac = shared_secret_mac(&self.secret, &nonce, localpart, &password, true);
        let body = json!({ "nonce": nonce, "username": localpart, "password": password, "admin": true, "mac": mac });
        let r = self.call("POST", "/_synapse/admin/v1/register", None, Some(&body)).expect(200);
        self.user_from(localpart, password, &r)
    }

    fn user_from(&self, localpart: &str, password: String, r: &Value) -> User<'_> {
        User {
            server: self,
            user_id: r["user_id"].as_str().expect("user_id").to_owned(),
            localpart: localpart.to_owned(),
            password,
            token: r["access_token"].as_str().expect("token").to_owned(),
            device_id: r["device_id"].as_str().expect("device").to_owned(),
        }
    }

    /// The server name, as the part after the colon of a user id.
    pub fn server_name_of(user_id: &str) -> &str {
        user_id.split_once(':').map(|(_, s)| s).unwrap_or_default()
    }
}

impl User<'_> {
    pub fn get(&self, path: &str) -> Response {
        self.server.call("GET", path, Some(&self.token), None)
    }
    pub fn post(&self, path: &str, body: Value) -> Response {
        self.server.call("POST", path, Some(&self.token), Some(&body))
    }
    pub fn put(&self, path: &str, body: Value) -> Response {
        self.server.call("PUT", path, Some(&self.token), Some(&body))
    }
    pub fn delete(&self, path: &str, body: Option<Value>) -> Response {
        self.server.call("DELETE", path, Some(&self.token), body.as_ref())
    }

    pub fn server_name(&self) -> &str {
        Server::server_name_of(&self.user_id)
    }

    /// Creates a room; returns its id.
    pub fn create_room(&self, body: Value) -> String {
        let r = self.post("/_matrix/client/v3/createRoom", body).expect(200);
        r["room_id"].as_str().expect("room_id").to_owned()
    }

    pub fn join(&self, room: &str) {
        self.post(&format!("/_matrix/client/v3/join/{}", enc(room)), json!({})).expect(200);
    }

    pub fn invite(&self, room: &str, user: &str) {
        self.post(&format!("/_matrix/client/v3/rooms/{}/invite", enc(room)), json!({ "user_id": user })).expect(200);
    }

    /// Sends a text message; returns the event id.
    pub fn send_text(&self, room: &str, body: &str) -> String {
        let txn = unique("t");
        let r = self.put(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(room)),
            json!({ "msgtype": "m.text", "body": body }),
        );
        r.expect(200)["event_id"].as_str().expect("event_id").to_owned()
    }

    pub fn send_state(&self, room: &str, kind: &str, state_key: &str, content: Value) -> Response {
        self.put(&format!("/_matrix/client/v3/rooms/{}/state/{kind}/{}", enc(room), enc(state_key)), content)
    }

    pub fn state(&self, room: &str, kind: &str, state_key: &str) -> Response {
        self.get(&format!("/_matrix/client/v3/rooms/{}/state/{kind}/{}", enc(room), enc(state_key)))
    }

    pub fn sync(&self, since: Option<&str>, extra: &str) -> Value {
        let mut path = "/_matrix/client/v3/sync?timeout=0".to_owned();
        if let Some(s) = since {
            path.push_str(&format!("&since={}", enc(s)));
        }
        path.push_str(extra);
        self.get(&path).expect(200)
    }

    /// Long-polls `/sync` from `since` until `found` picks something out of a response, within
    /// `within`. Returns it and the last `next_batch`.
    pub fn sync_until<T>(
        &self,
        since: Option<&str>,
        within: Duration,
        mut found: impl FnMut(&Value) -> Option<T>,
    ) -> (T, String) {
        let deadline = Instant::now() + within;
        let mut since = since.map(str::to_owned);
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now()).as_millis().min(10_000);
            let mut path = format!("/_matrix/client/v3/sync?timeout={timeout}");
            if let Some(s) = &since {
                path.push_str(&format!("&since={}", enc(s)));
            }
            let body = self.get(&path).expect(200);
            let next = body["next_batch"].as_str().expect("next_batch").to_owned();
            if let Some(v) = found(&body) {
                return (v, next);
            }
            assert!(Instant::now() < deadline, "sync: not found within {within:?}; last response {body}");
            since = Some(next);
        }
    }

    /// The timeline events of a room in a sync response.
    pub fn timeline<'a>(sync: &'a Value, room: &str) -> Vec<&'a Value> {
        sync["rooms"]["join"][room]["timeline"]["events"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
    }
}
