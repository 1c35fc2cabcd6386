//! Discovery, registration, login, logout, whoami, refresh, password, deactivation, devices.

use serde_json::{Value, json};
use tandem_conformance::client::unique;
use tandem_conformance::{enc, server};

#[test]
fn versions_well_known_and_capabilities() {
    let s = server();
    let v = s.call("GET", "/_matrix/client/versions", None, None).expect(200);
    assert!(v["versions"].as_array().unwrap().iter().any(|x| x == "v1.1"), "{v}");
    let u = s.register("caps");
    let caps = u.get("/_matrix/client/v3/capabilities").expect(200);
    let versions = &caps["capabilities"]["m.room_versions"];
    assert_eq!(versions["default"], "12", "{caps}");
    for v in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"] {
        assert_eq!(versions["available"][v], "stable", "{caps}");
    }
    assert_eq!(caps["capabilities"]["m.change_password"]["enabled"], true);
}

#[test]
fn cors_preflight_is_answered() {
    let s = server();
    let r = s.raw(
        "OPTIONS",
        "/_matrix/client/v3/login",
        &[("Origin", "https://app.element.io"), ("Access-Control-Request-Method", "POST")],
        None,
    );
    assert!(r.status < 300, "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn registration_is_user_interactive_and_checks_names() {
    let s = server();
    let name = unique("reg");
    let first =
        s.call("POST", "/_matrix/client/v3/register", None, Some(&json!({ "username": name, "password": "secret-1" })));
    let challenge = first.expect(401);
    let session = challenge["session"].as_str().expect("a UIA session").to_owned();
    let flows = challenge["flows"].as_array().expect("flows");
    assert!(flows.iter().any(|f| f["stages"] == json!(["m.login.dummy"])), "{challenge}");

    let body =
        json!({ "username": name, "password": "secret-1", "auth": { "type": "m.login.dummy", "session": session } });
    let done = s.call("POST", "/_matrix/client/v3/register", None, Some(&body)).expect(200);
    let user_id = done["user_id"].as_str().unwrap();
    assert!(user_id.starts_with(&format!("@{name}:")), "{done}");
    assert!(done["access_token"].is_string() && done["device_id"].is_string());

    let again = json!({ "username": name, "password": "x", "auth": { "type": "m.login.dummy" } });
    s.call("POST", "/_matrix/client/v3/register", None, Some(&again)).expect_err(400, "M_USER_IN_USE");
    s.call("GET", &format!("/_matrix/client/v3/register/available?username={name}"), None, None)
        .expect_err(400, "M_USER_IN_USE");
    let free = unique("free");
    let r = s.call("GET", &format!("/_matrix/client/v3/register/available?username={free}"), None, None).expect(200);
    assert_eq!(r["available"], true);
    s.call("GET", "/_matrix/client/v3/register/available?username=Bad%20Name", None, None)
        .expect_err(400, "M_INVALID_USERNAME");
}

#[test]
fn login_whoami_logout() {
    let s = server();
    let u = s.register("login");
    let flows = s.call("GET", "/_matrix/client/v3/login", None, None).expect(200);
    assert!(flows["flows"].as_array().unwrap().iter().any(|f| f["type"] == "m.login.password"), "{flows}");

    let wrong = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": u.localpart }, "password": "nope" });
    s.call("POST", "/_matrix/client/v3/login", None, Some(&wrong)).expect_err(403, "M_FORBIDDEN");
    let nobody = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": unique("ghost") }, "password": "x" });
    s.call("POST", "/_matrix/client/v3/login", None, Some(&nobody)).expect_err(403, "M_FORBIDDEN");

    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": u.user_id },
        "password": u.password,
        "initial_device_display_name": "laptop",
    });
    let session = s.call("POST", "/_matrix/client/v3/login", None, Some(&body)).expect(200);
    assert_eq!(session["user_id"], u.user_id.as_str());
    let token = session["access_token"].as_str().unwrap();
    let who = s.call("GET", "/_matrix/client/v3/account/whoami", Some(token), None).expect(200);
    assert_eq!(who["user_id"], u.user_id.as_str());
    assert_eq!(who["device_id"], session["device_id"]);

    s.call("POST", "/_matrix/client/v3/logout", Some(token), Some(&json!({}))).expect(200);
    let gone = s.call("GET", "/_matrix/client/v3/account/whoami", Some(token), None).expect_err(401, "M_UNKNOWN_TOKEN");
    assert_eq!(gone["soft_logout"], false, "{gone}");
    s.call("GET", "/_matrix/client/v3/account/whoami", None, None).expect_err(401, "M_MISSING_TOKEN");
    s.call("GET", "/_matrix/client/v3/account/whoami", Some("not-a-token"), None).expect_err(401, "M_UNKNOWN_TOKEN");
    // The access token may also come in the query string.
    let q = s.call("GET", &format!("/_matrix/client/v3/account/whoami?access_token={}", enc(&u.token)), None, None);
    assert_eq!(q.expect(200)["user_id"], u.user_id.as_str());
}

#[test]
fn logout_all_ends_every_session() {
    let s = server();
    let u = s.register("logoutall");
    let body = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": u.localpart }, "password": u.password });
    let second = s.call("POST", "/_matrix/client/v3/login", None, Some(&body)).expect(200);
    let t2 = second["access_token"].as_str().unwrap();
    s.call("POST", "/_matrix/client/v3/logout/all", Some(&u.token), Some(&json!({}))).expect(200);
    for t in [u.token.as_str(), t2] {
        s.call("GET", "/_matrix/client/v3/account/whoami", Some(t), None).expect_err(401, "M_UNKNOWN_TOKEN");
    }
}

#[test]
fn refresh_tokens_rotate() {
    let s = server();
    let u = s.register("refresh");
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": u.localpart },
        "password": u.password,
        "refresh_token": true,
    });
    let session = s.call("POST", "/_matrix/client/v3/login", None, Some(&body)).expect(200);
    let refresh = session["refresh_token"].as_str().expect("a refresh token");
    assert!(session["expires_in_ms"].as_u64().is_some_and(|ms| ms > 0), "{session}");
    let renewed =
        s.call("POST", "/_matrix/client/v3/refresh", None, Some(&json!({ "refresh_token": refresh }))).expect(200);
    let token = renewed["access_token"].as_str().unwrap();
    assert_ne!(token, session["access_token"].as_str().unwrap());
    assert!(renewed["refresh_token"].is_string());
    s.call("GET", "/_matrix/client/v3/account/whoami", Some(token), None).expect(200);
    s.call("POST", "/_matrix/client/v3/refresh", None, Some(&json!({ "refresh_token": "bogus" })))
        .expect_err(401, "M_UNKNOWN_TOKEN");
}

fn password_auth(user: &tandem_conformance::User<'_>, session: Option<&str>, password: &str) -> Value {
    let mut auth = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user.user_id },
        "password": password,
    });
    if let Some(s) = session {
        auth["session"] = s.into();
    }
    auth
}

#[test]
fn password_change_needs_the_old_password() {
    let s = server();
    let u = s.register("pwchange");
    let challenge = u.post("/_matrix/client/v3/account/password", json!({ "new_password": "new-secret" })).expect(401);
    let session = challenge["session"].as_str().unwrap();
    let wrong = json!({ "new_password": "new-secret", "auth": password_auth(&u, Some(session), "wrong") });
    let r = u.post("/_matrix/client/v3/account/password", wrong);
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.errcode(), Some("M_FORBIDDEN"));
    let right = json!({ "new_password": "new-secret", "logout_devices": false, "auth": password_auth(&u, Some(session), &u.password) });
    u.post("/_matrix/client/v3/account/password", right).expect(200);
    let login = |pw: &str| {
        let body = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": u.localpart }, "password": pw });
        s.call("POST", "/_matrix/client/v3/login", None, Some(&body))
    };
    login(&u.password).expect_err(403, "M_FORBIDDEN");
    login("new-secret").expect(200);
}

#[test]
fn deactivation_ends_the_account() {
    let s = server();
    let u = s.register("deact");
    let room = u.create_room(json!({ "preset": "public_chat" }));
    let other = s.register("deactwatch");
    other.join(&room);
    u.post("/_matrix/client/v3/account/deactivate", json!({ "auth": password_auth(&u, None, &u.password) }))
        .expect(200);
    s.call("GET", "/_matrix/client/v3/account/whoami", Some(&u.token), None).expect_err(401, "M_UNKNOWN_TOKEN");
    let body = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": u.localpart }, "password": u.password });
    let r = s.call("POST", "/_matrix/client/v3/login", None, Some(&body));
    assert_eq!(r.status, 403, "{:?}", r.body);
    // The account leaves its rooms.
    tandem_conformance::eventually(std::time::Duration::from_secs(10), "the deactivated user's leave", || {
        let m = other.state(&room, "m.room.member", &u.user_id).expect(200);
        (m["membership"] == "leave").then_some(())
    });
}

#[test]
fn devices_list_rename_and_delete_with_auth() {
    let s = server();
    let u = s.register("devices");
    let body = json!({ "type": "m.login.password", "identifier": { "type": "m.id.user", "user": u.localpart }, "password": u.password, "device_id": "PHONE" });
    let phone = s.call("POST", "/_matrix/client/v3/login", None, Some(&body)).expect(200);
    assert_eq!(phone["device_id"], "PHONE");
    let list = u.get("/_matrix/client/v3/devices").expect(200);
    let ids: Vec<&str> = list["devices"].as_array().unwrap().iter().filter_map(|d| d["device_id"].as_str()).collect();
    assert!(ids.contains(&"PHONE") && ids.contains(&u.device_id.as_str()), "{list}");

    u.put("/_matrix/client/v3/devices/PHONE", json!({ "display_name": "My phone" })).expect(200);
    let one = u.get("/_matrix/client/v3/devices/PHONE").expect(200);
    assert_eq!(one["display_name"], "My phone");
    u.get("/_matrix/client/v3/devices/NOPE").expect_err(404, "M_NOT_FOUND");

    let challenge = u.delete("/_matrix/client/v3/devices/PHONE", Some(json!({}))).expect(401);
    let session = challenge["session"].as_str().unwrap();
    u.delete(
        "/_matrix/client/v3/devices/PHONE",
        Some(json!({ "auth": password_auth(&u, Some(session), &u.password) })),
    )
    .expect(200);
    let phone_token = phone["access_token"].as_str().unwrap();
    s.call("GET", "/_matrix/client/v3/account/whoami", Some(phone_token), None).expect_err(401, "M_UNKNOWN_TOKEN");
    u.get("/_matrix/client/v3/devices/PHONE").expect_err(404, "M_NOT_FOUND");
}

/// `admin/whois`: users may see their own sessions, not other users'.
#[test]
fn whois_shows_ones_own_devices_only() {
    let s = server();
    let u = s.register("whoisme");
    let other = s.register("whoisother");
    let r = u.get(&format!("/_matrix/client/v3/admin/whois/{}", enc(&u.user_id))).expect(200);
    assert_eq!(r["user_id"], u.user_id.as_str());
    let sessions = &r["devices"];
    assert!(sessions.as_object().is_some_and(|d| !d.is_empty()), "{r}");
    let connections = sessions.as_object().unwrap().values().next().unwrap()["sessions"][0]["connections"].clone();
    assert!(connections.is_array(), "{r}");
    u.get(&format!("/_matrix/client/v3/admin/whois/{}", enc(&other.user_id))).expect_err(403, "M_FORBIDDEN");
}
