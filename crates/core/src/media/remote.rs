//! Other servers' media: fetched through the federation layer on first request (their
//! `/federation/v1/media/download`, or the legacy path of an older server), written to a part
//! file as it arrives, then kept in `media/remote/` under an id of our own and served from
//! there again. What the other server says is checked before it is kept: the media id's
//! grammar, the size (at most the upload limit), a content type that is a plain header value.
//! Two requests for the same media wait on one fetch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

use super::{Fetch, MAX_WAIT, MediaInfo, StoredMedia};
use crate::error::{Error, Result};
use crate::server::{Homeserver, lock};
use crate::tables::{MEDIA_REMOTE, key};

/// The longest media id taken from another server (the spec's grammar sets no length;
/// Synapse's ids are 24 characters).
const MAX_MEDIA_ID: usize = 255;

/// The spec's media id grammar: `[A-Za-z0-9_-]+`. Anything else (a `/`, `..`) never reaches a
/// request path or the cache.
fn valid_remote_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MEDIA_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What is kept of another server's media: its metadata and our file's id.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Cached {
    #[serde(flatten)]
    info: MediaInfo,
    file: String,
}

/// The turn of the requests for one media: whoever holds it fetches.
type Turn = tokio::sync::Mutex<()>;

/// One fetch at a time per media (server name, media id).
#[derive(Default)]
pub(crate) struct Fetches(Mutex<HashMap<(String, String), Weak<Turn>>>);

impl Fetches {
    fn lock_for(&self, server_name: &str, media_id: &str) -> Arc<Turn> {
        let mut map = lock(&self.0);
        map.retain(|_, w| w.strong_count() > 0);
        let key = (server_name.to_owned(), media_id.to_owned());
        if let Some(l) = map.get(&key).and_then(Weak::upgrade) {
            return l;
        }
        let l = Arc::new(Turn::new(()));
        map.insert(key, Arc::downgrade(&l));
        l
    }
}

/// A content type as another server gave it, if it is a plain header value of a sane length.
fn content_type(given: Option<String>) -> String {
    given
        .filter(|t| !t.is_empty() && t.len() <= 255 && t.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

impl Homeserver {
    fn remote_dir(&self) -> PathBuf {
        self.media_dir.join("remote")
    }

    fn cached_media(&self, server_name: &str, media_id: &str) -> Result<Option<StoredMedia>> {
        let cached: Option<Cached> = self.get_json(MEDIA_REMOTE, &key(&[server_name, media_id]))?;
        Ok(cached.map(|c| StoredMedia {
            path: self.remote_dir().join(&c.file),
            file_id: format!("r{}", c.file),
            info: c.info,
        }))
    }

    /// Another server's media, kept or fetched now.
    pub(super) async fn remote_media(
        self: &Arc<Self>,
        server_name: &str,
        media_id: &str,
        fetch: Fetch,
    ) -> Result<StoredMedia> {
        let not_found = || Error::not_found("Media not found");
        if crate::server_name::split_server_name(server_name).is_none() || !valid_remote_media_id(media_id) {
            return Err(not_found());
        }
        let (server, id) = (server_name.to_owned(), media_id.to_owned());
        let cached = move |hs: &Homeserver| hs.cached_media(&server, &id);
        if let Some(media) = self.blocking(cached.clone()).await? {
            return Ok(media);
        }
        if !fetch.allow_remote {
            return Err(not_found());
        }
        let fetching = self.remote_fetches.lock_for(server_name, media_id);
        let _turn = fetching.lock().await;
        // Fetched meanwhile by the request this one waited for.
        if let Some(media) = self.blocking(cached).await? {
            return Ok(media);
        }
        let file = Homeserver::random_string(24);
        let dir = self.remote_dir();
        std::fs::create_dir_all(&dir).map_err(super::io)?;
        let part = dir.join(format!("{file}.part"));
        let timeout_ms = fetch.wait.min(MAX_WAIT).as_millis() as u64;
        let network = self.network()?;
        let answer = network
            .download_media(server_name.to_owned(), media_id.to_owned(), timeout_ms, part.clone(), fetch.max_bytes)
            .await;
        let download = match answer {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                tracing::info!(server = server_name, media_id, "remote media not fetched: {}", e.message);
                return Err(e);
            }
        };
        let (server, id) = (server_name.to_owned(), media_id.to_owned());
        self.blocking(move |hs| {
            let kept = hs.keep_remote(&server, &id, &part, &file, download);
            if kept.is_err() {
                let _ = std::fs::remove_file(&part);
            }
            kept
        })
        .await
    }

    /// Makes a fetched part file a kept copy: synced, in place, its metadata committed.
    fn keep_remote(
        &self,
        server_name: &str,
        media_id: &str,
        part: &std::path::Path,
        file: &str,
        download: crate::network::MediaDownload,
    ) -> Result<StoredMedia> {
        let f = std::fs::File::open(part).map_err(super::io)?;
        f.sync_all().map_err(super::io)?;
        let size = f.metadata().map_err(super::io)?.len();
        let path = self.remote_dir().join(file);
        std::fs::rename(part, &path).map_err(super::io)?;
        let filename = download.filename.filter(|n| n.len() <= 255);
        let info = MediaInfo {
            content_type: content_type(download.content_type),
            filename,
            size,
            uploader: server_name.to_owned(),
            created_ts: Homeserver::now_ms(),
        };
        let cached = Cached { info: info.clone(), file: file.to_owned() };
        self.write(|txn| {
            txn.put_json(MEDIA_REMOTE, key(&[server_name, media_id]), &cached);
            Ok(())
        })?;
        Ok(StoredMedia { info, path, file_id: format!("r{file}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_specs_media_ids_and_plain_types_are_taken() {
        assert!(valid_remote_media_id("AbC_12-x"));
        for bad in ["", "a/b", "..", "a.b", "a%2Fb", &"x".repeat(256)] {
            assert!(!valid_remote_media_id(bad), "{bad}");
        }
        assert_eq!(content_type(Some("image/png".into())), "image/png");
        assert_eq!(content_type(Some("text/html\r\nSet-Cookie: x".into())), "application/octet-stream");
        assert_eq!(content_type(None), "application/octet-stream");
    }
}
