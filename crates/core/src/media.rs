//! The media repository: uploaded files on disk in the media directory, their metadata in the
//! database. An upload is written to a part file as it arrives (never whole in memory), then
//! synced and renamed before its metadata commits, so an upload that was answered survives a
//! crash whole. Each user's uploads count against a quota.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;
use crate::tables::{MEDIA, MEDIA_USAGE, key};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaInfo {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub uploader: String,
    pub created_ts: u64,
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
        std::fs::create_dir_all(&self.media_dir).map_err(io)?;
        let id = Homeserver::random_string(24);
        let part = self.media_dir.join(format!("{id}.part"));
        Ok(Upload { id, part })
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
            self.check_media_quota(info.uploader, size, info.quota)?;
            std::fs::rename(&upload.part, self.media_dir.join(&upload.id)).map_err(io)?;
            std::fs::File::open(&self.media_dir).and_then(|d| d.sync_all()).map_err(io)?;
            txn.put_json(MEDIA, key(&[&upload.id]), &meta);
            txn.put_json(MEDIA_USAGE, key(&[info.uploader]), &(self.media_usage(info.uploader)? + size));
            Ok(())
        })?;
        Ok(format!("mxc://{}/{}", self.server_name, upload.id))
    }

    /// An upload of this server and the file holding its bytes.
    pub fn media_file(&self, server_name: &str, media_id: &str) -> Result<(MediaInfo, PathBuf)> {
        let not_found = || Error::not_found("Media not found");
        if server_name != self.server_name || !valid_media_id(media_id) {
            return Err(not_found());
        }
        let info: MediaInfo = self.get_json(MEDIA, &key(&[media_id]))?.ok_or_else(not_found)?;
        Ok((info, self.media_dir.join(media_id)))
    }
}
