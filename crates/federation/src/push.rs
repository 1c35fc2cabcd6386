//! The push sender: delivers the engine's push queue (`tandem_core::push::queue`) to push
//! gateways as the Push Gateway API specifies. One task routes new events to the pushers they
//! notify; one worker per pusher sends its queue in order, one request at a time, retrying
//! with exponential backoff. A pushkey the gateway rejects, or a day of failures, removes the
//! pusher (the engine decides that). The queue is persisted: what was owed before a restart
//! is sent after it, and an item leaves the queue only once the gateway took it. It runs
//! whether or not the server federates, with the outbound client and IP blocklist of
//! federation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tandem_core::push::pushers::PusherId;
use tandem_core::push::queue::Delivery;
use tokio::sync::Notify;
use tracing::Instrument;

use tandem_core::Homeserver;

use crate::client::Client;
use crate::{FedError, FederationConfig, blocking};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(3600);

struct PushSender {
    hs: Arc<Homeserver>,
    client: Client,
    workers: Mutex<HashMap<PusherId, Arc<Notify>>>,
}

/// Starts the push sender (it needs a running Tokio runtime).
pub fn start(hs: Arc<Homeserver>, config: &FederationConfig) -> Result<(), FedError> {
    let client = Client::new(config)?;
    tokio::spawn(run(Arc::new(PushSender { hs, client, workers: Mutex::default() })));
    Ok(())
}

impl PushSender {
    fn wake_pusher(self: &Arc<Self>, id: PusherId) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = workers.get(&id) {
            w.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        workers.insert(id.clone(), wake.clone());
        let span = tracing::info_span!("pusher", user = %id.user_id, app_id = %id.app_id);
        tokio::spawn(deliver(self.clone(), id, wake).instrument(span));
    }
}

/// Routes pending events to pushers and wakes the pushers that are owed something.
async fn run(fed: Arc<PushSender>) {
    let hs = fed.hs.clone();
    match blocking(move || hs.queued_pushers()).await {
        Ok(ids) => ids.into_iter().for_each(|id| fed.wake_pusher(id)),
        Err(e) => tracing::error!("reading the push queue: {e}"),
    }
    loop {
        let signal = fed.hs.push_signal().notified();
        let hs = fed.hs.clone();
        match blocking(move || hs.route_pushes()).await {
            Ok((owners, more)) => {
                tracing::debug!(pushers = owners.len(), more, "routed pending events");
                owners.into_iter().chain(fed.hs.take_push_owners()).for_each(|id| fed.wake_pusher(id));
                if more {
                    continue;
                }
            }
            Err(e) => {
                tracing::error!("routing events to pushers: {e}");
                tokio::time::sleep(FIRST_RETRY).await;
            }
        }
        signal.await;
    }
}

async fn deliver(fed: Arc<PushSender>, id: PusherId, wake: Arc<Notify>) {
    let mut retry = FIRST_RETRY;
    loop {
        let notified = wake.notified();
        let (hs, i) = (fed.hs.clone(), id.clone());
        let push = match blocking(move || hs.next_push(&i)).await {
            Ok(Some(push)) => push,
            Ok(None) => {
                notified.await;
                continue;
            }
            Err(e) => {
                tracing::error!("reading the push queue: {e}");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        tracing::debug!(url = %push.url, "pushing");
        let outcome = match fed.client.post_url(&push.url, &push.body).await {
            Ok(answer) => {
                if rejects(&answer, &id.pushkey) {
                    Delivery::Rejected
                } else {
                    Delivery::Sent
                }
            }
            Err(e) => {
                tracing::info!("push not delivered, retrying in {retry:?}: {e}");
                Delivery::Failed
            }
        };
        let (hs, i, p) = (fed.hs.clone(), id.clone(), push.clone());
        match blocking(move || hs.push_done(&i, &p, outcome)).await {
            Ok(true) => {}
            Ok(false) => {
                fed.workers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return;
            }
            Err(e) => tracing::error!("recording a push: {e}"),
        }
        if outcome == Delivery::Failed {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        } else {
            retry = FIRST_RETRY;
        }
    }
}

/// Whether an answer's `rejected` list names `pushkey`.
fn rejects(answer: &Value, pushkey: &str) -> bool {
    answer["rejected"].as_array().is_some_and(|r| r.iter().any(|k| k == pushkey))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A gateway's answer removes only the pusher whose pushkey it names: a hostile gateway
    /// cannot have other pushers removed.
    #[test]
    fn only_our_own_pushkey_is_rejected() {
        assert!(rejects(&json!({ "rejected": ["ours"] }), "ours"));
        assert!(!rejects(&json!({ "rejected": ["another"] }), "ours"));
        assert!(!rejects(&json!({ "rejected": "ours" }), "ours"));
        assert!(!rejects(&json!({}), "ours"));
    }

    /// A pusher's URL is another server's input: an address of the IP blocklist is never
    /// connected to, and only http(s) is spoken.
    #[tokio::test]
    async fn gateways_on_blocked_addresses_are_not_called() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(&FederationConfig::default()).unwrap();
        for url in [
            "http://127.0.0.1:9/_matrix/push/v1/notify",
            "https://[::1]:9/_matrix/push/v1/notify",
            "http://10.1.2.3/_matrix/push/v1/notify",
        ] {
            let err = client.post_url(url, &json!({})).await.unwrap_err();
            assert!(err.to_string().contains("blocklist"), "{url}: {err}");
        }
        let err = client.post_url("file:///etc/passwd", &json!({})).await.unwrap_err();
        assert!(err.to_string().contains("http"), "{err}");
    }
}
