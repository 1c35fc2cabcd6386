//! Other servers' media, downloaded for the engine. First the authenticated endpoint
//! (`/federation/v1/media/download`, spec v1.11): a `multipart/mixed` answer whose first part
//! is JSON metadata and whose second is the bytes, or a `Location` to get them from. A server
//! that does not know that endpoint is asked at the legacy `/media/v3/download`, unsigned and
//! with `allow_remote=false` (so that two servers never bounce a request between them).
//!
//! Nothing of the answer is trusted: its bytes are streamed to the file and cut at the size
//! limit, the metadata part is bounded, and a `Location` is fetched as any URL outside
//! federation is (http(s) only, the IP blocklist, no further redirect).

use std::fmt::Display;
use std::path::Path;

use futures_util::{Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use tandem_core::network::MediaDownload;
use tandem_core::{Error, ErrorKind};
use tokio::io::AsyncWriteExt;

use crate::Federation;
use crate::network::enc;
use crate::server::decode;

/// The largest metadata part taken (today it is `{}`).
const MAX_METADATA_BYTES: usize = 64 * 1024;

fn bad_gateway(destination: &str, why: impl Display) -> Error {
    tracing::info!(%destination, "media download failed: {why}");
    Error::new(ErrorKind::BadGateway, format!("Failed to fetch remote media from {destination}"))
}

/// A request that never got an answer: refused by this server's policy, or a bad gateway.
fn unreached(destination: &str, e: crate::FedError) -> Error {
    match e {
        crate::FedError::Matrix { status: 403, message, .. } => Error::forbidden(message),
        e => bad_gateway(destination, e),
    }
}

fn too_large(max_bytes: u64) -> Error {
    Error::new(ErrorKind::RemoteTooLarge, format!("The remote media is larger than {max_bytes} bytes"))
}

/// Downloads `media_id` of `destination` into `file`.
pub async fn download(
    fed: &Federation,
    destination: &str,
    media_id: &str,
    timeout_ms: u64,
    file: &Path,
    max_bytes: u64,
) -> Result<MediaDownload, Error> {
    let path = format!("/_matrix/federation/v1/media/download/{}?timeout_ms={timeout_ms}", enc(media_id));
    let response = fed
        .client
        .send_signed(&fed.hs, Method::GET, destination, &path, None)
        .await
        .map_err(|e| unreached(destination, e))?;
    let response = match refusal(destination, response).await? {
        Answer::Media(r) => r,
        Answer::Unrecognized => return legacy(fed, destination, media_id, timeout_ms, file, max_bytes).await,
    };
    check_length(&response, max_bytes + MAX_METADATA_BYTES as u64)?;
    let boundary = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .filter(|m| m.type_() == mime::MULTIPART && m.subtype() == "mixed")
        .and_then(|m| m.get_param(mime::BOUNDARY).map(|b| b.as_str().to_owned()))
        .ok_or_else(|| bad_gateway(destination, "the answer is not multipart/mixed with a boundary"))?;
    let limits = multer::SizeLimit::new().whole_stream(max_bytes + MAX_METADATA_BYTES as u64);
    let mut parts =
        multer::Multipart::with_constraints(body(response), boundary, multer::Constraints::new().size_limit(limits));
    let malformed = |e: multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(max_bytes),
        e => bad_gateway(destination, e),
    };
    let mut metadata =
        parts.next_field().await.map_err(malformed)?.ok_or_else(|| bad_gateway(destination, "no parts"))?;
    let mut json = Vec::new();
    while let Some(chunk) = metadata.chunk().await.map_err(malformed)? {
        json.extend_from_slice(&chunk);
        if json.len() > MAX_METADATA_BYTES {
            return Err(bad_gateway(destination, "the metadata part is too large"));
        }
    }
    if !serde_json::from_slice::<serde_json::Value>(&json).is_ok_and(|v| v.is_object()) {
        return Err(bad_gateway(destination, "the metadata part is not a JSON object"));
    }
    drop(metadata);
    let media =
        parts.next_field().await.map_err(malformed)?.ok_or_else(|| bad_gateway(destination, "no media part"))?;
    if let Some(location) = media.headers().get(LOCATION) {
        let location = location.to_str().map_err(|e| bad_gateway(destination, e))?.to_owned();
        let response = fed.client.get_url(&location).await.map_err(|e| unreached(destination, e))?;
        if !response.status().is_success() {
            return Err(bad_gateway(destination, format!("{location} answered {}", response.status())));
        }
        return save(destination, response, file, max_bytes).await;
    }
    let described = MediaDownload {
        content_type: header(media.headers(), CONTENT_TYPE),
        filename: header(media.headers(), CONTENT_DISPOSITION).and_then(|d| filename(&d)),
    };
    write(media, file, max_bytes).await.map_err(|e| match e {
        Written::TooLarge => too_large(max_bytes),
        Written::Stream(e) => malformed(e),
        Written::Io(e) => io(e),
    })?;
    Ok(described)
}

/// The legacy download of a server without the authenticated endpoint.
async fn legacy(
    fed: &Federation,
    destination: &str,
    media_id: &str,
    timeout_ms: u64,
    file: &Path,
    max_bytes: u64,
) -> Result<MediaDownload, Error> {
    let path = format!(
        "/_matrix/media/v3/download/{}/{}?allow_remote=false&timeout_ms={timeout_ms}",
        enc(destination),
        enc(media_id)
    );
    let response =
        fed.client.send_unsigned(Method::GET, destination, &path, None).await.map_err(|e| unreached(destination, e))?;
    match refusal(destination, response).await? {
        Answer::Media(response) => save(destination, response, file, max_bytes).await,
        Answer::Unrecognized => Err(bad_gateway(destination, "neither media endpoint is known there")),
    }
}

enum Answer {
    Media(reqwest::Response),
    /// The server does not know the endpoint.
    Unrecognized,
}

/// A successful answer, or what its refusal means: `M_NOT_FOUND` for media the server does not
/// have, [`Answer::Unrecognized`] for an endpoint it does not know, otherwise a bad gateway.
async fn refusal(destination: &str, response: reqwest::Response) -> Result<Answer, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(Answer::Media(response));
    }
    let body = crate::client::read_at_most(destination, response, MAX_METADATA_BYTES).await.err();
    let errcode = match &body {
        Some(crate::FedError::Remote { errcode, .. }) => errcode.clone(),
        _ => None,
    };
    match (status.as_u16(), errcode.as_deref()) {
        (404 | 400, Some("M_UNRECOGNIZED")) | (405 | 501, _) => Ok(Answer::Unrecognized),
        (404, _) => Err(Error::not_found("Media not found")),
        (code, errcode) => Err(bad_gateway(destination, format!("{code} {}", errcode.unwrap_or_default()))),
    }
}

/// Refuses an answer that announces more bytes than taken.
fn check_length(response: &reqwest::Response, max: u64) -> Result<(), Error> {
    let declared = header(response.headers(), CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    Ok(())
}

/// A whole answer as the media: its type and name from its headers.
async fn save(
    destination: &str,
    response: reqwest::Response,
    file: &Path,
    max_bytes: u64,
) -> Result<MediaDownload, Error> {
    check_length(&response, max_bytes)?;
    let described = MediaDownload {
        content_type: header(response.headers(), CONTENT_TYPE),
        filename: header(response.headers(), CONTENT_DISPOSITION).and_then(|d| filename(&d)),
    };
    write(body(response), file, max_bytes).await.map_err(|e| match e {
        Written::TooLarge => too_large(max_bytes),
        Written::Stream(e) => bad_gateway(destination, e),
        Written::Io(e) => io(e),
    })?;
    Ok(described)
}

fn header(headers: &reqwest::header::HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn io(e: std::io::Error) -> Error {
    tracing::error!("media store: {e}");
    Error::internal("cannot store the remote media")
}

/// A response body as a stream of chunks.
fn body(response: reqwest::Response) -> impl Stream<Item = Result<bytes::Bytes, reqwest::Error>> {
    futures_util::stream::unfold(response, |mut r| async move {
        match r.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), r)),
            Ok(None) => None,
            Err(e) => Some((Err(e), r)),
        }
    })
}

enum Written<E> {
    TooLarge,
    Stream(E),
    Io(std::io::Error),
}

/// Streams `chunks` into `path`, stopping once they pass `max` bytes.
async fn write<E>(
    chunks: impl Stream<Item = Result<bytes::Bytes, E>>,
    path: &Path,
    max: u64,
) -> Result<(), Written<E>> {
    let mut file = tokio::fs::File::create(path).await.map_err(Written::Io)?;
    let mut chunks = std::pin::pin!(chunks);
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(Written::Stream)?;
        written += chunk.len() as u64;
        if written > max {
            return Err(Written::TooLarge);
        }
        file.write_all(&chunk).await.map_err(Written::Io)?;
    }
    file.flush().await.map_err(Written::Io)
}

/// The file name of a `Content-Disposition`: `filename*=UTF-8''…` (RFC 6266) before
/// `filename=`, quoted or not.
fn filename(disposition: &str) -> Option<String> {
    let params: Vec<(String, &str)> = disposition
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let extended = params.iter().find(|(k, _)| k == "filename*").and_then(|(_, v)| {
        let (charset, rest) = v.split_once('\'')?;
        let (_, encoded) = rest.split_once('\'')?;
        charset.eq_ignore_ascii_case("utf-8").then(|| decode(encoded))
    });
    let plain = || {
        params.iter().find(|(k, _)| k == "filename").map(|(_, v)| {
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            v.to_owned()
        })
    };
    extended.or_else(plain).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::filename;

    #[test]
    fn file_names_of_content_dispositions() {
        assert_eq!(filename("inline; filename=\"cat.png\"").as_deref(), Some("cat.png"));
        assert_eq!(filename("attachment; filename=a.txt").as_deref(), Some("a.txt"));
        assert_eq!(filename("inline; filename*=UTF-8''%C3%A9t%C3%A9.png; filename=\"x\"").as_deref(), Some("été.png"));
        assert_eq!(filename("inline"), None);
    }
}
