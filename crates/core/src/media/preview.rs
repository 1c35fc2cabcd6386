//! URL previews (`/preview_url`): the page at a URL fetched through the [`Web`] client (every
//! hop through the outbound IP blocklist, so a user cannot make the server read its own
//! network), at most [`MAX_PAGE_BYTES`] in [`FETCH_TIMEOUT`]; its Open Graph tags read with an
//! HTML parser (`<title>` and the `description` meta tag where Open Graph has none, as
//! Synapse); its `og:image` fetched the same way and kept as media of the asking user, so
//! clients load it as any other `mxc://`. A URL that is itself an image is previewed as that
//! image. Previews are kept an hour, in memory.
//!
//! [`Web`]: crate::network::Web

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::UploadInfo;
use crate::error::{Error, ErrorKind, Result};
use crate::network::WebPage;
use crate::server::{Homeserver, lock};

/// How many previews are kept.
pub const CACHED_PREVIEWS: NonZeroUsize = NonZeroUsize::new(1000).expect("not zero");
/// How long a preview is kept (Synapse: an hour).
const KEPT_MS: u64 = 3600 * 1000;
/// The largest page or image read (Synapse's `max_spider_size`).
pub const MAX_PAGE_BYTES: usize = 10 * 1024 * 1024;
/// The longest a preview's fetches may take together.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest description kept (Synapse's).
const MAX_DESCRIPTION_CHARS: usize = 500;
/// The longest other tag value kept.
const MAX_VALUE_CHARS: usize = 1000;

fn essence(content_type: Option<&str>) -> String {
    content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

impl Homeserver {
    /// The preview of `url` for `user_id`: its Open Graph object.
    pub async fn preview_url(self: &Arc<Self>, user_id: &str, url: &str) -> Result<Value> {
        let parsed = url::Url::parse(url).map_err(|e| Error::new(ErrorKind::Unknown, format!("Invalid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::new(ErrorKind::Unknown, "Only http(s) URLs are previewed"));
        }
        let now = Homeserver::now_ms();
        if let Some((made, og)) = lock(&self.previews).get(url).cloned()
            && now < made + KEPT_MS
        {
            return Ok((*og).clone());
        }
        let og = tokio::time::timeout(FETCH_TIMEOUT, self.make_preview(user_id, parsed.as_str()))
            .await
            .map_err(|_| Error::new(ErrorKind::BadGateway, "The page took too long to fetch"))??;
        lock(&self.previews).put(url.to_owned(), (now, Arc::new(og.clone())));
        Ok(og)
    }

    async fn make_preview(self: &Arc<Self>, user_id: &str, url: &str) -> Result<Value> {
        let web = self.web()?;
        let page = web.get(url.to_owned(), MAX_PAGE_BYTES).await?;
        let kind = essence(page.content_type.as_deref());
        if kind.starts_with("image/") {
            return self.keep_image(user_id, page).await.map(Value::Object);
        }
        if kind != "text/html" && kind != "application/xhtml+xml" {
            return Ok(json!({}));
        }
        let mut og = open_graph(&String::from_utf8_lossy(&page.body), &page.url);
        if let Some(image) = og.remove("og:image").and_then(|v| v.as_str().map(str::to_owned)) {
            // A page whose image cannot be had is still previewed, without it.
            match web.get(image, MAX_PAGE_BYTES).await {
                Ok(image) if essence(image.content_type.as_deref()).starts_with("image/") => {
                    og.extend(self.keep_image(user_id, image).await?);
                }
                Ok(_) => {}
                Err(e) => tracing::info!(url, "preview image not fetched: {}", e.message),
            }
        }
        Ok(Value::Object(og))
    }

    /// Keeps a fetched image as media of `user_id`: its `og:image` tags.
    async fn keep_image(self: &Arc<Self>, user_id: &str, image: WebPage) -> Result<Map<String, Value>> {
        let user = user_id.to_owned();
        self.blocking(move |hs| {
            let upload = hs.new_upload()?;
            std::fs::write(&upload.part, &image.body).map_err(super::io)?;
            let filename = url::Url::parse(&image.url)
                .ok()
                .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
                .filter(|n| !n.is_empty());
            let info = UploadInfo {
                uploader: &user,
                content_type: image.content_type.as_deref(),
                filename: filename.as_deref(),
                quota: 0,
            };
            let mxc = hs.commit_upload(upload, info)?;
            let mut og = Map::new();
            og.insert("og:image".into(), json!(mxc));
            og.insert("og:image:type".into(), json!(essence(image.content_type.as_deref())));
            og.insert("matrix:image:size".into(), json!(image.body.len()));
            let reader = image::ImageReader::new(std::io::Cursor::new(&image.body[..])).with_guessed_format();
            if let Ok((w, h)) = reader.map_err(|_| ()).and_then(|r| r.into_dimensions().map_err(|_| ())) {
                og.insert("og:image:width".into(), json!(w));
                og.insert("og:image:height".into(), json!(h));
            }
            Ok(og)
        })
        .await
    }
}

fn truncated(value: &str, max: usize) -> String {
    let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
    match value.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value,
    }
}

/// The Open Graph tags of a page (`og:*` meta tags, the first of each), with `og:title` from
/// `<title>` and `og:description` from the `description` meta tag where the page has none,
/// and `og:image` made absolute against the page's URL.
fn open_graph(html: &str, page_url: &str) -> Map<String, Value> {
    let document = scraper::Html::parse_document(html);
    let select = |s: &str| scraper::Selector::parse(s).expect("a valid selector");
    let mut og = Map::new();
    let mut description = None;
    for meta in document.select(&select("meta")) {
        let (Some(key), Some(content)) = (meta.attr("property").or(meta.attr("name")), meta.attr("content")) else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        if key.starts_with("og:") && !og.contains_key(&key) {
            let max = if key == "og:description" { MAX_DESCRIPTION_CHARS } else { MAX_VALUE_CHARS };
            og.insert(key, json!(truncated(content, max)));
        } else if key == "description" && description.is_none() {
            description = Some(truncated(content, MAX_DESCRIPTION_CHARS));
        }
    }
    if !og.contains_key("og:title")
        && let Some(title) = document.select(&select("title")).next()
    {
        let title = truncated(&title.text().collect::<String>(), MAX_VALUE_CHARS);
        if !title.is_empty() {
            og.insert("og:title".into(), json!(title));
        }
    }
    if let Some(d) = description.filter(|_| !og.contains_key("og:description")) {
        og.insert("og:description".into(), json!(d));
    }
    if let Some(image) = og.get("og:image").and_then(Value::as_str) {
        let absolute = url::Url::parse(page_url).and_then(|base| base.join(image));
        match absolute {
            Ok(u) if matches!(u.scheme(), "http" | "https") => og.insert("og:image".into(), json!(u.as_str())),
            _ => og.remove("og:image"),
        };
    }
    og
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_graph_tags_with_synapses_fallbacks() {
        let page = r#"<html><head><title>  The page
            title </title><meta name="description" content="Plain description">
            <meta property="og:image" content="/img/cat.png"><meta property="og:image" content="/second.png">
            </head><body><h1>x</h1></body></html>"#;
        let og = open_graph(page, "https://example.org/news/item?id=1");
        assert_eq!(og["og:title"], "The page title");
        assert_eq!(og["og:description"], "Plain description");
        assert_eq!(og["og:image"], "https://example.org/img/cat.png");

        let page = r#"<meta property="og:title" content="OG title"><title>Other</title>
            <meta property="og:description" content="OG description"><meta property="og:image" content="javascript:alert(1)">"#;
        let og = open_graph(page, "https://example.org/");
        assert_eq!(og["og:title"], "OG title");
        assert_eq!(og["og:description"], "OG description");
        assert!(!og.contains_key("og:image"), "{og:?}");

        let long = format!(r#"<meta property="og:description" content="{}">"#, "word ".repeat(400));
        let og = open_graph(&long, "https://example.org/");
        assert_eq!(og["og:description"].as_str().unwrap().chars().count(), MAX_DESCRIPTION_CHARS + 1);
    }
}
