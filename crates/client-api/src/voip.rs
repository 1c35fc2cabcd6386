//! What calls and widgets need: `/voip/turnServer`, the TURN servers a client uses for calls
//! (with a shared secret, each user gets credentials of its own in coturn's REST API scheme:
//! username `expiry:user_id`, password the base64 HMAC-SHA1 of the username under the
//! secret, which the TURN server checks without asking us), and OpenID tokens, with which a
//! widget or Element Call's focus learns who the user is.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, JsonBody, blocking};
use crate::state::{Api, TurnConfig};

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/client/v3/voip/turnServer", get(turn_server))
        .route("/_matrix/client/v3/user/{user}/openid/request_token", post(openid_token))
}

async fn openid_token(
    State(api): State<Api>,
    auth: Auth,
    Path(user): Path<String>,
    JsonBody(_body): JsonBody<serde_json::Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let requester = auth.user_id.clone();
    let target = user.clone();
    let token = blocking(move || hs.request_openid_token(&requester, &target)).await?;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "matrix_server_name": api.config.server_name,
        "expires_in": tandem_core::openid::LIFETIME_MS / 1000,
    })))
}

async fn turn_server(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Json(credentials(&api.config.turn, &auth.user_id, now.as_secs())?))
}

/// The answer for `user_id` at `now` (seconds since the epoch): `{}` without TURN servers, as
/// Synapse answers.
fn credentials(turn: &TurnConfig, user_id: &str, now: u64) -> ApiResult<Value> {
    if turn.uris.is_empty() {
        return Ok(json!({}));
    }
    let ttl = turn.user_lifetime.as_secs();
    let (username, password) = if let Some(secret) = &turn.shared_secret {
        let username = format!("{}:{user_id}", now + ttl);
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).map_err(|_| MatrixError::internal())?;
        mac.update(username.as_bytes());
        (username, base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    } else if let (Some(u), Some(p)) = (&turn.username, &turn.password) {
        (u.clone(), p.clone())
    } else {
        return Ok(json!({}));
    };
    Ok(json!({ "username": username, "password": password, "uris": turn.uris, "ttl": ttl }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coturn_credentials() {
        let mut turn = TurnConfig { user_lifetime: std::time::Duration::from_secs(3600), ..Default::default() };
        assert_eq!(credentials(&turn, "@a:b", 1000).unwrap(), json!({}));
        turn.uris = vec!["turn:turn.example.org:3478".into()];
        assert_eq!(credentials(&turn, "@a:b", 1000).unwrap(), json!({}));
        turn.shared_secret = Some("secret".into());
        let c = credentials(&turn, "@a:b", 1000).unwrap();
        assert_eq!(c["username"], "4600:@a:b");
        assert_eq!(c["ttl"], 3600);
        // coturn's check: base64(HMAC-SHA1(secret, username)).
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"secret").unwrap();
        mac.update(b"4600:@a:b");
        assert_eq!(c["password"], base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    }
}
