//! Message search.

use serde_json::json;
use tandem_conformance::server;

#[test]
fn finds_messages_in_joined_rooms_only() {
    let s = server();
    let alice = s.register("searchA");
    let bob = s.register("searchB");
    let word = format!("zebra{}", rand_word());
    let shared = alice.create_room(json!({ "preset": "public_chat" }));
    bob.join(&shared);
    let private = alice.create_room(json!({ "preset": "private_chat" }));
    let hit = alice.send_text(&shared, &format!("the {word} crossed the road"));
    alice.send_text(&shared, "nothing to see");
    alice.send_text(&private, &format!("secret {word}"));
    let body = json!({ "search_categories": { "room_events": { "search_term": word, "event_context": { "before_limit": 1, "after_limit": 1 } } } });
    let found = tandem_conformance::eventually(std::time::Duration::from_secs(15), "the search hit", || {
        let r = bob.post("/_matrix/client/v3/search", body.clone()).expect(200);
        let results = r["search_categories"]["room_events"]["results"].as_array().cloned().unwrap_or_default();
        (!results.is_empty()).then_some(r)
    });
    let results = found["search_categories"]["room_events"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{found}");
    assert_eq!(results[0]["result"]["event_id"], hit.as_str());
    assert!(results[0]["context"]["events_after"].is_array(), "{found}");
    // Alice sees both rooms' hits.
    let r = alice.post("/_matrix/client/v3/search", body).expect(200);
    assert_eq!(r["search_categories"]["room_events"]["results"].as_array().unwrap().len(), 2, "{r}");
}

fn rand_word() -> String {
    tandem_conformance::client::unique("").chars().map(|c| (b'a' + (c as u8 - b'0')) as char).collect()
}
