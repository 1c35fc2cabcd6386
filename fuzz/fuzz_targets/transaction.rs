//! Any transaction body: the envelope check, then every PDU's form check under each room
//! version's rules, then the signature and content hash check — once with the PDU as sent
//! (no valid signature: it must be refused, not panic) and once after signing it with a key
//! the check is given (then it must pass: a PDU that passes the form check and is properly
//! signed is never refused by the signature check).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ruma::room_version_rules::RoomVersionRules;
use ruma::signatures::{Ed25519KeyPair, PublicKeyMap, PublicKeySet};

const VERSIONS: [&str; 5] = ["1", "3", "6", "11", "12"];

fn key() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "fuzz".into()).expect("key"))
}

fn rules(version: &str) -> RoomVersionRules {
    ruma::RoomVersionId::try_from(version).expect("version").rules().expect("rules")
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(txn) = tandem_wire::Transaction::from_body("origin.example", body) else { return };
    for pdu in &txn.pdus {
        for version in VERSIONS {
            let rules = rules(version);
            let Ok(format) = tandem_wire::check_format(&rules, pdu) else { continue };
            let signers: Vec<String> = format.signers.iter().map(|(s, _)| s.clone()).collect();
            let mut object = format.object.clone();
            assert!(tandem_wire::verify(&rules, format, &PublicKeyMap::new()).is_err());
            // Signed by every required server with our key: accepted.
            object.remove("signatures");
            object.remove("hashes");
            let mut keys = PublicKeyMap::new();
            for server in &signers {
                if ruma::signatures::hash_and_sign_event(server, key(), &mut object, &rules.redaction).is_err() {
                    return;
                }
                let mut set = PublicKeySet::new();
                set.insert("ed25519:fuzz".into(), ruma::serde::Base64::new(key().public_key().to_vec()));
                keys.insert(server.clone(), set);
            }
            let signed = serde_json::to_value(&object).expect("json");
            let Ok(format) = tandem_wire::check_format(&rules, &signed) else { continue };
            if let Err(e) = tandem_wire::verify(&rules, format, &keys) {
                panic!("a signed PDU was refused: {e}\n{signed}");
            }
        }
    }
});
