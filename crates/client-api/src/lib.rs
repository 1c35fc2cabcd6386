//! The client-server API (`/_matrix/client/*`, `/.well-known/matrix/client`): thin HTTP
//! handlers that will translate requests into room engine calls. So far: discovery, the
//! Matrix error shape, and `M_UNRECOGNIZED` for every endpoint not built yet.

mod discovery;
mod error;

use axum::Router;
use axum::http::Method;
use tower_http::cors::{Any, CorsLayer};

pub use error::MatrixError;

/// What the handlers need from the server.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub server_name: String,
    /// The client-server base URL clients are told to use, if known.
    pub public_base_url: Option<String>,
}

/// The client-server API router.
pub fn router(config: ApiConfig) -> Router {
    // Element Web and other browser clients call from another origin; the spec asks for
    // these headers on every response, `OPTIONS` included.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any);
    discovery::routes(config).fallback(error::unrecognized).layer(cors)
}
