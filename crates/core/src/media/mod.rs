//! The media repository: uploaded files on disk in the media directory, their metadata in the
//! database. An upload is written to a part file as it arrives (never whole in memory), then
//! synced and renamed before its metadata commits, so an upload that was answered survives a
//! crash whole. Each user's uploads count against a quota. A client may also create a media
//! id first and upload its bytes later (spec v1.7, `POST /media/v1/create`): the id waits a
//! day for them, and downloads of it wait for them a while. Other servers' media are
//! fetched on first request and kept (`remote.rs`).

pub mod preview;
pub mod remote;
pub mod thumbnails;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;
use crate::tables::{MEDIA, MEDIA_PENDING, MEDIA_USAGE, key};

/// How long a created media id waits for its bytes (Synapse: a day).
pub const UNUSED_EXPIRY_MS: u64 = 24 * 3600 * 1000;
/// How many created media ids without bytes a user may hold at once (Synapse's default).
pub const MAX_PENDING_PER_USER: usize = 5;

/// A media id created for an upload still to come.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PendingMedia {
    creator: String,
    expires_at: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaInfo {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub uploader: String,
    pub created_ts: u64,
}

/// A file of the media repository: an upload of this server, or a copy of another server's
/// media.
pub struct StoredMedia {
    pub info: MediaInfo,
    pub path: PathBuf,
    /// Unique among all stored media; names its thumbnails.
    file_id: String,
}

/// How a download may get its media.
#[derive(Clone, Copy, Debug)]
pub struct Fetch {
    /// How long to wait for the bytes of a created id, or for another server's answer.
    pub wait: Duration,
    /// Whether another server's media not held yet is fetched (legacy `allow_remote`).
    pub allow_remote: bool,
    /// The largest media fetched from another server.
    pub max_bytes: u64,
}

/// How long a download waits for media at most, whatever the client asks (Synapse's).
pub const MAX_WAIT: Duration = Duration::from_secs(60);

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

/// The `Content-Disposition` media are served with: inline only for types safe to show, with
/// the file name (RFC 6266's `filename*` when it is not plain ASCII).
pub fn disposition(content_type: &str, filename: Option<&str>) -> String {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let disposition = if INLINE_TYPES.contains(&essence.as_str()) { "inline" } else { "attachment" };
    let Some(name) = filename.filter(|n| !n.is_empty() && !n.chars().any(char::is_control)) else {
        return disposition.to_owned();
    };
    if name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !name.contains(['"', '\\']) {
        return format!("{disposition}; filename=\"{name}\"");
    }
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{disposition}; filename*=utf-8''{encoded}")
}

/// An upload on its way in: the part file its bytes go to.
pub struct Upload {
    id: String,
    pub part: PathBuf,
}

/// What an upload is, besides its bytes.
pub struct UploadInfo<'a> {
    pub uploader: &'a str,
    pub content_type: Option<&'a str>,
    pub filename: Option<&'a str>,
    /// The most bytes a user's uploads may add up to; 0 for no limit.
    pub quota: u64,
}

/// Media ids are ours: letters and digits only, so one is always a safe file name.
fn valid_media_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn io(e: std::io::Error) -> Error {
    tracing::error!("media store: {e}");
    Error::internal("cannot store the upload")
}

/// Writes, in `batch`, each user's usage as the sum of their uploads' sizes (for a database
/// written before usage was kept).
pub(crate) fn index_usage(db: &tandem_storage::Db, batch: &mut tandem_storage::Batch) -> tandem_storage::Result<()> {
    let mut usage: std::collections::BTreeMap<String, u64> = Default::default();
    for entry in db.scan_prefix(MEDIA, &[])? {
        let (_, v) = entry?;
        let Ok(info) = serde_json::from_slice::<serde_json::Value>(&v) else { continue };
        if let (Some(user), Some(size)) = (info["uploader"].as_str(), info["size"].as_u64()) {
            *usage.entry(user.to_owned()).or_default() += size;
        }
    }
    for (user, bytes) in usage {
        batch.put(MEDIA_USAGE, key(&[&user]), bytes.to_string().into_bytes());
    }
    Ok(())
}

impl Homeserver {
    /// Bytes of media `user_id` uploaded.
    pub fn media_usage(&self, user_id: &str) -> Result<u64> {
        Ok(self.get_json::<u64>(MEDIA_USAGE, &key(&[user_id]))?.unwrap_or(0))
    }

    /// Refuses an upload of `size` more bytes by a user whose quota it would exceed.
    pub fn check_media_quota(&self, user_id: &str, size: u64, quota: u64) -> Result<()> {
        if quota > 0 && self.media_usage(user_id)?.saturating_add(size) > quota {
            return Err(Error::new(ErrorKind::ResourceLimitExceeded, "Your media quota is used up"));
        }
        Ok(())
    }

    /// A new upload: the caller writes its bytes to `part`, then calls
    /// [`Homeserver::commit_upload`] (or [`Homeserver::discard_upload`]).
    pub fn new_upload(&self) -> Result<Upload> {
        self.upload_to(Homeserver::random_string(24))
    }

    fn upload_to(&self, id: String) -> Result<Upload> {
        std::fs::create_dir_all(&self.media_dir).map_err(io)?;
        // A part file of its own per request, even for two uploads to one created id.
        let part = self.media_dir.join(format!("{id}.{}.part", Homeserver::random_string(8)));
        Ok(Upload { id, part })
    }

    /// Creates a media id for `user_id` to upload to later: its `mxc://` URI and until when
    /// it waits for the bytes.
    pub fn create_media(&self, user_id: &str) -> Result<(String, u64)> {
        let now = Self::now_ms();
        let id = Homeserver::random_string(24);
        let expires_at = now + UNUSED_EXPIRY_MS;
        self.write(|txn| {
            let mut mine = 0;
            for (k, p) in self.scan_json::<PendingMedia>(MEDIA_PENDING, &[])? {
                if p.expires_at <= now {
                    txn.batch.delete(MEDIA_PENDING, k.to_vec());
                } else if p.creator == user_id {
                    mine += 1;
                }
            }
            if mine >= MAX_PENDING_PER_USER {
                return Err(Error::new(ErrorKind::LimitExceeded, "Too many media ids waiting for an upload"));
            }
            txn.put_json(MEDIA_PENDING, key(&[&id]), &PendingMedia { creator: user_id.to_owned(), expires_at });
            Ok(())
        })?;
        Ok((format!("mxc://{}/{id}", self.server_name), expires_at))
    }

    /// An upload to a media id `user_id` created: refused before a byte is written when the
    /// id is not theirs, unknown or expired, or has its bytes already.
    pub fn upload_to_created(&self, user_id: &str, server_name: &str, media_id: &str) -> Result<Upload> {
        if server_name != self.server_name || !valid_media_id(media_id) {
            return Err(Error::not_found("Media not found"));
        }
        if self.get_json::<MediaInfo>(MEDIA, &key(&[media_id]))?.is_some() {
            return Err(Error::new(ErrorKind::CannotOverwriteMedia, "The media has been uploaded already"));
        }
        let pending = self.pending_media(media_id)?.ok_or_else(|| Error::not_found("Media not found"))?;
        if pending.creator != user_id {
            return Err(Error::forbidden("This media id was created by another user"));
        }
        self.upload_to(media_id.to_owned())
    }

    fn pending_media(&self, media_id: &str) -> Result<Option<PendingMedia>> {
        let pending: Option<PendingMedia> = self.get_json(MEDIA_PENDING, &key(&[media_id]))?;
        Ok(pending.filter(|p| p.expires_at > Self::now_ms()))
    }

    pub fn discard_upload(&self, upload: Upload) {
        let _ = std::fs::remove_file(&upload.part);
    }

    /// Makes a written upload media: synced, in place, counted against its uploader's
    /// quota, its metadata committed. Returns its `mxc://` URI.
    pub fn commit_upload(&self, upload: Upload, info: UploadInfo<'_>) -> Result<String> {
        let result = self.commit(&upload, info);
        if result.is_err() {
            self.discard_upload(upload);
        }
        result
    }

    fn commit(&self, upload: &Upload, info: UploadInfo<'_>) -> Result<String> {
        let file = std::fs::File::open(&upload.part).map_err(io)?;
        file.sync_all().map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let meta = MediaInfo {
            content_type: info.content_type.unwrap_or("application/octet-stream").to_owned(),
            filename: info.filename.map(str::to_owned),
            size,
            uploader: info.uploader.to_owned(),
            created_ts: Self::now_ms(),
        };
        // Under the writer lock, so that two uploads cannot both fit the last of a quota.
        self.write(|txn| {
            // Two uploads to one created id: the first to commit wins.
            if self.get_json::<MediaInfo>(MEDIA, &key(&[&upload.id]))?.is_some() {
                return Err(Error::new(ErrorKind::CannotOverwriteMedia, "The media has been uploaded already"));
            }
            self.check_media_quota(info.uploader, size, info.quota)?;
            std::fs::rename(&upload.part, self.media_dir.join(&upload.id)).map_err(io)?;
            std::fs::File::open(&self.media_dir).and_then(|d| d.sync_all()).map_err(io)?;
            txn.put_json(MEDIA, key(&[&upload.id]), &meta);
            txn.batch.delete(MEDIA_PENDING, key(&[&upload.id]));
            txn.put_json(MEDIA_USAGE, key(&[info.uploader]), &(self.media_usage(info.uploader)? + size));
            Ok(())
        })?;
        Ok(format!("mxc://{}/{}", self.server_name, upload.id))
    }

    /// Media by its `mxc://` server and id: an upload of this server (waiting up to
    /// `fetch.wait` for the bytes of a created id), or another server's, kept or fetched now.
    pub async fn media(self: &Arc<Self>, server_name: &str, media_id: &str, fetch: Fetch) -> Result<StoredMedia> {
        if server_name != self.server_name {
            return self.remote_media(server_name, media_id, fetch).await;
        }
        let deadline = tokio::time::Instant::now() + fetch.wait.min(MAX_WAIT);
        loop {
            let id = media_id.to_owned();
            match self.blocking(move |hs| hs.local_media(&id)).await {
                Err(e) if e.kind == ErrorKind::NotYetUploaded && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    /// An upload of this server and the file holding its bytes.
    pub fn local_media(&self, media_id: &str) -> Result<StoredMedia> {
        if !valid_media_id(media_id) {
            return Err(Error::not_found("Media not found"));
        }
        let Some(info) = self.get_json::<MediaInfo>(MEDIA, &key(&[media_id]))? else {
            if self.pending_media(media_id)?.is_some() {
                return Err(Error::new(ErrorKind::NotYetUploaded, "The media has not been uploaded yet"));
            }
            return Err(Error::not_found("Media not found"));
        };
        Ok(StoredMedia { info, path: self.media_dir.join(media_id), file_id: media_id.to_owned() })
    }
}
