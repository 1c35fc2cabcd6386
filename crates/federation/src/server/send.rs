//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs and EDUs from another
//! server, processed once (a retried transaction gets the same answer).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tandem_core::rooms::receive::Received;
use tandem_wire::{Transaction, WireError};

use crate::auth::Signed;
use crate::{FedError, Federation, blocking};

pub fn routes() -> Router<Arc<Federation>> {
    Router::new().route("/_matrix/federation/v1/send/{txn_id}", put(send))
}

async fn send(
    State(fed): State<Arc<Federation>>,
    Path(txn_id): Path<String>,
    Signed { origin, body }: Signed,
) -> Result<Json<Value>, FedError> {
    let Transaction { pdus, edus } = Transaction::from_body(&origin, body).map_err(|e| match e {
        WireError::WrongOrigin => FedError::forbidden(e.to_string()),
        e => FedError::bad_json(e.to_string()),
    })?;
    let lock = fed.origin_lock(&origin);
    let _turn = lock.lock().await;
    let (hs, o, t) = (fed.hs.clone(), origin.clone(), txn_id.clone());
    if let Some(done) = blocking(move || hs.federation_txn(&o, &t)).await? {
        return Ok(Json(done));
    }
    let mut results = Map::new();
    for pdu in pdus {
        let (event_id, outcome) = fed.handle_pdu(&origin, pdu).await;
        let entry = match outcome {
            Ok(Received::Accepted | Received::AlreadyKnown | Received::SoftFailed) => json!({}),
            Ok(Received::Rejected(why)) => json!({ "error": format!("rejected: {why}") }),
            Err(e) => json!({ "error": e }),
        };
        if let Some(id) = event_id {
            results.insert(id, entry);
        } else if let Some(e) = entry.get("error") {
            tracing::info!(%origin, "dropping a PDU: {e}");
        }
    }
    for edu in edus {
        handle_edu(&fed, &origin, &edu).await;
    }
    let answer = json!({ "pdus": results });
    let (hs, o, a) = (fed.hs.clone(), origin.clone(), answer.clone());
    blocking(move || hs.store_federation_txn(&o, &txn_id, &a)).await?;
    Ok(Json(answer))
}

/// EDUs: typing and receipts of the origin's users in rooms they are in, presence, device list
/// and signing key updates, to-device messages. Unknown types are dropped.
async fn handle_edu(fed: &Arc<Federation>, origin: &str, edu: &Value) {
    let content = edu.get("content").cloned().unwrap_or(Value::Null);
    let own_user = |u: &str| u.split_once(':').is_some_and(|(_, s)| s == origin);
    match edu.get("edu_type").and_then(Value::as_str) {
        Some("m.typing") => {
            let (Some(room), Some(user)) =
                (content.get("room_id").and_then(Value::as_str), content.get("user_id").and_then(Value::as_str))
            else {
                return;
            };
            if !own_user(user) || fed.check_acl(room, origin).await.is_err() {
                return;
            }
            let typing = content.get("typing").and_then(Value::as_bool).unwrap_or(false);
            let (hs, room, user) = (fed.hs.clone(), room.to_owned(), user.to_owned());
            let _ = blocking(move || {
                if hs.current_membership(&room, &user)?.as_deref() == Some("join") {
                    hs.set_typing(&room, &user, typing.then_some(Duration::from_secs(30)));
                }
                Ok(())
            })
            .await;
        }
        Some("m.receipt") => {
            for (room, by_type) in content.as_object().into_iter().flatten() {
                let Some(reads) = by_type.get("m.read").and_then(Value::as_object) else { continue };
                if fed.check_acl(room, origin).await.is_err() {
                    continue;
                }
                for (user, receipt) in reads {
                    if !own_user(user) {
                        continue;
                    }
                    let Some(event) = receipt
                        .get("event_ids")
                        .and_then(Value::as_array)
                        .and_then(|a| a.last())
                        .and_then(Value::as_str)
                    else {
                        continue;
                    };
                    let thread = receipt.pointer("/data/thread_id").and_then(Value::as_str).map(str::to_owned);
                    let (hs, room, user, event) = (fed.hs.clone(), room.clone(), user.clone(), event.to_owned());
                    let _ = blocking(move || hs.set_receipt(&user, &room, "m.read", &event, thread.as_deref())).await;
                }
            }
        }
        Some("m.presence") => {
            let (hs, o) = (fed.hs.clone(), origin.to_owned());
            let _ = blocking(move || hs.receive_presence(&o, &content)).await;
        }
        Some("m.device_list_update") => fed.device_list_update(origin, &content).await,
        Some("m.signing_key_update") => fed.signing_key_update(origin, &content).await,
        Some("m.direct_to_device") => {
            let (hs, o) = (fed.hs.clone(), origin.to_owned());
            if let Err(e) = blocking(move || hs.receive_to_device(&o, &content)).await {
                tracing::info!(%origin, "to-device message refused: {e}");
            }
        }
        _ => {}
    }
}
