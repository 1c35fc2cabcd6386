//! Spaces: `/hierarchy` walks a space's `m.space.child` events breadth first.

use serde_json::{Value, json};
use tandem_conformance::{User, enc, server};

fn hierarchy(u: &User<'_>, space: &str, query: &str) -> tandem_conformance::http::Response {
    u.get(&format!("/_matrix/client/v1/rooms/{}/hierarchy?{query}", enc(space)))
}

fn ids(body: &Value) -> Vec<String> {
    body["rooms"].as_array().unwrap().iter().map(|r| r["room_id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_space_hierarchy_lists_what_the_user_may_see() {
    let s = server();
    let admin = s.register("space_admin");
    let reader = s.register("space_reader");
    let server_name = admin.server_name().to_owned();
    let space = admin.create_room(json!({
        "preset": "public_chat", "name": "the space", "creation_content": { "type": "m.space" },
    }));
    let public = admin.create_room(json!({ "preset": "public_chat", "name": "public child" }));
    let private = admin.create_room(json!({ "preset": "private_chat", "name": "private child" }));
    let sub = admin.create_room(json!({
        "preset": "public_chat", "name": "subspace", "creation_content": { "type": "m.space" },
    }));
    let nested = admin.create_room(json!({ "preset": "public_chat", "name": "grandchild" }));
    let orphan = admin.create_room(json!({ "preset": "public_chat", "name": "child of a plain room" }));
    let child = |parent: &str, room: &str, suggested: bool| {
        admin
            .send_state(parent, "m.space.child", room, json!({ "via": [server_name], "suggested": suggested }))
            .expect(200);
    };
    child(&space, &public, true);
    child(&space, &private, false);
    child(&space, &sub, false);
    child(&sub, &nested, false);
    // Only spaces have children.
    child(&public, &orphan, false);
    // A child event without `via` does not count.
    admin.send_state(&space, "m.space.child", "!gone:example.org", json!({})).expect(200);

    let all = hierarchy(&reader, &space, "").expect(200);
    let found = ids(&all);
    assert_eq!(found[0], space, "the space itself comes first: {all}");
    assert!(found.contains(&public) && found.contains(&sub) && found.contains(&nested), "{all}");
    assert!(!found.contains(&private), "a private room the reader is not in: {all}");
    assert!(!found.contains(&orphan), "a child of a room that is no space: {all}");
    let root = &all["rooms"][0];
    assert_eq!(root["room_type"], "m.space");
    assert_eq!(root["name"], "the space");
    assert_eq!(root["children_state"].as_array().unwrap().len(), 3, "{root}");
    assert!(root["children_state"][0]["origin_server_ts"].is_u64());

    // The admin is in the private room and sees it.
    assert!(ids(&hierarchy(&admin, &space, "").expect(200)).contains(&private));
    // Depth and suggested-only limits, and paging.
    assert!(!ids(&hierarchy(&reader, &space, "max_depth=1").expect(200)).contains(&nested));
    assert_eq!(ids(&hierarchy(&admin, &space, "max_depth=0").expect(200)), vec![space.clone()]);
    let suggested = ids(&hierarchy(&admin, &space, "suggested_only=true").expect(200));
    assert!(suggested.contains(&public) && !suggested.contains(&private), "{suggested:?}");
    let first = hierarchy(&reader, &space, "limit=1").expect(200);
    assert_eq!(ids(&first), vec![space.clone()]);
    let next = first["next_batch"].as_str().expect("next_batch").to_owned();
    let second = hierarchy(&reader, &space, &format!("limit=1&from={}", enc(&next))).expect(200);
    assert_eq!(ids(&second).len(), 1);
    assert_ne!(ids(&second)[0], space);

    // A private space an outsider cannot see, and bad parameters.
    let secret = admin.create_room(json!({ "preset": "private_chat", "creation_content": { "type": "m.space" } }));
    hierarchy(&reader, &secret, "").expect_err(403, "M_FORBIDDEN");
    assert_eq!(hierarchy(&reader, &space, "limit=-1").status, 400);
}
