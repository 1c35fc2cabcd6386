//! Push rules: the predefined set, a user's own rules, and their effect on unread counts.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_conformance::{enc, server};

#[test]
fn predefined_rules_and_user_rules() {
    let s = server();
    let u = s.register("push");
    let all = u.get("/_matrix/client/v3/pushrules/").expect(200);
    let ids = |kind: &str| -> Vec<String> {
        all["global"][kind]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["rule_id"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(ids("override").contains(&".m.rule.master".to_owned()), "{all}");
    assert!(ids("underride").contains(&".m.rule.message".to_owned()), "{all}");
    let initial = u.sync(None, "");
    let events = initial["account_data"]["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["type"] == "m.push_rules"), "{}", initial["account_data"]);

    let path = "/_matrix/client/v3/pushrules/global/content/cats";
    u.put(path, json!({ "pattern": "cat*", "actions": ["notify"] })).expect(200);
    let rule = u.get(path).expect(200);
    assert_eq!(rule["pattern"], "cat*");
    assert_eq!(rule["enabled"], true);
    u.put(&format!("{path}/enabled"), json!({ "enabled": false })).expect(200);
    assert_eq!(u.get(&format!("{path}/enabled")).expect(200)["enabled"], false);
    u.put(&format!("{path}/actions"), json!({ "actions": [] })).expect(200);
    assert_eq!(u.get(&format!("{path}/actions")).expect(200)["actions"], json!([]));
    u.delete(path, None).expect(200);
    u.get(path).expect_err(404, "M_NOT_FOUND");
    let r = u.put("/_matrix/client/v3/pushrules/global/override/.m.rule.mine", json!({ "actions": [] }));
    assert_eq!(r.status, 400, "{:?}", r.body);
    // Predefined rules can be switched off.
    u.put("/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled", json!({ "enabled": true }))
        .expect(200);
    let master = u.get("/_matrix/client/v3/pushrules/global/override/.m.rule.master").expect(200);
    assert_eq!(master["enabled"], true);
}

#[test]
fn a_muted_room_does_not_count() {
    let s = server();
    let alice = s.register("muteA");
    let bob = s.register("muteB");
    let loud = alice.create_room(json!({ "preset": "public_chat" }));
    let quiet = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&loud);
    bob.join(&quiet);
    // What Element does to mute a room: an override rule on its id with no actions.
    let rule = json!({ "conditions": [{ "kind": "event_match", "key": "room_id", "pattern": quiet }], "actions": [] });
    bob.put(&format!("/_matrix/client/v3/pushrules/global/override/{}", enc(&quiet)), rule).expect(200);
    let since = bob.sync(None, "")["next_batch"].as_str().unwrap().to_owned();
    alice.send_text(&quiet, "shh");
    alice.send_text(&loud, "ping");
    let counts = |r: &Value, room: &str| -> Option<u64> {
        r["rooms"]["join"].get(room)?["unread_notifications"]["notification_count"].as_u64()
    };
    let mut loud_count = None;
    let mut quiet_count = None;
    bob.sync_until(Some(&since), Duration::from_secs(15), |r| {
        loud_count = counts(r, &loud).or(loud_count);
        quiet_count = counts(r, &quiet).or(quiet_count);
        (loud_count == Some(1) && quiet_count.is_some()).then_some(())
    });
    assert_eq!(quiet_count, Some(0));
}
