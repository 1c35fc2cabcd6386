//! Rate limits answer `M_LIMIT_EXCEEDED` with `retry_after_ms`. Needs a server configured with
//! tight limits, so it runs on a Tandem this test starts (skipped against an external server,
//! whose limits the harness cannot set).

use serde_json::json;
use tandem_conformance::{Server, enc};

#[test]
fn sending_too_fast_is_limited() {
    if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
        eprintln!("skipped: needs a server started with tight rate limits");
        return;
    }
    let s = Server::spawn_tandem(&[
        ("TANDEM_RATE_LIMIT_MESSAGE_PER_SECOND", "0.01"),
        ("TANDEM_RATE_LIMIT_MESSAGE_BURST", "3"),
        ("TANDEM_RATE_LIMIT_LOGIN_PER_SECOND", "0.01"),
        ("TANDEM_RATE_LIMIT_LOGIN_BURST", "2"),
    ]);
    let u = s.register("limited");
    let room = u.create_room(json!({}));
    let send = |i: u32| {
        u.put(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/t{i}", enc(&room)),
            json!({ "msgtype": "m.text", "body": "x" }),
        )
    };
    for i in 0..3 {
        send(i).expect(200);
    }
    let limited = send(3).expect_err(429, "M_LIMIT_EXCEEDED");
    assert!(limited["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{limited}");
    let login = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": u.localpart }, "password": "wrong" });
    for _ in 0..2 {
        s.call("POST", "/_matrix/client/v3/login", None, Some(&login)).expect_err(403, "M_FORBIDDEN");
    }
    s.call("POST", "/_matrix/client/v3/login", None, Some(&login)).expect_err(429, "M_LIMIT_EXCEEDED");
}

#[test]
fn oversized_requests_are_refused() {
    if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
        eprintln!("skipped: needs a server started with a small max_request_size");
        return;
    }
    let s = Server::spawn_tandem(&[("TANDEM_MAX_REQUEST_SIZE", "4096")]);
    let u = s.register("huge");
    let body = json!({ "name": "y".repeat(10_000) });
    u.post("/_matrix/client/v3/createRoom", body).expect_err(413, "M_TOO_LARGE");
}

/// Behind a trusted reverse proxy each client has its own bucket (named by the proxy's
/// `X-Forwarded-For`); from anyone else the header is ignored, so it cannot buy a fresh bucket.
#[test]
fn clients_behind_a_trusted_proxy_are_counted_apart() {
    if std::env::var_os("TANDEM_CONFORMANCE_URL").is_some() {
        eprintln!("skipped: needs a server started with tight rate limits and a trusted proxy");
        return;
    }
    let login =
        json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "nobody" }, "password": "x" });
    let body = serde_json::to_vec(&login).unwrap();
    let attempt = |s: &Server, from: &str| {
        let headers = [("X-Forwarded-For", from), ("Content-Type", "application/json")];
        s.raw("POST", "/_matrix/client/v3/login", &headers, Some(&body)).status
    };
    let limits = [("TANDEM_RATE_LIMIT_LOGIN_PER_SECOND", "0.01"), ("TANDEM_RATE_LIMIT_LOGIN_BURST", "1")];
    let mut trusted = limits.to_vec();
    trusted.push(("TANDEM_TRUSTED_PROXIES", "[\"127.0.0.1\"]"));
    let behind_proxy = Server::spawn_tandem(&trusted);
    assert_eq!(attempt(&behind_proxy, "203.0.113.1"), 403);
    assert_eq!(attempt(&behind_proxy, "203.0.113.1"), 429, "one client's bucket");
    assert_eq!(attempt(&behind_proxy, "203.0.113.2"), 403, "another client behind the proxy has its own bucket");
    let direct = Server::spawn_tandem(&limits);
    assert_eq!(attempt(&direct, "203.0.113.1"), 403);
    assert_eq!(attempt(&direct, "203.0.113.2"), 429, "an untrusted peer's X-Forwarded-For was believed");
}
