//! Images as Element X loads them: alice uploads a PNG through the SDK; bob, on the other
//! server (or the same), and alice herself load it and a 32×32 thumbnail of it through the
//! SDK's media API, which takes the authenticated media paths of spec v1.11 when the server
//! announces them, so a remote image crosses the servers' federation media endpoints.

use anyhow::{Context, Result, ensure};
use base64::Engine;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters, MediaThumbnailSettings};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::media::Method;
use matrix_sdk::ruma::uint;

use crate::account::user;
use crate::support::unique;

/// A 64×48 PNG of one colour (the conformance suite's).
const PNG_64X48: &str = "iVBORw0KGgoAAAANSUhEUgAAAEAAAAAwCAIAAAAuKetIAAAAQ0lEQVR42u3PQQkAAAgEsItz/VMYywp+hcEKLNO+FgEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGBqwWPoCDEkZcDMwAAAABJRU5ErkJggg==";

fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    bytes.starts_with(b"\x89PNG\r\n\x1a\n").then_some(())?;
    Some((be(16)?, be(20)?))
}

pub(crate) async fn run(url_a: &str, url_b: &str) -> Result<()> {
    let (alice, _alice_sync) = user(url_a, &unique("pictures_a")).await?;
    let (bob, _bob_sync) = user(url_b, &unique("pictures_b")).await?;
    let png = base64::engine::general_purpose::STANDARD.decode(PNG_64X48)?;
    let uri = alice.media().upload(&mime::IMAGE_PNG, png.clone(), None).await.context("upload")?.content_uri;
    for (who, client) in [("bob", &bob), ("alice", &alice)] {
        let file = MediaRequestParameters { source: MediaSource::Plain(uri.clone()), format: MediaFormat::File };
        let got = client.media().get_media_content(&file, false).await.with_context(|| format!("{who} loads {uri}"))?;
        ensure!(got == png, "{who} got {} bytes that are not the image", got.len());
        let settings = MediaThumbnailSettings::with_method(Method::Crop, uint!(32), uint!(32));
        let thumbnail = MediaRequestParameters { source: MediaSource::Plain(uri.clone()), format: MediaFormat::Thumbnail(settings) };
        let got = client.media().get_media_content(&thumbnail, false).await.with_context(|| format!("{who}'s thumbnail"))?;
        ensure!(png_size(&got) == Some((32, 32)), "{who}'s thumbnail is not a 32×32 PNG: {:?}", png_size(&got));
    }
    println!("media {url_a} → {url_b}: ok");
    Ok(())
}
