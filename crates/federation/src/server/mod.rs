//! The routes other servers call: `/_matrix/federation/*` (each authenticated by
//! [`crate::auth`]), `/_matrix/key/*` and `/.well-known/matrix/server`.

mod events;
mod hierarchy;
mod keys;
mod media;
mod membership;
mod query;
mod send;
mod user;

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;

use crate::{FedError, Federation};

pub(crate) use membership::{decode, query_values};

pub fn router(fed: Arc<Federation>) -> Router {
    Router::new()
        .merge(keys::routes())
        .merge(send::routes())
        .merge(membership::routes())
        .merge(events::routes())
        .merge(query::routes())
        .merge(hierarchy::routes())
        .merge(user::routes())
        .merge(media::routes())
        .with_state(fed)
        .layer(axum::middleware::from_fn(trace::request_span))
}

/// Paths under the federation prefixes that we do not serve.
pub async fn unrecognized() -> impl IntoResponse {
    FedError::Matrix { status: 404, errcode: "M_UNRECOGNIZED", message: "Unrecognized request".into() }
}

mod trace {
    //! A tracing span per inbound federation request.

    use axum::extract::Request;
    use axum::middleware::Next;
    use axum::response::Response;
    use tracing::Instrument;

    pub async fn request_span(req: Request, next: Next) -> Response {
        let span = tracing::info_span!("federation", method = %req.method(), path = %req.uri().path());
        async move {
            let response = next.run(req).await;
            tracing::debug!(status = response.status().as_u16(), "done");
            response
        }
        .instrument(span)
        .await
    }
}
