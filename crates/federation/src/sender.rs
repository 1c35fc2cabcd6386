//! The sender: one worker per destination drains that server's persisted queue (the engine's
//! `outbox`) into transactions of at most 50 PDUs and 100 EDUs, one in flight at a time, in
//! order. A failed transaction is retried with exponential backoff (only one the peer calls
//! malformed, 400 or 413, is given up), cut short when the peer
//! talks to us again. The queue survives restarts: at start every destination with something
//! queued gets a worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::{Federation, blocking, now_ms};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Sender {
    workers: Mutex<HashMap<String, Arc<Worker>>>,
}

#[derive(Default)]
struct Worker {
    /// Something new was queued.
    data: Notify,
    /// The peer sent us a request: it is up, retry now.
    alive: Notify,
}

impl Federation {
    /// A request from `server` arrived: if we are backing off from it, try again now.
    pub(crate) fn peer_alive(&self, server: &str) {
        if let Some(w) = self.sender.workers.lock().unwrap_or_else(|e| e.into_inner()).get(server) {
            w.alive.notify_one();
        }
    }

    fn wake_worker(self: &Arc<Self>, destination: String) {
        let mut workers = self.sender.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = workers.get(&destination) {
            w.data.notify_one();
            return;
        }
        let worker = Arc::new(Worker::default());
        workers.insert(destination.clone(), worker.clone());
        let span = tracing::info_span!("sender", %destination);
        tokio::spawn(drain(self.clone(), destination, worker).instrument(span));
    }
}

/// Starts workers for what was queued before a restart, then for whatever gets queued.
pub async fn run(fed: Arc<Federation>) {
    let hs = fed.hs.clone();
    match blocking(move || hs.outbox_destinations(true)).await {
        Ok(destinations) => destinations.into_iter().for_each(|d| fed.wake_worker(d)),
        Err(e) => tracing::error!("reading the federation queue: {e}"),
    }
    loop {
        fed.hs.outbox_changed().await;
        let hs = fed.hs.clone();
        if let Ok(destinations) = blocking(move || hs.outbox_destinations(false)).await {
            destinations.into_iter().for_each(|d| fed.wake_worker(d));
        }
    }
}

async fn drain(fed: Arc<Federation>, destination: String, worker: Arc<Worker>) {
    let mut retry = FIRST_RETRY;
    loop {
        let (hs, d) = (fed.hs.clone(), destination.clone());
        let batch = match blocking(move || hs.outbox_batch(&d)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("reading the queue: {e}");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        if batch.last == 0 {
            worker.data.notified().await;
            continue;
        }
        let txn = json!({
            "origin": fed.server_name(),
            "origin_server_ts": now_ms(),
            "pdus": batch.pdus,
            "edus": batch.edus,
        });
        let path = format!("/_matrix/federation/v1/send/{}", batch.last);
        let result = fed.client.request(&fed.hs, Method::PUT, &destination, &path, Some(&txn)).await;
        let delivered = match &result {
            Ok(answer) => {
                log_pdu_errors(answer);
                true
            }
            // The peer read it and refused it as malformed or too large: the same transaction
            // would be refused again, and retrying would block its queue forever. Any other
            // refusal (401 while our keys are being fetched, 403, 429, ...) may pass later, and
            // dropping it would lose to-device room keys and device list updates for good.
            Err(crate::FedError::Remote { status: Some(s @ (400 | 413)), message, .. }) => {
                tracing::warn!(status = s, "transaction {} refused: {message}", batch.last);
                true
            }
            Err(e) => {
                tracing::info!("transaction {} not delivered, retrying in {retry:?}: {e}", batch.last);
                false
            }
        };
        if delivered {
            retry = FIRST_RETRY;
            let (hs, d, last) = (fed.hs.clone(), destination.clone(), batch.last);
            if let Err(e) = blocking(move || hs.outbox_ack(&d, last)).await {
                tracing::error!("acknowledging the queue: {e}");
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = worker.alive.notified() => {}
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

fn log_pdu_errors(answer: &Value) {
    for (id, result) in answer.get("pdus").and_then(Value::as_object).into_iter().flatten() {
        if let Some(error) = result.get("error") {
            tracing::info!(event_id = %id, "the peer did not accept the event: {error}");
        }
    }
}
