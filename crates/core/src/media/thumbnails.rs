//! Thumbnails of stored images (uploads, and other servers' media kept here): made on first request, in the sizes Synapse makes by
//! default (crops of 32×32 and 96×96, scales within 320×240, 640×480 and 800×600), stored
//! beside the original and served again from there. JPEG and WebP become JPEG thumbnails,
//! PNG and GIF become PNG, as in Synapse. An image of more pixels than [`MAX_PIXELS`] (read from
//! its header before anything is decoded) gets none: a small file may decode to gigabytes.
//! Media that is no such image gets 400, as the spec and Synapse answer.

use std::io::Cursor;
use std::path::PathBuf;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};

use super::{MediaInfo, StoredMedia};
use crate::error::{Error, ErrorKind, Result};
use crate::server::Homeserver;
use crate::tables::{MEDIA_THUMBNAILS, key};

/// Synapse's `max_image_pixels`.
pub const MAX_PIXELS: u64 = 32 * 1024 * 1024;

/// How a thumbnail fits its box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Fills the box exactly, cropping what sticks out.
    Crop,
    /// Fits within the box, keeping the aspect ratio; never larger than the original.
    Scale,
}

/// A thumbnail request's box and method as a client or server gave them: both dimensions
/// present and positive, the method `crop` or `scale` (the default).
pub fn requested(width: Option<u32>, height: Option<u32>, method: Option<&str>) -> Result<(u32, u32, Method)> {
    let dimension = |name: &str, v: Option<u32>| -> Result<u32> {
        let v =
            v.ok_or_else(|| Error::new(ErrorKind::MissingParam, format!("Missing integer query parameter '{name}'")))?;
        if v == 0 {
            return Err(Error::new(ErrorKind::InvalidParam, format!("'{name}' must be a positive integer")));
        }
        Ok(v)
    };
    let (width, height) = (dimension("width", width)?, dimension("height", height)?);
    let method = match method {
        None | Some("scale") => Method::Scale,
        Some("crop") => Method::Crop,
        Some(other) => return Err(Error::new(ErrorKind::InvalidParam, format!("Unknown thumbnail method {other:?}"))),
    };
    Ok((width, height, method))
}

const CROPS: &[(u32, u32)] = &[(32, 32), (96, 96)];
const SCALES: &[(u32, u32)] = &[(320, 240), (640, 480), (800, 600)];

/// The spec's answer for media the server cannot thumbnail: 400, as Synapse answers.
fn cannot() -> Error {
    Error::new(ErrorKind::Unknown, "Cannot generate a thumbnail of this media")
}

/// A stored thumbnail.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Thumbnail {
    pub content_type: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
}

/// The size made for a request: the smallest of the method's sizes that covers it, or the
/// largest.
fn size_for(method: Method, width: u32, height: u32) -> (u32, u32) {
    let sizes = if method == Method::Crop { CROPS } else { SCALES };
    sizes.iter().copied().find(|(w, h)| *w >= width && *h >= height).unwrap_or(sizes[sizes.len() - 1])
}

/// The thumbnail format for an original's type, if it is an image this server thumbnails.
fn output_format(content_type: &str) -> Option<ImageFormat> {
    match content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase().as_str() {
        "image/jpeg" | "image/jpg" | "image/webp" => Some(ImageFormat::Jpeg),
        "image/png" | "image/gif" => Some(ImageFormat::Png),
        _ => None,
    }
}

impl Homeserver {
    /// The thumbnail of stored media for a `width`×`height` box, made now if it was not
    /// before, and its file (beside the original).
    pub fn thumbnail(
        &self,
        media: &StoredMedia,
        width: u32,
        height: u32,
        method: Method,
    ) -> Result<(Thumbnail, PathBuf)> {
        let format = output_format(&media.info.content_type).ok_or_else(cannot)?;
        let (w, h) = size_for(method, width, height);
        let name = format!("{w}x{h}-{}", if method == Method::Crop { "crop" } else { "scale" });
        let mut path = media.path.clone().into_os_string();
        path.push(format!(".{name}"));
        let path = PathBuf::from(path);
        let id = key(&[&media.file_id, &name]);
        if let Some(t) = self.get_json::<Thumbnail>(MEDIA_THUMBNAILS, &id)? {
            return Ok((t, path));
        }
        let thumbnail = make(&media.info, &media.path, &path, w, h, method, format)?;
        self.write(|txn| {
            txn.put_json(MEDIA_THUMBNAILS, id, &thumbnail);
            Ok(())
        })?;
        Ok((thumbnail, path))
    }
}

fn make(
    info: &MediaInfo,
    original: &std::path::Path,
    path: &std::path::Path,
    w: u32,
    h: u32,
    method: Method,
    format: ImageFormat,
) -> Result<Thumbnail> {
    let none = |why: String| {
        tracing::info!(size = info.size, "no thumbnail: {why}");
        cannot()
    };
    let bytes = std::fs::read(original).map_err(|e| none(e.to_string()))?;
    let reader = || ImageReader::new(Cursor::new(&bytes[..])).with_guessed_format().map_err(|e| none(e.to_string()));
    let (ow, oh) = reader()?.into_dimensions().map_err(|e| none(e.to_string()))?;
    if u64::from(ow) * u64::from(oh) > MAX_PIXELS {
        return Err(none(format!("{ow}x{oh} is more than {MAX_PIXELS} pixels")));
    }
    let mut decoder = reader()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(ow);
    limits.max_image_height = Some(oh);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    decoder.limits(limits);
    let image = decoder.decode().map_err(|e| none(e.to_string()))?;
    let image = match method {
        Method::Crop => image.resize_to_fill(w, h, FilterType::Triangle),
        Method::Scale if ow <= w && oh <= h => image,
        Method::Scale => image.resize(w, h, FilterType::Triangle),
    };
    let image = if format == ImageFormat::Jpeg { image::DynamicImage::ImageRgb8(image.to_rgb8()) } else { image };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).map_err(|e| none(e.to_string()))?;
    let out = out.into_inner();
    // Written whole then renamed, so a crash never leaves half a thumbnail to serve.
    let part = path.with_extension("part");
    std::fs::write(&part, &out).and_then(|()| std::fs::rename(&part, path)).map_err(|e| none(e.to_string()))?;
    Ok(Thumbnail {
        content_type: if format == ImageFormat::Jpeg { "image/jpeg" } else { "image/png" }.to_owned(),
        size: out.len() as u64,
        width: image.width(),
        height: image.height(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::UploadInfo;

    #[test]
    fn sizes_are_chosen_as_synapse_makes_them() {
        assert_eq!(size_for(Method::Crop, 24, 24), (32, 32));
        assert_eq!(size_for(Method::Crop, 40, 40), (96, 96));
        assert_eq!(size_for(Method::Crop, 500, 500), (96, 96));
        assert_eq!(size_for(Method::Scale, 100, 100), (320, 240));
        assert_eq!(size_for(Method::Scale, 700, 500), (800, 600));
        assert_eq!(output_format("image/webp"), Some(ImageFormat::Jpeg));
        assert_eq!(output_format("image/gif"), Some(ImageFormat::Png));
        assert_eq!(output_format("text/plain"), None);
    }

    fn upload(hs: &Homeserver, bytes: &[u8], content_type: &str) -> String {
        let upload = hs.new_upload().unwrap();
        std::fs::write(&upload.part, bytes).unwrap();
        let info = UploadInfo { uploader: "@a:b", content_type: Some(content_type), filename: None, quota: 0 };
        hs.commit_upload(upload, info).unwrap().rsplit('/').next().unwrap().to_owned()
    }

    /// A PNG whose header claims 100,000 × 100,000 pixels is refused from its header, before
    /// anything is decoded; a real image next to it is thumbnailed.
    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        let (_dir, hs) = crate::server::test_server();
        let mut bomb = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        bomb.extend_from_slice(&100_000u32.to_be_bytes());
        bomb.extend_from_slice(&100_000u32.to_be_bytes());
        bomb.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        let id = upload(&hs, &bomb, "image/png");
        let err = hs.thumbnail(&hs.local_media(&id).unwrap(), 32, 32, Method::Crop).unwrap_err();
        assert_eq!(err.kind.status_and_errcode(), (400, "M_UNKNOWN"));

        let mut png = Cursor::new(Vec::new());
        image::DynamicImage::new_rgb8(640, 200).write_to(&mut png, ImageFormat::Png).unwrap();
        let id = upload(&hs, png.get_ref(), "image/png");
        let (t, path) = hs.thumbnail(&hs.local_media(&id).unwrap(), 300, 200, Method::Scale).unwrap();
        assert_eq!((t.width, t.height, t.content_type.as_str()), (320, 100, "image/png"));
        assert_eq!(std::fs::metadata(path).unwrap().len(), t.size);
    }
}
