//! The media repository: upload (at once, or to an id created first: v1.7), authenticated
//! download (v1.11) and the legacy download path, of this server's media or another's (which
//! the engine fetches), thumbnails, and the upload size limit.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::media::thumbnails::requested;
use tandem_core::media::{Fetch, StoredMedia, UploadInfo, disposition};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/media/v3/upload", post(upload))
        .route("/_matrix/media/v1/create", post(create))
        .route("/_matrix/media/v3/upload/{server}/{id}", put(upload_created))
        .route("/_matrix/media/v3/config", get(config))
        .route("/_matrix/client/v1/media/config", get(config))
        .route("/_matrix/client/v1/media/download/{server}/{id}", get(download_authenticated))
        .route("/_matrix/client/v1/media/download/{server}/{id}/{filename}", get(download_authenticated_named))
        .route("/_matrix/client/v1/media/thumbnail/{server}/{id}", get(thumbnail_authenticated))
        .route("/_matrix/media/v3/download/{server}/{id}", get(download_legacy))
        .route("/_matrix/media/v3/download/{server}/{id}/{filename}", get(download_legacy_named))
        .route("/_matrix/media/v3/thumbnail/{server}/{id}", get(thumbnail_legacy))
        .route("/_matrix/client/v1/media/preview_url", get(preview_url))
        .route("/_matrix/media/v3/preview_url", get(preview_url))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PreviewQuery {
    url: Option<String>,
    /// The time the client would like a preview of; previews are of now.
    #[allow(dead_code)]
    ts: Option<u64>,
}

/// `GET /preview_url`: the Open Graph object of a page (both paths need a token).
async fn preview_url(State(api): State<Api>, auth: Auth, Q(q): Q<PreviewQuery>) -> ApiResult<Json<Value>> {
    let url = q.url.ok_or_else(|| MatrixError::missing_param("Missing string query parameter 'url'"))?;
    Ok(Json(api.hs.preview_url(&auth.user_id, &url).await?))
}

async fn config(State(api): State<Api>, _auth: Auth) -> Json<Value> {
    Json(json!({ "m.upload.size": api.config.max_request_size }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UploadQuery {
    filename: Option<String>,
}

async fn upload(State(api): State<Api>, auth: Auth, Q(q): Q<UploadQuery>, request: Request) -> ApiResult<Json<Value>> {
    let uri = receive(&api, &auth, &q, request, None).await?;
    Ok(Json(json!({ "content_uri": uri })))
}

/// `POST /media/v1/create`: a media id to upload to later.
async fn create(State(api): State<Api>, auth: Auth) -> ApiResult<Json<Value>> {
    let hs = api.hs.clone();
    let (uri, expires_at) = blocking(move || hs.create_media(&auth.user_id)).await?;
    Ok(Json(json!({ "content_uri": uri, "unused_expires_at": expires_at })))
}

/// `PUT /media/v3/upload/{serverName}/{mediaId}`: the bytes of a created media id.
async fn upload_created(
    State(api): State<Api>,
    auth: Auth,
    Path((server, id)): Path<(String, String)>,
    Q(q): Q<UploadQuery>,
    request: Request,
) -> ApiResult<Json<Value>> {
    receive(&api, &auth, &q, request, Some((server, id))).await?;
    Ok(Json(json!({})))
}

/// Streams an upload's body to disk and commits it: to a new media id, or to `created`.
async fn receive(
    api: &Api,
    auth: &Auth,
    q: &UploadQuery,
    request: Request,
    created: Option<(String, String)>,
) -> ApiResult<String> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let too_large = || MatrixError::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "Upload too large");
    let max = api.config.max_request_size;
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let quota = api.config.media_quota_per_user;
    let (hs, user, size) = (api.hs.clone(), auth.user_id.clone(), declared.unwrap_or(0));
    // Refused before a byte is stored when the declared size is over the quota already.
    let upload = blocking(move || {
        hs.check_media_quota(&user, size, quota)?;
        match created {
            Some((server, id)) => hs.upload_to_created(&user, &server, &id),
            None => hs.new_upload(),
        }
    })
    .await?;
    let written = write_body(request, &upload.part, max).await;
    let hs = api.hs.clone();
    if let Err(e) = written {
        let _ = blocking(move || {
            hs.discard_upload(upload);
            Ok(())
        })
        .await;
        return Err(e);
    }
    let (user, filename) = (auth.user_id.clone(), q.filename.clone());
    let uri = blocking(move || {
        let info =
            UploadInfo { uploader: &user, content_type: content_type.as_deref(), filename: filename.as_deref(), quota };
        hs.commit_upload(upload, info)
    })
    .await?;
    Ok(uri)
}

/// Streams a request body into `path`, refusing it once it passes `max` bytes.
async fn write_body(request: Request, path: &std::path::Path, max: u64) -> ApiResult<()> {
    let failed = |e: std::io::Error| {
        tracing::error!("media store: {e}");
        MatrixError::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Cannot store the upload")
    };
    let mut file = tokio::fs::File::create(path).await.map_err(failed)?;
    let mut body = request.into_body().into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", e.to_string()))?;
        written += chunk.len() as u64;
        if written > max {
            return Err(MatrixError::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "Upload too large"));
        }
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.flush().await.map_err(failed)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DownloadQuery {
    timeout_ms: Option<u64>,
}

/// How long a download waits for media by default (the spec's `timeout_ms`).
const DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Whether a path is one of the unauthenticated legacy ones. Those never fetch another server's
/// media (as Synapse, once media are authenticated): anyone could make this server download
/// anything from anywhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Authenticated,
    Legacy,
}

/// The media, from this server or another, as the path allows.
async fn stored(api: &Api, server: &str, id: &str, timeout_ms: Option<u64>, access: Access) -> ApiResult<StoredMedia> {
    let fetch = Fetch {
        wait: timeout_ms.map_or(DEFAULT_WAIT, std::time::Duration::from_millis),
        allow_remote: access == Access::Authenticated,
        max_bytes: api.config.max_request_size,
    };
    Ok(api.hs.media(server, id, fetch).await?)
}

async fn serve(
    api: Api,
    access: Access,
    (server, id): (String, String),
    filename: Option<String>,
    q: DownloadQuery,
) -> ApiResult<Response> {
    let media = stored(&api, &server, &id, q.timeout_ms, access).await?;
    let name = filename.or(media.info.filename);
    send_file(&media.path, &media.info.content_type, name.as_deref(), media.info.size).await
}

/// A stored file as a download: its type (inline only for types safe to show), name and size.
async fn send_file(
    path: &std::path::Path,
    content_type: &str,
    filename: Option<&str>,
    size: u64,
) -> ApiResult<Response> {
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        tracing::error!(path = %path.display(), "media file unreadable: {e}");
        MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Media not found")
    })?;
    let mut headers = HeaderMap::new();
    let disposition = disposition(content_type, filename);
    let content_type =
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    // As the spec recommends: never let served media run as a page of this origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"),
    );
    headers.insert("Cross-Origin-Resource-Policy", HeaderValue::from_static("cross-origin"));
    // Browsers must take the type as given, not guess HTML or script from the bytes.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok((headers, Body::from_stream(ReaderStream::new(file))).into_response())
}

async fn download_authenticated(
    State(api): State<Api>,
    _auth: Auth,
    Path(media): Path<(String, String)>,
    Q(q): Q<DownloadQuery>,
) -> ApiResult<Response> {
    serve(api, Access::Authenticated, media, None, q).await
}

async fn download_authenticated_named(
    State(api): State<Api>,
    _auth: Auth,
    Path((server, id, filename)): Path<(String, String, String)>,
    Q(q): Q<DownloadQuery>,
) -> ApiResult<Response> {
    serve(api, Access::Authenticated, (server, id), Some(filename), q).await
}

async fn download_legacy(
    State(api): State<Api>,
    Path(media): Path<(String, String)>,
    Q(q): Q<DownloadQuery>,
) -> ApiResult<Response> {
    serve(api, Access::Legacy, media, None, q).await
}

async fn download_legacy_named(
    State(api): State<Api>,
    Path((server, id, filename)): Path<(String, String, String)>,
    Q(q): Q<DownloadQuery>,
) -> ApiResult<Response> {
    serve(api, Access::Legacy, (server, id), Some(filename), q).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ThumbnailQuery {
    width: Option<u32>,
    height: Option<u32>,
    method: Option<String>,
    timeout_ms: Option<u64>,
}

async fn thumbnail_authenticated(
    State(api): State<Api>,
    _auth: Auth,
    Path((server, id)): Path<(String, String)>,
    Q(q): Q<ThumbnailQuery>,
) -> ApiResult<Response> {
    thumbnail(api, Access::Authenticated, server, id, q).await
}

async fn thumbnail_legacy(
    State(api): State<Api>,
    Path((server, id)): Path<(String, String)>,
    Q(q): Q<ThumbnailQuery>,
) -> ApiResult<Response> {
    thumbnail(api, Access::Legacy, server, id, q).await
}

async fn thumbnail(api: Api, access: Access, server: String, id: String, q: ThumbnailQuery) -> ApiResult<Response> {
    let (width, height, method) = requested(q.width, q.height, q.method.as_deref())?;
    let media = stored(&api, &server, &id, q.timeout_ms, access).await?;
    let hs = api.hs.clone();
    let (thumb, path) = blocking(move || hs.thumbnail(&media, width, height, method)).await?;
    send_file(&path, &thumb.content_type, None, thumb.size).await
}
