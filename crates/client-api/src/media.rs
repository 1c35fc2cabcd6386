//! The media repository: upload, authenticated download (v1.11) and the legacy download path,
//! thumbnails (served as the original for now), and the upload size limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiResult, MatrixError};
use crate::extract::{Auth, Q, blocking};
use crate::state::Api;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/_matrix/media/v3/upload", post(upload))
        .route("/_matrix/media/v3/config", get(config))
        .route("/_matrix/client/v1/media/config", get(config))
        .route("/_matrix/client/v1/media/download/{server}/{id}", get(download_authenticated))
        .route("/_matrix/client/v1/media/download/{server}/{id}/{filename}", get(download_authenticated_named))
        .route("/_matrix/client/v1/media/thumbnail/{server}/{id}", get(download_authenticated))
        .route("/_matrix/media/v3/download/{server}/{id}", get(download_legacy))
        .route("/_matrix/media/v3/download/{server}/{id}/{filename}", get(download_legacy_named))
        .route("/_matrix/media/v3/thumbnail/{server}/{id}", get(download_legacy))
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
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = Bytes::from_request(request, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            MatrixError::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", "Upload too large")
        } else {
            MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", e.body_text())
        }
    })?;
    let hs = api.hs.clone();
    let uri = blocking(move || hs.upload_media(&auth.user_id, content_type.as_deref(), q.filename.as_deref(), &bytes))
        .await?;
    Ok(Json(json!({ "content_uri": uri })))
}

/// Types a browser may show inline without risk; anything else is served as an attachment.
const INLINE_TYPES: &[&str] = &[
    "text/plain",
    "text/csv",
    "application/json",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/apng",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "audio/mp4",
    "audio/webm",
    "audio/ogg",
    "audio/mpeg",
    "audio/wav",
    "audio/flac",
];

async fn serve(api: Api, server: String, id: String, filename: Option<String>) -> ApiResult<Response> {
    let hs = api.hs.clone();
    let (info, bytes) = blocking(move || hs.media(&server, &id)).await?;
    let mut headers = HeaderMap::new();
    let content_type =
        HeaderValue::from_str(&info.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let essence = info.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let disposition = if INLINE_TYPES.contains(&essence.as_str()) { "inline" } else { "attachment" };
    let name = filename.or(info.filename).filter(|n| !n.contains(['"', '\r', '\n', '\\']));
    let disposition = match name {
        Some(n) => format!("{disposition}; filename=\"{n}\""),
        None => disposition.to_owned(),
    };
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
    Ok((headers, bytes).into_response())
}

async fn download_authenticated(
    State(api): State<Api>,
    _auth: Auth,
    Path((server, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    serve(api, server, id, None).await
}

async fn download_authenticated_named(
    State(api): State<Api>,
    _auth: Auth,
    Path((server, id, filename)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    serve(api, server, id, Some(filename)).await
}

async fn download_legacy(State(api): State<Api>, Path((server, id)): Path<(String, String)>) -> ApiResult<Response> {
    serve(api, server, id, None).await
}

async fn download_legacy_named(
    State(api): State<Api>,
    Path((server, id, filename)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    serve(api, server, id, Some(filename)).await
}
