//! The engine's [`Web`]: `GET`s of URLs outside federation (URL previews) through the same
//! client as everything else, so every hop is checked against the outbound IP blocklist; at
//! most [`MAX_REDIRECTS`] redirects followed, each checked again; bodies read up to the
//! engine's limit and no further.

use std::sync::Arc;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use tandem_core::network::{BoxFuture, Web, WebPage};
use tandem_core::{Error, ErrorKind, Homeserver};

use crate::client::{Client, read_bytes};
use crate::{FedError, FederationConfig};

/// Redirects followed from one URL (a link shortener, then http to https, then a login wall).
const MAX_REDIRECTS: usize = 5;

pub struct Outbound(Client);

/// Installs the web client on `hs`, whether or not the server federates.
pub fn install(hs: &Homeserver, config: &FederationConfig) -> Result<(), FedError> {
    hs.set_web(Arc::new(Outbound(Client::new(config)?)));
    Ok(())
}

fn failed(url: &str, why: impl std::fmt::Display) -> Error {
    tracing::info!(url, "web fetch failed: {why}");
    Error::new(ErrorKind::BadGateway, format!("Failed to fetch {url}"))
}

impl Web for Outbound {
    fn get(&self, url: String, max_bytes: usize) -> BoxFuture<'_, tandem_core::Result<WebPage>> {
        Box::pin(async move {
            let mut url = url;
            for _ in 0..=MAX_REDIRECTS {
                let mut response = self.0.get_url(&url).await.map_err(|e| failed(&url, e))?;
                let status = response.status();
                if status.is_redirection() {
                    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok());
                    let next = location
                        .and_then(|l| reqwest::Url::parse(&url).ok()?.join(l).ok())
                        .ok_or_else(|| failed(&url, "a redirect without a usable Location"))?;
                    url = next.to_string();
                    continue;
                }
                if !status.is_success() {
                    return Err(failed(&url, format!("answered {status}")));
                }
                let content_type =
                    response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
                if response.content_length().is_some_and(|n| n > max_bytes as u64) {
                    return Err(too_large(max_bytes));
                }
                let body = read_bytes(&url, &mut response, max_bytes).await.map_err(|e| failed(&url, e))?;
                let body = body.ok_or_else(|| too_large(max_bytes))?;
                return Ok(WebPage { url, content_type, body });
            }
            Err(failed(&url, "too many redirects"))
        })
    }
}

fn too_large(max_bytes: usize) -> Error {
    Error::new(ErrorKind::RemoteTooLarge, format!("The page is larger than {max_bytes} bytes"))
}
