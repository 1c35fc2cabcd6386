//! The media repository: uploaded files on disk in the media directory, their metadata in the
//! database. A file is written and synced before its metadata commits, so an upload that was
//! answered survives a crash whole.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::tables::{MEDIA, key};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaInfo {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub uploader: String,
    pub created_ts: u64,
}

/// Media ids are ours: letters and digits only, so one is always a safe file name.
fn valid_media_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Homeserver {
    /// Stores an upload; returns its `mxc://` URI.
    pub fn upload_media(
        &self,
        uploader: &str,
        content_type: Option<&str>,
        filename: Option<&str>,
        bytes: &[u8],
    ) -> Result<String> {
        let id = Homeserver::random_string(24);
        let io = |e: std::io::Error| {
            tracing::error!("media store: {e}");
            Error::internal("cannot store the upload")
        };
        std::fs::create_dir_all(&self.media_dir).map_err(io)?;
        let tmp = self.media_dir.join(format!("{id}.part"));
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, self.media_dir.join(&id)).map_err(io)?;
        std::fs::File::open(&self.media_dir).and_then(|d| d.sync_all()).map_err(io)?;
        let info = MediaInfo {
            content_type: content_type.unwrap_or("application/octet-stream").to_owned(),
            filename: filename.map(str::to_owned),
            size: bytes.len() as u64,
            uploader: uploader.to_owned(),
            created_ts: Self::now_ms(),
        };
        self.write(|txn| {
            txn.put_json(MEDIA, key(&[&id]), &info);
            Ok(())
        })?;
        Ok(format!("mxc://{}/{id}", self.server_name))
    }

    /// An upload of this server and its bytes.
    pub fn media(&self, server_name: &str, media_id: &str) -> Result<(MediaInfo, Vec<u8>)> {
        let not_found = || Error::not_found("Media not found");
        if server_name != self.server_name || !valid_media_id(media_id) {
            return Err(not_found());
        }
        let info: MediaInfo = self.get_json(MEDIA, &key(&[media_id]))?.ok_or_else(not_found)?;
        let bytes = std::fs::read(self.media_dir.join(media_id)).map_err(|e| {
            tracing::error!(media_id, "media file unreadable: {e}");
            not_found()
        })?;
        Ok((info, bytes))
    }
}
