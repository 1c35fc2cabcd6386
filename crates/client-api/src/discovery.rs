//! Server discovery: `GET /_matrix/client/versions` and `GET /.well-known/matrix/client`.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::ApiConfig;

/// The spec versions Tandem serves (the client-server API it implements is growing towards
/// v1.19; clients use this list to choose endpoints).
const VERSIONS: &[&str] = &[
    "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12",
    "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19",
];

pub(crate) fn routes(config: ApiConfig) -> Router {
    let well_known = well_known(&config);
    Router::new()
        .route(
            "/_matrix/client/versions",
            get(|| async {
                Json(json!({"versions": VERSIONS, "unstable_features": { "org.matrix.simplified_msc3575": true }}))
            }),
        )
        .route("/.well-known/matrix/client", get(move || async move { Json(well_known) }))
}

fn well_known(config: &ApiConfig) -> Value {
    let base = config.public_base_url.clone().unwrap_or_else(|| format!("https://{}", config.server_name));
    json!({"m.homeserver": {"base_url": base}})
}
