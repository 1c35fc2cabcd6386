//! The client-server API (`/_matrix/client/*`, `/.well-known/matrix/client`, and Synapse's
//! shared-secret registration): thin handlers that parse a request, authenticate it, call the
//! room engine ([`tandem_core::Homeserver`]) and shape the answer. Matrix logic lives in the
//! engine; errors become Matrix errors in one place ([`error`]).

mod account;
mod backup;
mod devices;
mod directory;
mod discovery;
mod error;
mod events;
mod extract;
mod keys;
mod media;
mod misc;
mod profile;
mod push;
mod ratelimit;
mod reports;
mod rooms;
mod search;
mod spaces;
mod state;
mod summary;
mod sync;
mod uia;
mod voip;

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use tandem_core::Homeserver;
use tower_http::cors::{Any, CorsLayer};

pub use error::MatrixError;
pub use state::{ApiConfig, RateLimit, RegistrationMode, TurnConfig};

/// The client-server API router over `hs`.
pub fn router(hs: Arc<Homeserver>, config: ApiConfig) -> Router {
    // Element Web and other browser clients call from another origin; the spec asks for
    // these headers on every response, `OPTIONS` included.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any);
    let api = state::Api(Arc::new(state::ApiInner {
        hs,
        config: config.clone(),
        uia: Default::default(),
        limits: Default::default(),
    }));
    Router::new()
        .merge(account::routes())
        .merge(devices::routes())
        .merge(profile::routes())
        .merge(rooms::routes())
        .merge(events::routes())
        .merge(sync::routes())
        .merge(misc::routes())
        .merge(push::routes())
        .merge(voip::routes())
        .merge(reports::routes())
        .merge(directory::routes())
        .merge(keys::routes())
        .merge(backup::routes())
        .merge(media::routes())
        .merge(search::routes())
        .merge(spaces::routes())
        .merge(summary::routes())
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::unrecognized)
        .with_state(api)
        .merge(discovery::routes(config))
        .layer(axum::middleware::from_fn(trace::request_span))
        .layer(cors)
}

mod trace {
    //! A tracing span per request, with its method, path and outcome.

    use axum::extract::Request;
    use axum::middleware::Next;
    use axum::response::Response;
    use tracing::Instrument;

    pub async fn request_span(req: Request, next: Next) -> Response {
        let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path());
        async move {
            let start = std::time::Instant::now();
            let response = next.run(req).await;
            tracing::debug!(status = response.status().as_u16(), ms = start.elapsed().as_millis() as u64, "done");
            response
        }
        .instrument(span)
        .await
    }
}
