//! This server's media for other servers (spec v1.11): `/media/download` and
//! `/media/thumbnail`, each a `multipart/mixed` answer of JSON metadata (`{}`) and the bytes,
//! streamed from the file. Only uploads of this server are served: other servers' media kept
//! here are theirs to serve.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use rand::Rng;
use tandem_core::media::thumbnails::requested;
use tandem_core::media::{Fetch, StoredMedia, disposition};
use tokio_util::io::ReaderStream;

use super::query_values;
use crate::auth::Origin;
use crate::{FedError, Federation, blocking};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new()
        .route("/_matrix/federation/v1/media/download/{media_id}", get(download))
        .route("/_matrix/federation/v1/media/thumbnail/{media_id}", get(thumbnail))
}

/// How long a request for media created but not uploaded yet waits by default (the spec's).
const WAIT_FOR_UPLOAD: Duration = Duration::from_secs(20);

fn number(query: &Option<String>, name: &str) -> Result<Option<u64>, FedError> {
    match query_values(query, name).pop() {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| FedError::Matrix {
            status: 400,
            errcode: "M_INVALID_PARAM",
            message: format!("'{name}' must be an integer"),
        }),
    }
}

async fn local(fed: &Arc<Federation>, media_id: &str, query: &Option<String>) -> Result<StoredMedia, FedError> {
    let wait = number(query, "timeout_ms")?.map_or(WAIT_FOR_UPLOAD, Duration::from_millis);
    let fetch = Fetch { wait, allow_remote: false, max_bytes: 0 };
    Ok(fed.hs.media(fed.server_name(), media_id, fetch).await?)
}

async fn download(
    State(fed): State<Arc<Federation>>,
    Origin(_origin): Origin,
    Path(media_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, FedError> {
    let media = local(&fed, &media_id, &query).await?;
    let name = media.info.filename.clone();
    multipart(&media.path, &media.info.content_type, name.as_deref(), media.info.size).await
}

async fn thumbnail(
    State(fed): State<Arc<Federation>>,
    Origin(_origin): Origin,
    Path(media_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, FedError> {
    let dimension = |name| number(&query, name).map(|v| v.map(|v| u32::try_from(v).unwrap_or(u32::MAX)));
    let method = query_values(&query, "method").pop();
    let (width, height, method) = requested(dimension("width")?, dimension("height")?, method.as_deref())?;
    let media = local(&fed, &media_id, &query).await?;
    let hs = fed.hs.clone();
    let (thumb, path) = blocking(move || hs.thumbnail(&media, width, height, method)).await?;
    multipart(&path, &thumb.content_type, None, thumb.size).await
}

/// A file as the two parts of a federation media answer.
async fn multipart(
    path: &std::path::Path,
    content_type: &str,
    filename: Option<&str>,
    size: u64,
) -> Result<Response, FedError> {
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        tracing::error!(path = %path.display(), "media file unreadable: {e}");
        FedError::not_found("Media not found")
    })?;
    let boundary: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
    let head = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Disposition: {}\r\n\r\n",
        disposition(content_type, filename)
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(ReaderStream::new(file))
        .chain(futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(tail)) }));
    let content_type = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}"))
        .map_err(|e| FedError::Internal(e.to_string()))?;
    Ok((
        [(header::CONTENT_TYPE, content_type), (header::CONTENT_LENGTH, HeaderValue::from(length))],
        Body::from_stream(body),
    )
        .into_response())
}
