//! Steps 2 and 3: the signatures of every server that must sign the event (its sender's, and
//! for some events another's) against their keys as they were when it was sent, and the content
//! hash; an event whose hash does not match is kept redacted. The checks are `tandem_wire`'s;
//! the keys come from the federation layer ([`crate::network::Network::verify_keys`]).

use ruma::room_version_rules::RoomVersionRules;
use serde_json::Value;

use super::Pdu;
use super::budget::Budget;
use crate::server::Homeserver;

impl Homeserver {
    /// Checks a PDU's form, signatures and content hash, fetching the keys it needs. The PDU to
    /// keep (redacted if its content hash does not match), or why it is refused.
    pub async fn verify_pdu(&self, rules: &RoomVersionRules, pdu: &Value) -> Result<Pdu, String> {
        let format = tandem_wire::check_format(rules, pdu).map_err(|e| e.to_string())?;
        self.verify_format(rules, format).await
    }

    /// [`Homeserver::verify_pdu`] for a PDU whose form was checked.
    pub(crate) async fn verify_format(
        &self,
        rules: &RoomVersionRules,
        format: tandem_wire::Format,
    ) -> Result<Pdu, String> {
        let network = self.network().map_err(|e| e.to_string())?;
        let keys = network.verify_keys(format.signers.clone(), format.origin_server_ts).await;
        let event_id = format.event_id.clone();
        let json = tandem_wire::verify(rules, format, &keys).map_err(|e| e.to_string())?;
        Ok(Pdu { event_id, json })
    }

    /// Verifies the PDUs of a list another server sent, keeping those that pass; at most `max`
    /// of them are looked at, and no more than `budget` allows.
    pub(crate) async fn verify_list(
        &self,
        rules: &RoomVersionRules,
        list: Option<&Value>,
        max: usize,
        budget: &Budget,
    ) -> Vec<Pdu> {
        let items = list.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let allowed = budget.take_events(items.len().min(max));
        if allowed < items.len().min(max) {
            tracing::info!(listed = items.len(), allowed, "a fetched list is cut short by the budget");
        }
        let mut out = Vec::with_capacity(allowed);
        for pdu in &items[..allowed] {
            match self.verify_pdu(rules, pdu).await {
                Ok(pdu) => out.push(pdu),
                Err(e) => tracing::info!("dropping a fetched event: {e}"),
            }
        }
        out
    }
}
