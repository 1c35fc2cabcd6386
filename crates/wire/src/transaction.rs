//! The envelope of `PUT /_matrix/federation/v1/send/{txnId}`: whose it is and how much it
//! carries. Each PDU in it is checked on its own ([`crate::pdu`]); a bad PDU does not fail
//! the transaction, a bad envelope does.

use serde_json::Value;

use crate::{MAX_EDUS, MAX_PDUS, WireError};

/// A transaction's PDUs and EDUs, as sent.
#[derive(Debug, Default, PartialEq)]
pub struct Transaction {
    pub pdus: Vec<Value>,
    pub edus: Vec<Value>,
}

impl Transaction {
    /// The transaction in `body`, sent by the authenticated `origin`: its `origin` field (if
    /// any) must name that server, and it may carry at most [`MAX_PDUS`] PDUs and
    /// [`MAX_EDUS`] EDUs. Missing lists are empty ones (Synapse's reading).
    pub fn from_body(origin: &str, body: Value) -> Result<Transaction, WireError> {
        let Value::Object(mut body) = body else {
            return Err(WireError::Format("the transaction is not a JSON object".into()));
        };
        match body.get("origin") {
            None => {}
            Some(Value::String(claimed)) if claimed == origin => {}
            Some(Value::String(_)) => return Err(WireError::WrongOrigin),
            Some(_) => return Err(WireError::Format("the transaction's origin is not a string".into())),
        }
        let mut list = |field: &str, max: usize| -> Result<Vec<Value>, WireError> {
            match body.remove(field) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) if items.len() <= max => Ok(items),
                Some(Value::Array(items)) => {
                    Err(WireError::Format(format!("{} {field} in one transaction (at most {max})", items.len())))
                }
                Some(_) => Err(WireError::Format(format!("{field} is not a list"))),
            }
        };
        let pdus = list("pdus", MAX_PDUS)?;
        let edus = list("edus", MAX_EDUS)?;
        Ok(Transaction { pdus, edus })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelopes() {
        let ok = Transaction::from_body("a.org", json!({ "origin": "a.org", "pdus": [{}], "edus": [] })).unwrap();
        assert_eq!(ok.pdus.len(), 1);
        assert_eq!(Transaction::from_body("a.org", json!({})).unwrap(), Transaction::default());
        assert_eq!(Transaction::from_body("a.org", json!({ "origin": "b.org" })), Err(WireError::WrongOrigin));
        assert!(Transaction::from_body("a.org", json!({ "pdus": vec![json!({}); 51] })).is_err());
        assert!(Transaction::from_body("a.org", json!({ "edus": vec![json!({}); 101] })).is_err());
        assert!(Transaction::from_body("a.org", json!({ "pdus": {} })).is_err());
        assert!(Transaction::from_body("a.org", json!([])).is_err());
    }
}
