//! Rule 5.4.1: invites that redeem a third-party invite.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

use super::Rejection;
use crate::event::{AuthEvent, Content, ThirdPartySigned};

pub(super) fn check(
    event: &AuthEvent,
    target: &str,
    signed: Option<&ThirdPartySigned>,
    invite_event: Option<&AuthEvent>,
) -> Result<(), Rejection> {
    let signed = signed.ok_or(Rejection("third_party_invite without signed"))?;
    let (Some(mxid), Some(_token)) = (&signed.mxid, &signed.token) else {
        return Err(Rejection("third_party_invite.signed lacks mxid or token"));
    };
    if &**mxid != target {
        return Err(Rejection("third_party_invite.signed.mxid is not the state_key"));
    }
    let invite_event = invite_event.ok_or(Rejection("no m.room.third_party_invite for the token"))?;
    if invite_event.sender != event.sender {
        return Err(Rejection("the sender did not send the m.room.third_party_invite"));
    }
    let Content::ThirdPartyInvite(keys) = &invite_event.content else {
        return Err(Rejection("no m.room.third_party_invite for the token"));
    };
    if signature_matches(signed, keys) {
        Ok(())
    } else {
        Err(Rejection("no signature in signed matches a public key of the invite"))
    }
}

/// Whether any signature in `signed.signatures` verifies, over the canonical JSON of `signed`
/// without `signatures`, with any of `public_keys`.
fn signature_matches(signed: &ThirdPartySigned, public_keys: &[Box<str>]) -> bool {
    let Some(Value::Object(signatures)) = signed.json.get("signatures") else { return false };
    let mut unsigned = signed.json.clone();
    unsigned.remove("signatures");
    unsigned.remove("unsigned");
    // serde_json's map keeps keys sorted and `to_string` writes no white space: canonical JSON
    // for the strings and integers a `signed` block holds.
    let message = Value::Object(unsigned).to_string();
    let keys: Vec<VerifyingKey> = public_keys
        .iter()
        .filter_map(|k| decode(k))
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .filter_map(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .collect();
    signatures
        .values()
        .filter_map(Value::as_object)
        .flat_map(|by_key| by_key.values())
        .filter_map(Value::as_str)
        .filter_map(decode)
        .filter_map(|sig| Signature::from_slice(&sig).ok())
        .any(|sig| keys.iter().any(|key| key.verify(message.as_bytes(), &sig).is_ok()))
}

fn decode(s: &str) -> Option<Vec<u8>> {
    [STANDARD_NO_PAD, STANDARD, URL_SAFE_NO_PAD, URL_SAFE].iter().find_map(|e| e.decode(s).ok())
}
