//! Accounts and sessions: registration (user-interactive, as configured), the shared-secret
//! admin registration Synapse offers, login, logout, whoami, refresh, password change and
//! deactivation.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::sessions::NewSession;

use crate::error::{ApiResult, MatrixError, ok};
use crate::extract::{Auth, ClientIp, JsonBody, Q, blocking};
use crate::state::{Api, RegistrationMode};
use crate::uia::{Stage, challenge_session};

/// Where a registration's UIA session keeps the password it was sent.
const PASSWORD_HASH: &str = "password_hash";

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/register", post(register))
        .route("/_matrix/client/v3/register/available", get(available))
        .route("/_matrix/client/v1/register/m.login.registration_token/validity", get(token_validity))
        .route("/_matrix/client/v3/login", get(login_flows).post(login))
        .route("/_matrix/client/v3/logout", post(logout))
        .route("/_matrix/client/v3/logout/all", post(logout_all))
        .route("/_matrix/client/v3/account/whoami", get(whoami))
        .route("/_matrix/client/v3/refresh", post(refresh))
        .route("/_matrix/client/v3/account/password", post(change_password))
        .route("/_matrix/client/v3/account/deactivate", post(deactivate))
        .route("/_synapse/admin/v1/register", get(admin_nonce).post(admin_register))
}

fn session_json(api: &Api, s: NewSession) -> Value {
    let mut out = json!({
        "user_id": s.user_id,
        "access_token": s.access_token,
        "device_id": s.device_id,
        "home_server": api.config.server_name,
    });
    if let Some(rt) = s.refresh_token {
        out["refresh_token"] = rt.into();
    }
    if let Some(ms) = s.expires_in_ms {
        out["expires_in_ms"] = ms.into();
    }
    out
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterBody {
    username: Option<String>,
    password: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    inhibit_login: bool,
    refresh_token: bool,
    auth: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KindQuery {
    kind: Option<String>,
}

async fn register(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    Q(query): Q<KindQuery>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> ApiResult<Json<Value>> {
    if query.kind.as_deref() == Some("guest") {
        return Err(MatrixError::new(StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled"));
    }
    let flows: Vec<Vec<&str>> = match api.config.registration {
        RegistrationMode::Disabled => return Err(MatrixError::forbidden("Registration has been disabled")),
        RegistrationMode::Token => vec![vec!["m.login.registration_token"]],
        RegistrationMode::Open => vec![vec!["m.login.dummy"]],
    };
    api.limits.check(api.config.rate_limit_registration, &format!("register:{ip}"))?;
    let localpart = body.username.as_deref().map(str::to_lowercase);
    if let Some(local) = &localpart {
        let hs = api.hs.clone();
        let local = local.clone();
        blocking(move || hs.username_available(&local)).await?;
    }
    if body.password.as_ref().is_some_and(|p| p.len() > 512) {
        return Err(MatrixError::invalid_param("Password too long"));
    }
    // The password is checked after user-interactive authentication, not before: clients
    // (matrix-sdk, Element Web) open with `{}` to learn the flows. A password sent in any round
    // is remembered, hashed, for the round that completes the flow, as Synapse does.
    let tokens = api.config.registration_tokens.clone();
    let outcome = api.uia.step(&flows, json!({}), body.auth.as_ref(), |kind, auth| match kind {
        "m.login.dummy" => Stage::Passed("m.login.dummy"),
        "m.login.registration_token" => {
            let token = auth.get("token").and_then(Value::as_str).unwrap_or_default();
            if tokens.iter().any(|t| t == token) {
                Stage::Passed("m.login.registration_token")
            } else {
                Stage::Failed(MatrixError::new(StatusCode::UNAUTHORIZED, "M_FORBIDDEN", "Invalid registration token"))
            }
        }
        _ => Stage::Failed(MatrixError::new(StatusCode::UNAUTHORIZED, "M_UNRECOGNIZED", "Unknown auth type")),
    });
    let remembered = match outcome {
        Ok(data) => data,
        Err(challenge) => {
            if let (Some(session), Some(password)) = (challenge_session(&challenge), body.password.clone())
                && api.uia.recall(session, PASSWORD_HASH).is_none()
            {
                let hash = blocking(move || tandem_core::accounts::hash_password(&password)).await?;
                api.uia.remember(session, PASSWORD_HASH, hash.into());
            }
            return Err(challenge);
        }
    };
    let password_hash = match body.password.clone() {
        Some(password) => blocking(move || tandem_core::accounts::hash_password(&password)).await?,
        None => remembered
            .get(PASSWORD_HASH)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| MatrixError::missing_param("Missing params: password"))?,
    };
    let hs = api.hs.clone();
    let session = blocking(move || {
        let local = match localpart {
            Some(l) => l,
            None => next_numeric_localpart(&hs)?,
        };
        let user_id = hs.create_account_hashed(&local, Some(password_hash), false)?;
        if body.inhibit_login {
            return Ok(Err(user_id));
        }
        hs.login(&user_id, body.device_id.as_deref(), body.initial_device_display_name.as_deref(), body.refresh_token)
            .map(Ok)
    })
    .await?;
    Ok(Json(match session {
        Ok(s) => session_json(&api, s),
        Err(user_id) => json!({ "user_id": user_id, "home_server": api.config.server_name }),
    }))
}

/// A free all-digit localpart for registrations without a username, as Synapse gives.
fn next_numeric_localpart(hs: &tandem_core::Homeserver) -> tandem_core::Result<String> {
    loop {
        let n: u32 = rand::random::<u32>() % 900_000 + 100_000;
        let local = n.to_string();
        if hs.account(&hs.user_id(&local))?.is_none() {
            return Ok(local);
        }
    }
}

#[derive(Deserialize)]
struct UsernameQuery {
    username: String,
}

async fn available(State(api): State<Api>, Q(q): Q<UsernameQuery>) -> ApiResult<Json<Value>> {
    if api.config.registration == RegistrationMode::Disabled {
        return Err(MatrixError::forbidden("Registration has been disabled"));
    }
    let hs = api.hs.clone();
    blocking(move || hs.username_available(&q.username.to_lowercase())).await?;
    Ok(Json(json!({ "available": true })))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

async fn token_validity(State(api): State<Api>, Q(q): Q<TokenQuery>) -> ApiResult<Json<Value>> {
    if api.config.registration != RegistrationMode::Token {
        return Err(MatrixError::forbidden("Registration tokens are not enabled"));
    }
    Ok(Json(json!({ "valid": api.config.registration_tokens.contains(&q.token) })))
}

async fn login_flows() -> Json<Value> {
    Json(json!({ "flows": [{ "type": "m.login.password" }] }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginBody {
    #[serde(rename = "type")]
    kind: String,
    identifier: Option<Value>,
    user: Option<String>,
    password: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    refresh_token: bool,
}

/// The user id a login or UIA identifier names (`m.id.user` with a localpart or full id).
fn identified_user(api: &Api, identifier: Option<&Value>, legacy_user: Option<&str>) -> ApiResult<String> {
    let user = match identifier {
        Some(id) => {
            if id.get("type").and_then(Value::as_str) != Some("m.id.user") {
                return Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Unknown login identifier type"));
            }
            id.get("user")
                .and_then(Value::as_str)
                .ok_or_else(|| MatrixError::missing_param("identifier.user missing"))?
        }
        None => legacy_user.ok_or_else(|| MatrixError::missing_param("Missing identifier"))?,
    };
    Ok(if user.starts_with('@') { user.to_lowercase() } else { api.hs.user_id(&user.to_lowercase()) })
}

async fn login(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Json<Value>> {
    if body.kind != "m.login.password" {
        return Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Unknown login type"));
    }
    api.limits.check(api.config.rate_limit_login, &format!("login:{ip}"))?;
    let user_id = identified_user(&api, body.identifier.as_ref(), body.user.as_deref())?;
    let password = body.password.ok_or_else(|| MatrixError::missing_param("Missing password"))?;
    let hs = api.hs.clone();
    let session = blocking(move || {
        hs.check_password(&user_id, &password)?;
        hs.login(&user_id, body.device_id.as_deref(), body.initial_device_display_name.as_deref(), body.refresh_token)
    })
    .await?;
    Ok(Json(session_json(&api, session)))
}

async fn logout(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.delete_devices(&auth.user_id, &[auth.device_id])).await?;
    Ok(ok())
}

async fn logout_all(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    blocking(move || hs.delete_all_devices(&auth.user_id, None)).await?;
    Ok(ok())
}

async fn whoami(auth: Auth) -> Json<Value> {
    Json(json!({ "user_id": auth.user_id, "device_id": auth.device_id, "is_guest": false }))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(State(api): State<Api>, JsonBody(body): JsonBody<RefreshBody>) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let s = blocking(move || hs.refresh(&body.refresh_token)).await?;
    Ok(Json(json!({
        "access_token": s.access_token,
        "refresh_token": s.refresh_token,
        "expires_in_ms": s.expires_in_ms,
    })))
}

/// User-interactive auth by the caller's password, for sensitive operations.
pub(crate) async fn require_password(api: &Api, auth: &Auth, uia: Option<&Value>) -> ApiResult<()> {
    let flows = vec![vec!["m.login.password"]];
    let hs = api.hs.clone();
    let expected_user = auth.user_id.clone();
    let verdict: Mutex<Option<Stage<'static>>> = Mutex::new(None);
    // Verify the password before taking the UIA lock (hashing is slow).
    if let Some(a) = uia
        && a.get("type").and_then(Value::as_str) == Some("m.login.password")
    {
        let user = identified_user(api, a.get("identifier"), a.get("user").and_then(Value::as_str))
            .unwrap_or_else(|_| expected_user.clone());
        let password = a.get("password").and_then(Value::as_str).unwrap_or_default().to_owned();
        let same_user = user == expected_user;
        let result = blocking(move || hs.check_password(&user, &password)).await;
        *verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(match result {
            Ok(_) if same_user => Stage::Passed("m.login.password"),
            Ok(_) => Stage::Failed(MatrixError::forbidden("Cannot authenticate as another user")),
            Err(_) => {
                Stage::Failed(MatrixError::new(StatusCode::UNAUTHORIZED, "M_FORBIDDEN", "Invalid username or password"))
            }
        });
    }
    api.uia
        .step(&flows, json!({}), uia, |_, _| {
            verdict
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or(Stage::Failed(MatrixError::forbidden("Invalid auth")))
        })
        .map(drop)
}

#[derive(Deserialize)]
struct PasswordBody {
    new_password: String,
    #[serde(default = "yes")]
    logout_devices: bool,
    auth: Option<Value>,
}

fn yes() -> bool {
    true
}

async fn change_password(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<PasswordBody>,
) -> ApiResult<Json<Value>> {
    require_password(&api, &auth, body.auth.as_ref()).await?;
    let hs = api.hs.clone();
    blocking(move || {
        hs.set_password(&auth.user_id, &body.new_password)?;
        if body.logout_devices {
            hs.delete_all_devices(&auth.user_id, Some(&auth.device_id))?;
        }
        Ok(())
    })
    .await?;
    Ok(ok())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeactivateBody {
    auth: Option<Value>,
}

async fn deactivate(
    State(api): State<Api>,
    auth: Auth,
    JsonBody(body): JsonBody<DeactivateBody>,
) -> ApiResult<Json<Value>> {
    require_password(&api, &auth, body.auth.as_ref()).await?;
    let hs = api.hs.clone();
    blocking(move || hs.deactivate(&auth.user_id)).await?;
    Ok(Json(json!({ "id_server_unbind_result": "no-support" })))
}

// Synapse's shared-secret registration: a nonce, then an HMAC-SHA1 over
// nonce\0username\0password\0admin|notadmin keyed by the shared secret.

static NONCES: Mutex<Vec<(String, std::time::Instant)>> = Mutex::new(Vec::new());
const MAX_NONCES: usize = 4096;

async fn admin_nonce(State(api): State<Api>) -> ApiResult<Json<Value>> {
    if api.config.registration_shared_secret.is_none() {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Shared secret registration is not enabled",
        ));
    }
    let nonce: String = (0..32).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
    let mut nonces = NONCES.lock().unwrap_or_else(|e| e.into_inner());
    nonces.retain(|(_, t)| t.elapsed().as_secs() < 60);
    // Anyone may ask for nonces: keep the newest few thousand, not one per request.
    if nonces.len() >= MAX_NONCES {
        nonces.remove(0);
    }
    nonces.push((nonce.clone(), std::time::Instant::now()));
    Ok(Json(json!({ "nonce": nonce })))
}

#[derive(Deserialize)]
struct AdminRegisterBody {
    nonce: String,
    username: String,
    password: String,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    displayname: Option<String>,
    #[serde(default)]
    user_type: Option<String>,
    mac: String,
}

async fn admin_register(State(api): State<Api>, JsonBody(body): JsonBody<AdminRegisterBody>) -> ApiResult<Json<Value>> {
    let Some(secret) = api.config.registration_shared_secret.clone() else {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "Shared secret registration is not enabled",
        ));
    };
    {
        let mut nonces = NONCES.lock().unwrap_or_else(|e| e.into_inner());
        let before = nonces.len();
        nonces.retain(|(n, _)| *n != body.nonce);
        if nonces.len() == before {
            return Err(MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", "unrecognised nonce"));
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).map_err(|_| MatrixError::internal())?;
    mac.update(body.nonce.as_bytes());
    mac.update(b"\0");
    mac.update(body.username.as_bytes());
    mac.update(b"\0");
    mac.update(body.password.as_bytes());
    mac.update(b"\0");
    mac.update(if body.admin { b"admin" as &[u8] } else { b"notadmin" });
    if let Some(t) = &body.user_type {
        mac.update(b"\0");
        mac.update(t.as_bytes());
    }
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    if expected != body.mac.to_lowercase() {
        return Err(MatrixError::forbidden("HMAC incorrect"));
    }
    let hs = api.hs.clone();
    let session = blocking(move || {
        let user_id = hs.create_account(&body.username.to_lowercase(), Some(&body.password), body.admin)?;
        if let Some(name) = body.displayname {
            hs.set_profile_field(&user_id, "displayname", Some(name.into()))?;
        }
        hs.login(&user_id, None, None, false)
    })
    .await?;
    Ok(Json(session_json(&api, session)))
}
