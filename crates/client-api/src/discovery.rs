//! Server discovery: `GET /_matrix/client/versions` and `GET /.well-known/matrix/client`.

use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::ApiConfig;

/// The spec versions Tandem serves; clients use this list to choose endpoints. No `r0.x`:
/// the `/r0/` paths are not served. What of v1.19 is still missing is optional: third-party
/// identifiers, single sign-on and the OAuth 2.0 API (`/capabilities` and `/login` say so, and
/// `auth_metadata` is 404), URL previews, application services, the admin lock and suspend.
const VERSIONS: &[&str] = &[
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12", "v1.13",
    "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19",
];

/// Unstable features clients look for before using what they name, all implemented here and
/// advertised by Synapse too. Element Web 1.11 sets up cross-signing only when
/// `org.matrix.e2e_cross_signing` is advertised; older clients look for the others before
/// using threads (MSC3440), private read receipts (MSC2285), threaded receipts (MSC3771) and
/// simplified sliding sync (MSC4186, under its MSC3575 name).
const UNSTABLE_FEATURES: &[&str] = &[
    "org.matrix.e2e_cross_signing",
    "org.matrix.msc3440.stable",
    "org.matrix.msc2285.stable",
    "org.matrix.msc3771",
    "org.matrix.simplified_msc3575",
];

pub(crate) fn routes(config: ApiConfig) -> Router {
    let base = config.public_base_url.clone();
    let extra = config.well_known_client.clone();
    Router::new()
        .route(
            "/_matrix/client/versions",
            get(|| async {
                let features: serde_json::Map<String, Value> =
                    UNSTABLE_FEATURES.iter().map(|f| ((*f).to_owned(), Value::Bool(true))).collect();
                Json(json!({ "versions": VERSIONS, "unstable_features": features }))
            }),
        )
        .route(
            "/.well-known/matrix/client",
            get(move |headers: HeaderMap| async move { Json(well_known(base.as_deref(), &extra, &headers)) }),
        )
}

/// `public_base_url` when the operator set it; otherwise the address the client reached this
/// listener at (its `Host`), so a client is never sent to `https://<server_name>`, which may
/// be nothing at all (the client API may listen elsewhere, without TLS).
fn well_known(public_base_url: Option<&str>, extra: &serde_json::Map<String, Value>, headers: &HeaderMap) -> Value {
    let base = match public_base_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b)))
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let mut out = extra.clone();
    out.insert("m.homeserver".into(), json!({ "base_url": base }));
    Value::Object(out)
}
