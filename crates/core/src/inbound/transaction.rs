//! A transaction from another server (`PUT /send/{txnId}`): processed once, a retried one
//! answered as the first time; one per origin at a time; its PDUs grouped by room, the rooms
//! taken side by side and each room's PDUs in the order sent; then its EDUs. Each PDU has a
//! budget of its own, drawn on together with the transaction's.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::Received;
use super::budget::Budget;
use crate::error::Result;
use crate::server::Homeserver;

/// How many rooms of one transaction are taken at once.
const ROOMS_AT_ONCE: usize = 4;

impl Homeserver {
    /// Takes a transaction `origin` sent and gives the answer it is owed: for each PDU that got
    /// as far as having an event id, `{}` or `{"error": …}`.
    pub async fn receive_transaction(
        self: &Arc<Self>,
        origin: &str,
        txn_id: &str,
        pdus: Vec<Value>,
        edus: Vec<Value>,
    ) -> Result<Value> {
        let lock = self.inbound.origins.get(origin);
        let _turn = lock.lock().await;
        let (o, t) = (origin.to_owned(), txn_id.to_owned());
        if let Some(done) = self.blocking(move |hs| hs.federation_txn(&o, &t)).await? {
            return Ok(done);
        }
        let budget = Budget::transaction();
        let mut results = Map::new();
        for (event_id, outcome) in self.receive_pdus(origin, pdus, &budget).await {
            let entry = match outcome {
                Ok(Received::Accepted | Received::AlreadyKnown | Received::SoftFailed) => json!({}),
                Ok(Received::Rejected(why)) => json!({ "error": format!("rejected: {why}") }),
                Err(e) => json!({ "error": e.to_string() }),
            };
            match event_id {
                Some(id) => {
                    results.insert(id, entry);
                }
                None => tracing::info!(%origin, "dropping a PDU: {}", entry["error"]),
            }
        }
        for edu in edus {
            self.receive_edu(origin, &edu).await;
        }
        let answer = json!({ "pdus": results });
        let (o, t, a) = (origin.to_owned(), txn_id.to_owned(), answer.clone());
        self.blocking(move |hs| hs.store_federation_txn(&o, &t, &a)).await?;
        Ok(answer)
    }

    /// Every PDU's event id (if it got that far) and outcome, rooms side by side.
    async fn receive_pdus(
        self: &Arc<Self>,
        origin: &str,
        pdus: Vec<Value>,
        budget: &Arc<Budget>,
    ) -> Vec<(Option<String>, Result<Received>)> {
        let mut rooms: Vec<Vec<Value>> = Vec::new();
        let mut room_of: HashMap<String, usize> = HashMap::new();
        for pdu in pdus {
            let room = pdu.get("room_id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let i = *room_of.entry(room).or_insert_with(|| {
                rooms.push(Vec::new());
                rooms.len() - 1
            });
            rooms[i].push(pdu);
        }
        let turns = Arc::new(tokio::sync::Semaphore::new(ROOMS_AT_ONCE));
        let mut tasks = tokio::task::JoinSet::new();
        for room in rooms {
            let (hs, origin, budget, turns) = (self.clone(), origin.to_owned(), budget.clone(), turns.clone());
            let room_id = room[0].get("room_id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let span = tracing::info_span!("room", %room_id);
            tasks.spawn(
                async move {
                    let _turn = turns.acquire_owned().await;
                    let mut out = Vec::with_capacity(room.len());
                    for pdu in room {
                        out.push(hs.receive_from(&origin, pdu, &Budget::pdu(&budget)).await);
                    }
                    out
                }
                .instrument(span),
            );
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(room) => out.extend(room),
                Err(e) => tracing::error!("a room's PDUs could not be taken: {e}"),
            }
        }
        out
    }
}
