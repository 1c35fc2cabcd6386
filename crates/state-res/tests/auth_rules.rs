//! The authorization rules of room versions 11 and 12, rule by rule: for each numbered rule an
//! event it accepts and an event it rejects (for a rule that can only reject, an event that gets
//! past it; for "otherwise, allow", only accepted events). Each test quotes the spec's wording.
//!
//! v11 numbers its rules differently: it has no rule "room_id is the create event's id", so its
//! rule 2 is v12's rule 3, its rule 3 is v12's rule 4 and so on; its power levels rules (9) lack
//! v12's 10.4. Rules that read the same in both versions run in both through [`both!`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tandem_state_res::{AuthEvent, EventType, MemoryStore, Rejection, RoomVersion, authorize, check_auth_events};

// The base room (`Room::new`): ALICE created it and has power 100 (v11) or infinite power (v12);
// MOD (power 50) and BOB (power 0, another server) are joined; CAROL and EVE have no membership.
const ALICE: &str = "@alice:example.org";
const MOD: &str = "@mod:example.org";
const BOB: &str = "@bob:other.org";
const CAROL: &str = "@carol:other.org";
const EVE: &str = "@eve:other.org";

const CREATE: &str = "m.room.create";
const MEMBER: &str = "m.room.member";
const PL: &str = "m.room.power_levels";
const JR: &str = "m.room.join_rules";
const TPI: &str = "m.room.third_party_invite";

/// A room state: `(type, state_key)` to event.
type State = HashMap<(String, String), Arc<AuthEvent>>;

fn verdict(v: &RoomVersion, state: &State, event: &AuthEvent) -> Result<(), Rejection> {
    let get = |kind: &EventType, sk: &str| state.get(&(kind.as_str().to_owned(), sk.to_owned())).cloned();
    authorize(v, event, &get)
}

fn allowed(v: &RoomVersion, state: &State, event: &AuthEvent) -> bool {
    verdict(v, state, event).is_ok()
}

/// A room under construction: its events, parsed from JSON, and its current state.
struct Room {
    v: RoomVersion,
    store: RefCell<MemoryStore>,
    state: RefCell<State>,
    room_id: String,
    next: Cell<usize>,
}

impl Room {
    /// A room whose state is only its create event `$create`, sent by ALICE.
    fn bare(version: &str, create_content: Value) -> Room {
        let v = RoomVersion::new(version).unwrap();
        let room_id = if v.room_id_is_create_event_id { "!create" } else { "!room:example.org" };
        let r = Room {
            v,
            store: Default::default(),
            state: Default::default(),
            room_id: room_id.into(),
            next: Cell::new(0),
        };
        let create = r.create_ev(create_content, json!({"event_id": "$create"}));
        r.put(create);
        r
    }

    /// Create, ALICE joined, power levels (MOD 50; v11 also ALICE 100), join rule `invite`,
    /// MOD and BOB joined.
    fn with(version: &str, create_content: Value) -> Room {
        let r = Room::bare(version, create_content);
        let join = r.pdu(json!({"type": MEMBER, "state_key": ALICE, "sender": ALICE,
                                "content": {"membership": "join"}, "prev_events": ["$create"]}));
        r.put(join).levels(json!({})).join_rule("invite").member(MOD, "join").member(BOB, "join");
        r
    }

    fn new(version: &str) -> Room {
        Room::with(version, json!({"room_version": version}))
    }

    fn v12(&self) -> bool {
        self.v.room_id_is_create_event_id
    }

    /// Parses a PDU, filling in an event id, and for other than create events the room id and
    /// `prev_events: ["$prev"]` (not the create event) unless the PDU has them.
    fn pdu(&self, mut pdu: Value) -> Arc<AuthEvent> {
        let n = self.next.get() + 1;
        self.next.set(n);
        let obj = pdu.as_object_mut().unwrap();
        let id = match obj.remove("event_id") {
            Some(Value::String(id)) => id,
            _ => format!("$e{n}"),
        };
        if obj.get("type") != Some(&json!(CREATE)) {
            obj.entry("room_id").or_insert(json!(self.room_id));
            obj.entry("prev_events").or_insert(json!(["$prev"]));
        }
        obj.entry("origin_server_ts").or_insert(json!(n));
        obj.entry("depth").or_insert(json!(n));
        let mut store = self.store.borrow_mut();
        store.insert_json(&self.v, &id, &pdu).unwrap();
        store.by_id(&id).unwrap()
    }

    /// A create event by ALICE (v11: in room `!room:example.org`); `patch` sets top-level
    /// fields, and removes those it sets to null.
    fn create_ev(&self, content: Value, patch: Value) -> Arc<AuthEvent> {
        let mut pdu = json!({"type": CREATE, "state_key": "", "sender": ALICE, "content": content,
                             "prev_events": [], "auth_events": []});
        if !self.v12() {
            pdu["room_id"] = json!(self.room_id);
        }
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                pdu.as_object_mut().unwrap().remove(k);
            } else {
                pdu[k] = val.clone();
            }
        }
        self.pdu(pdu)
    }

    fn put(&self, ev: Arc<AuthEvent>) -> &Self {
        let key = (ev.kind.as_str().to_owned(), ev.state_key().unwrap().to_owned());
        self.state.borrow_mut().insert(key, ev);
        self
    }

    fn get(&self, kind: &str, sk: &str) -> Arc<AuthEvent> {
        self.state.borrow()[&(kind.to_owned(), sk.to_owned())].clone()
    }

    fn unset(&self, kind: &str, sk: &str) -> &Self {
        self.state.borrow_mut().remove(&(kind.to_owned(), sk.to_owned()));
        self
    }

    fn state_ev(&self, sender: &str, kind: &str, sk: &str, content: Value) -> Arc<AuthEvent> {
        self.pdu(json!({"type": kind, "state_key": sk, "sender": sender, "content": content}))
    }

    fn msg(&self, sender: &str) -> Arc<AuthEvent> {
        self.pdu(json!({"type": "m.room.message", "sender": sender, "content": {"body": "hi"}}))
    }

    fn mem_with(&self, sender: &str, target: &str, content: Value) -> Arc<AuthEvent> {
        self.state_ev(sender, MEMBER, target, content)
    }

    fn mem(&self, sender: &str, target: &str, membership: &str) -> Arc<AuthEvent> {
        self.mem_with(sender, target, json!({"membership": membership}))
    }

    /// Puts `user`'s membership into the state.
    fn member(&self, user: &str, membership: &str) -> &Self {
        let sender = if matches!(membership, "invite" | "ban") { ALICE } else { user };
        let ev = self.mem(sender, user, membership);
        self.put(ev)
    }

    fn join_rule(&self, rule: &str) -> &Self {
        let ev = self.state_ev(ALICE, JR, "", json!({"join_rule": rule}));
        self.put(ev)
    }

    /// The base power levels content (MOD 50, v11 ALICE 100) with `extra`'s properties over
    /// it; `users` entries are merged into the base ones.
    fn pl_content(&self, extra: Value) -> Value {
        let mut content = json!({"users": {MOD: 50}});
        if !self.v12() {
            content["users"][ALICE] = json!(100);
        }
        for (k, val) in extra.as_object().unwrap() {
            match (k.as_str(), val) {
                ("users", Value::Object(more)) => more.iter().for_each(|(u, p)| content["users"][u] = p.clone()),
                _ => content[k] = val.clone(),
            }
        }
        content
    }

    /// A power levels event by `sender` with content `pl_content(extra)`.
    fn pl_ev(&self, sender: &str, extra: Value) -> Arc<AuthEvent> {
        self.state_ev(sender, PL, "", self.pl_content(extra))
    }

    /// Puts power levels `pl_content(extra)` into the state.
    fn levels(&self, extra: Value) -> &Self {
        let ev = self.pl_ev(ALICE, extra);
        self.put(ev)
    }

    #[track_caller]
    fn yes(&self, ev: &AuthEvent) -> &Self {
        if let Err(why) = verdict(&self.v, &self.state.borrow(), ev) {
            panic!("v{}: should be allowed, {why}: {ev:?}", self.v.id);
        }
        self
    }

    #[track_caller]
    fn no(&self, ev: &AuthEvent) -> &Self {
        assert!(!allowed(&self.v, &self.state.borrow(), ev), "v{}: should be rejected: {ev:?}", self.v.id);
        self
    }

    #[track_caller]
    fn expect(&self, ok: bool, ev: &AuthEvent, what: &str) {
        assert_eq!(allowed(&self.v, &self.state.borrow(), ev), ok, "v{}: {what}", self.v.id);
    }

    /// Rules 2 and 3 (v11: 2): `check_auth_events` with `auth` as the event's auth events.
    fn auth_ok(&self, ev: &AuthEvent, auth: &[Arc<AuthEvent>]) -> bool {
        let list: Vec<&AuthEvent> = auth.iter().map(|a| &**a).collect();
        let create = self.get(CREATE, "");
        check_auth_events(&self.v, ev, &list, Some(&*create)).is_ok()
    }

    /// The auth events of an event by `sender` other than a member event.
    fn base_auth(&self, sender: &str) -> Vec<Arc<AuthEvent>> {
        let mut auth = vec![self.get(PL, ""), self.get(MEMBER, sender)];
        if !self.v12() {
            auth.push(self.get(CREATE, ""));
        }
        auth
    }
}

const LEVEL_KEYS: [&str; 7] = ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"];

fn plus(list: &[Arc<AuthEvent>], more: Arc<AuthEvent>) -> Vec<Arc<AuthEvent>> {
    list.iter().cloned().chain([more]).collect()
}

/// A join by `sender` for `target` whose `prev_events` are `prev`.
fn join_after(r: &Room, sender: &str, target: &str, prev: Value) -> Arc<AuthEvent> {
    r.pdu(json!({"type": MEMBER, "state_key": target, "sender": sender, "content": {"membership": "join"},
                 "prev_events": prev}))
}

/// A join of `user` with `join_authorised_via_users_server: authoriser`.
fn via(r: &Room, user: &str, authoriser: &str) -> Arc<AuthEvent> {
    r.mem_with(user, user, json!({"membership": "join", "join_authorised_via_users_server": authoriser}))
}

// Rule 5.4.1: third-party invites. `signed` is signed by an ed25519 key over its canonical JSON
// without `signatures`; the `m.room.third_party_invite` at token "tok" lists keys 1 and 2.
fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public_key(seed: u8) -> String {
    STANDARD_NO_PAD.encode(signing_key(seed).verifying_key().as_bytes())
}

/// `fields` with a `signatures` block, signed with key `seed`.
fn signed(seed: u8, fields: Value) -> Value {
    // serde_json's map is sorted and `to_string` writes no white space: canonical JSON.
    let sig = signing_key(seed).sign(fields.to_string().as_bytes());
    let mut signed = fields;
    signed["signatures"] = json!({"id.example.org": {"ed25519:0": STANDARD_NO_PAD.encode(sig.to_bytes())}});
    signed
}

fn tpi_room(version: &str) -> Room {
    let r = Room::new(version);
    let url = "https://id.example.org/isvalid";
    let content = json!({"display_name": "c...@example.com", "key_validity_url": url, "public_key": public_key(1),
                         "public_keys": [{"public_key": public_key(2), "key_validity_url": url}]});
    let ev = r.state_ev(ALICE, TPI, "tok", content);
    r.put(ev);
    r
}

/// An invite of CAROL by `sender` with `content.third_party_invite`.
fn tpi_invite(r: &Room, sender: &str, third_party_invite: Value) -> Arc<AuthEvent> {
    r.mem_with(sender, CAROL, json!({"membership": "invite", "third_party_invite": third_party_invite}))
}

/// `third_party_invite` for CAROL at "tok", signed with key `seed`.
fn tpi_signed(seed: u8) -> Value {
    json!({"display_name": "c...@example.com", "signed": signed(seed, json!({"mxid": CAROL, "token": "tok"}))})
}

/// A power levels event by `sender` with content `new`, checked against a state whose power
/// levels are `old` (verbatim, no base users).
fn pl_change(version: &str, sender: &str, old: Value, new: Value) -> bool {
    let r = Room::new(version);
    let old = r.state_ev(ALICE, PL, "", old);
    r.put(old);
    allowed(&r.v, &r.state.borrow(), &r.state_ev(sender, PL, "", new))
}

/// `base` with `patch`'s map entries set, or removed where null.
fn patched(base: &Value, patch: Value) -> Value {
    let mut c = base.clone();
    for (k, entries) in patch.as_object().unwrap() {
        for (entry, v) in entries.as_object().unwrap() {
            match v {
                Value::Null => drop(c[k].as_object_mut().unwrap().remove(entry)),
                _ => c[k][entry] = v.clone(),
            }
        }
    }
    c
}

/// Rule tests that read the same in v11 and v12: `v12_name, v11_name => |version| { body }`
/// makes two tests, running `body` with `version` "12" and "11".
macro_rules! both {
    ($($(#[$doc:meta])* $v12:ident, $v11:ident => |$version:ident| $body:block)*) => {$(
        $(#[$doc])*
        #[test]
        fn $v12() {
            let $version = "12";
            $body
        }
        $(#[$doc])*
        #[test]
        fn $v11() {
            let $version = "11";
            $body
        }
    )*};
}

both! {
    // Rule 1: m.room.create

    /// 1.1 "If it has any `prev_events`, reject."
    v12_rule_1_1_create_with_prev_events, v11_rule_1_1_create_with_prev_events => |version| {
        let r = Room::bare(version, json!({}));
        r.yes(&r.create_ev(json!({"room_version": version}), json!({})));
        r.no(&r.create_ev(json!({"room_version": version}), json!({"prev_events": ["$create"]})));
    }

    /// 1.3 "If `content.room_version` is present and is not a recognised version, reject."
    v12_rule_1_3_create_unknown_room_version, v11_rule_1_3_create_unknown_room_version => |version| {
        let r = Room::bare(version, json!({}));
        for ok in [json!({"room_version": version}), json!({"room_version": "10"}), json!({})] {
            r.yes(&r.create_ev(ok, json!({})));
        }
        for bad in [json!("99"), json!("org.example.v"), json!(12)] {
            r.no(&r.create_ev(json!({"room_version": bad}), json!({})));
        }
    }

    /// v12 1.5, v11 1.4 "Otherwise, allow." No `creator` is needed (since v11).
    v12_rule_1_5_create_otherwise_allow, v11_rule_1_4_create_otherwise_allow => |version| {
        let r = Room::bare(version, json!({}));
        r.yes(&r.create_ev(json!({"room_version": version, "m.federate": false, "type": "m.space"}), json!({})));
        r.yes(&r.create_ev(json!({}), json!({"sender": MOD})));
        if version == "11" {
            // v11 has no rule on additional_creators.
            r.yes(&r.create_ev(json!({"additional_creators": "junk"}), json!({})));
        }
    }

    // v12 rule 3 / v11 rule 2: auth_events (checked by `check_auth_events`)

    /// v12 3.1, v11 2.1 "If there are duplicate entries for a given `type` and `state_key` pair,
    /// reject."
    v12_rule_3_1_auth_events_duplicate_type_state_key, v11_rule_2_1_auth_events_duplicate_type_state_key => |version| {
        let r = Room::new(version);
        let (msg, base) = (r.msg(BOB), r.base_auth(BOB));
        assert!(r.auth_ok(&msg, &base));
        assert!(!r.auth_ok(&msg, &plus(&base, r.state_ev(ALICE, PL, "", json!({})))));
        assert!(!r.auth_ok(&msg, &plus(&base, r.get(PL, ""))));
    }

    /// v12 3.2 "If there are entries whose `type` and `state_key` don't match those specified by the
    /// auth events selection algorithm …, reject. **Note**: In this room version, `m.room.create`
    /// MUST NOT be selected." v11 2.2: "… This room version requires an `m.room.create` event to be
    /// selected."
    v12_rule_3_2_auth_events_match_selection, v11_rule_2_2_auth_events_match_selection => |version| {
        let r = Room::new(version);
        let (msg, base) = (r.msg(BOB), r.base_auth(BOB));
        assert!(r.auth_ok(&msg, &base));
        // Join rules are selected for joins, not for messages; nor is another user's membership.
        assert!(!r.auth_ok(&msg, &plus(&base, r.get(JR, ""))));
        assert!(!r.auth_ok(&msg, &plus(&base, r.get(MEMBER, MOD))));
        let join = r.mem(CAROL, CAROL, "join");
        let mut join_auth = vec![r.get(PL, ""), r.get(JR, "")];
        if !r.v12() {
            join_auth.push(r.get(CREATE, ""));
        }
        assert!(r.auth_ok(&join, &join_auth));
        // A restricted join selects the authoriser's membership; an invite redeeming a third-party
        // invite selects the m.room.third_party_invite at its token.
        assert!(r.auth_ok(&via(&r, CAROL, MOD), &plus(&join_auth, r.get(MEMBER, MOD))));
        assert!(!r.auth_ok(&join, &plus(&join_auth, r.get(MEMBER, MOD))));
        let invite = tpi_invite(&r, ALICE, tpi_signed(1));
        let invite_auth = plus(&r.base_auth(ALICE), r.get(JR, ""));
        let at = |token: &str| r.state_ev(ALICE, TPI, token, json!({"public_key": public_key(1)}));
        assert!(r.auth_ok(&invite, &plus(&invite_auth, at("tok"))));
        assert!(!r.auth_ok(&invite, &plus(&invite_auth, at("other"))));
        // The create event: required in v11 (see 2.4), not to be selected in v12.
        if r.v12() {
            assert!(!r.auth_ok(&msg, &plus(&base, r.get(CREATE, ""))));
        }
    }

    /// v12 3.3, v11 2.3 "If there are entries which were themselves rejected under the checks
    /// performed on receipt of a PDU, reject."
    v12_rule_3_3_auth_events_rejected, v11_rule_2_3_auth_events_rejected => |version| {
        let r = Room::new(version);
        let (msg, mut auth) = (r.msg(BOB), r.base_auth(BOB));
        assert!(r.auth_ok(&msg, &auth));
        let mut pl = (*auth[0]).clone();
        pl.rejected = true;
        auth[0] = Arc::new(pl);
        assert!(!r.auth_ok(&msg, &auth));
    }

    /// v12 3.5, v11 2.5 "If any event in `auth_events` has a `room_id` which does not match that of
    /// the event being authorised, reject."
    v12_rule_3_5_auth_events_other_room, v11_rule_2_5_auth_events_other_room => |version| {
        let r = Room::new(version);
        let (msg, mut auth) = (r.msg(BOB), r.base_auth(BOB));
        assert!(r.auth_ok(&msg, &auth));
        auth[0] = r.pdu(json!({"type": PL, "state_key": "", "sender": ALICE, "content": {}, "room_id": "!b:x.org"}));
        assert!(!r.auth_ok(&msg, &auth));
    }

    // v12 rule 4 / v11 rule 3: m.federate

    /// "If the `content` of the `m.room.create` event in the room state has the property
    /// `m.federate` set to `false`, and the `sender` domain of the event does not match the `sender`
    /// domain of the create event, reject."
    v12_rule_4_federate_false_other_server, v11_rule_3_federate_false_other_server => |version| {
        let r = Room::with(version, json!({"room_version": version, "m.federate": false}));
        r.yes(&r.msg(MOD)).no(&r.msg(BOB));
        let r = Room::with(version, json!({"room_version": version, "m.federate": true}));
        r.yes(&r.msg(BOB));
    }

    // v12 rule 5 / v11 rule 4: m.room.member (v11 numbers are v12's with 5 → 4)

    /// 5.1 "If there is no `state_key` property, or no `membership` property in `content`, reject."
    v12_rule_5_1_member_needs_state_key_and_membership,
    v11_rule_4_1_member_needs_state_key_and_membership => |version| {
        let r = Room::new(version);
        r.join_rule("public").yes(&r.mem(CAROL, CAROL, "join"));
        r.no(&r.pdu(json!({"type": MEMBER, "sender": CAROL, "content": {"membership": "join"}})));
        r.no(&r.mem_with(CAROL, CAROL, json!({"displayname": "Carol"})));
    }

    /// 5.3.1 "If the only previous event is an `m.room.create` and the `state_key` is the sender of
    /// the `m.room.create`, allow."
    v12_rule_5_3_1_join_creator_after_create, v11_rule_4_3_1_join_creator_after_create => |version| {
        let r = Room::bare(version, json!({"room_version": version}));
        r.yes(&join_after(&r, ALICE, ALICE, json!(["$create"])));
        // The rule asks nothing of the sender.
        r.yes(&join_after(&r, BOB, ALICE, json!(["$create"])));
        let bad = [(ALICE, json!(["$create", "$other"])), (ALICE, json!(["$other"])), (BOB, json!(["$create"]))];
        for (user, prev) in bad {
            r.no(&join_after(&r, user, user, prev));
        }
    }

    /// 5.3.2 "If the `sender` does not match `state_key`, reject."
    v12_rule_5_3_2_join_sender_must_be_state_key, v11_rule_4_3_2_join_sender_must_be_state_key => |version| {
        let r = Room::new(version);
        r.join_rule("public").yes(&r.mem(CAROL, CAROL, "join")).no(&r.mem(ALICE, CAROL, "join"));
    }

    /// 5.3.3 "If the `sender` is banned, reject."
    v12_rule_5_3_3_join_sender_banned, v11_rule_4_3_3_join_sender_banned => |version| {
        let r = Room::new(version);
        let ev = r.mem(CAROL, CAROL, "join");
        r.join_rule("public").member(CAROL, "leave").yes(&ev);
        r.member(CAROL, "ban").no(&ev);
    }

    /// 5.3.4 "If the `join_rule` is `invite` or `knock` then allow if membership state is `invite`
    /// or `join`."
    v12_rule_5_3_4_join_invite_or_knock_rule, v11_rule_4_3_4_join_invite_or_knock_rule => |version| {
        for rule in ["invite", "knock"] {
            let r = Room::new(version);
            let carol = r.mem(CAROL, CAROL, "join");
            r.join_rule(rule).no(&carol).yes(&r.mem(BOB, BOB, "join"));
            r.member(CAROL, "knock").no(&carol);
            r.member(CAROL, "invite").yes(&carol);
        }
    }

    /// 5.3.5.1 "If the `join_rule` is `restricted` or `knock_restricted`: If membership state is
    /// `join` or `invite`, allow."
    v12_rule_5_3_5_1_restricted_join_invited_or_joined,
    v11_rule_4_3_5_1_restricted_join_invited_or_joined => |version| {
        for rule in ["restricted", "knock_restricted"] {
            let r = Room::new(version);
            let carol = r.mem(CAROL, CAROL, "join");
            r.join_rule(rule).no(&carol).yes(&r.mem(BOB, BOB, "join"));
            r.member(CAROL, "invite").yes(&carol);
        }
    }

    /// 5.3.5.2 "If the `join_authorised_via_users_server` key in `content` is not a user with
    /// sufficient permission to invite other users or is not a joined member of the room, reject."
    v12_rule_5_3_5_2_restricted_join_authoriser, v11_rule_4_3_5_2_restricted_join_authoriser => |version| {
        for rule in ["restricted", "knock_restricted"] {
            let r = Room::new(version);
            let by_mod = via(&r, CAROL, MOD);
            r.join_rule(rule).levels(json!({"invite": 50, "users": {EVE: 100}})).member(EVE, "leave").yes(&by_mod);
            // BOB is joined but below the invite level; EVE may invite but has left.
            for authoriser in [BOB, EVE, "@nobody:example.org"] {
                r.no(&via(&r, CAROL, authoriser));
            }
            r.no(&r.mem(CAROL, CAROL, "join"));
            r.levels(json!({"invite": 51})).no(&by_mod);
        }
    }

    /// 5.3.5.3 "Otherwise, allow."
    v12_rule_5_3_5_3_restricted_join_otherwise_allow, v11_rule_4_3_5_3_restricted_join_otherwise_allow => |version| {
        let r = Room::new(version);
        r.join_rule("knock_restricted").member(CAROL, "knock").yes(&via(&r, CAROL, ALICE));
    }

    /// 5.3.6 "If the `join_rule` is `public`, allow."
    v12_rule_5_3_6_join_public, v11_rule_4_3_6_join_public => |version| {
        let r = Room::new(version);
        let ev = r.mem(CAROL, CAROL, "join");
        r.no(&ev);
        r.join_rule("public").yes(&ev);
        r.member(CAROL, "leave").yes(&ev);
        // join_authorised_via_users_server counts only in restricted rooms.
        r.yes(&via(&r, CAROL, EVE));
    }

    /// 5.3.7 "Otherwise, reject."
    v12_rule_5_3_7_join_otherwise_reject, v11_rule_4_3_7_join_otherwise_reject => |version| {
        for rule in ["private", "org.example.secret"] {
            let r = Room::new(version);
            r.join_rule(rule).no(&r.mem(CAROL, CAROL, "join"));
        }
    }

    /// 5.4.1.1 "If *target user* is banned, reject."
    v12_rule_5_4_1_1_third_party_invite_target_banned, v11_rule_4_4_1_1_third_party_invite_target_banned => |version| {
        let r = tpi_room(version);
        let ev = tpi_invite(&r, ALICE, tpi_signed(1));
        r.yes(&ev).member(CAROL, "ban").no(&ev);
    }

    /// 5.4.1.2 "If `content.third_party_invite` does not have a `signed` property, reject."
    v12_rule_5_4_1_2_third_party_invite_without_signed,
    v11_rule_4_4_1_2_third_party_invite_without_signed => |version| {
        let r = tpi_room(version);
        for bad in [json!({"display_name": "c"}), json!({"display_name": "c", "signed": "x"}), json!("x")] {
            r.no(&tpi_invite(&r, ALICE, bad));
        }
        r.yes(&tpi_invite(&r, ALICE, tpi_signed(1)));
    }

    /// 5.4.1.3 "If `signed` does not have `mxid` and `token` properties, reject."
    v12_rule_5_4_1_3_third_party_invite_mxid_and_token,
    v11_rule_4_4_1_3_third_party_invite_mxid_and_token => |version| {
        let r = tpi_room(version);
        for fields in [json!({"token": "tok"}), json!({"mxid": CAROL})] {
            r.no(&tpi_invite(&r, ALICE, json!({"display_name": "c", "signed": signed(1, fields)})));
        }
        r.yes(&tpi_invite(&r, ALICE, tpi_signed(1)));
    }

    /// 5.4.1.4 "If `mxid` does not match `state_key`, reject."
    v12_rule_5_4_1_4_third_party_invite_mxid_is_state_key,
    v11_rule_4_4_1_4_third_party_invite_mxid_is_state_key => |version| {
        let r = tpi_room(version);
        let tpi = json!({"display_name": "c", "signed": signed(1, json!({"mxid": EVE, "token": "tok"}))});
        r.no(&tpi_invite(&r, ALICE, tpi)).yes(&tpi_invite(&r, ALICE, tpi_signed(1)));
    }

    /// 5.4.1.5 "If there is no `m.room.third_party_invite` event in the current room state with
    /// `state_key` matching `token`, reject."
    v12_rule_5_4_1_5_third_party_invite_event_for_token,
    v11_rule_4_4_1_5_third_party_invite_event_for_token => |version| {
        let r = tpi_room(version);
        let tpi = json!({"display_name": "c", "signed": signed(1, json!({"mxid": CAROL, "token": "other"}))});
        let ok = tpi_invite(&r, ALICE, tpi_signed(1));
        r.no(&tpi_invite(&r, ALICE, tpi)).yes(&ok);
        r.unset(TPI, "tok").no(&ok);
    }

    /// 5.4.1.6 "If `sender` does not match `sender` of the `m.room.third_party_invite`, reject."
    v12_rule_5_4_1_6_third_party_invite_same_sender, v11_rule_4_4_1_6_third_party_invite_same_sender => |version| {
        let r = tpi_room(version);
        // MOD is joined and may invite (5.4.2–5.4.4 would allow), but did not send the invite event.
        r.no(&tpi_invite(&r, MOD, tpi_signed(1))).yes(&tpi_invite(&r, ALICE, tpi_signed(1)));
    }

    /// 5.4.1.7 "If any signature in `signed` matches any public key in the
    /// `m.room.third_party_invite` event, allow. The public keys are in `content` … as: 1. A single
    /// public key in the `public_key` property. 2. A list of public keys in the `public_keys`
    /// property."
    v12_rule_5_4_1_7_third_party_invite_signature_matches,
    v11_rule_4_4_1_7_third_party_invite_signature_matches => |version| {
        let r = tpi_room(version);
        r.yes(&tpi_invite(&r, ALICE, tpi_signed(1))).yes(&tpi_invite(&r, ALICE, tpi_signed(2)));
        // One good signature among others is enough.
        let mut both = tpi_signed(3);
        let good = signed(2, json!({"mxid": CAROL, "token": "tok"}));
        both["signed"]["signatures"]["id2.example.org"] = good["signatures"]["id.example.org"].clone();
        r.yes(&tpi_invite(&r, ALICE, both));
    }

    /// 5.4.1.8 "Otherwise, reject."
    v12_rule_5_4_1_8_third_party_invite_otherwise_reject,
    v11_rule_4_4_1_8_third_party_invite_otherwise_reject => |version| {
        let r = tpi_room(version);
        r.no(&tpi_invite(&r, ALICE, tpi_signed(3)));
        // Signed, then changed; not signed.
        let (mut tampered, mut unsigned) = (tpi_signed(1), tpi_signed(1));
        tampered["signed"]["extra"] = json!(1);
        unsigned["signed"].as_object_mut().unwrap().remove("signatures");
        r.no(&tpi_invite(&r, ALICE, tampered)).no(&tpi_invite(&r, ALICE, unsigned));
    }

    /// 5.4.2 "If the `sender`'s current membership state is not `join`, reject."
    v12_rule_5_4_2_invite_sender_not_joined, v11_rule_4_4_2_invite_sender_not_joined => |version| {
        let r = Room::new(version);
        let ev = r.mem(BOB, CAROL, "invite");
        r.yes(&ev).no(&r.mem(EVE, CAROL, "invite"));
        r.member(BOB, "leave").no(&ev);
        r.member(BOB, "invite").no(&ev);
    }

    /// 5.4.3 "If *target user*'s current membership state is `join` or `ban`, reject."
    v12_rule_5_4_3_invite_target_joined_or_banned, v11_rule_4_4_3_invite_target_joined_or_banned => |version| {
        let r = Room::new(version);
        let ev = r.mem(MOD, CAROL, "invite");
        r.yes(&ev);
        for (state, ok) in [("leave", true), ("invite", true), ("knock", true), ("join", false), ("ban", false)] {
            r.member(CAROL, state).expect(ok, &ev, state);
        }
    }

    /// 5.4.4 "If the `sender`'s power level is greater than or equal to the *invite level*, allow."
    /// 5.4.5 "Otherwise, reject."
    v12_rule_5_4_4_and_5_invite_level, v11_rule_4_4_4_and_5_invite_level => |version| {
        let r = Room::new(version);
        let by_mod = r.mem(MOD, CAROL, "invite");
        r.levels(json!({"invite": 50})).yes(&by_mod).no(&r.mem(BOB, CAROL, "invite"));
        r.levels(json!({"invite": 51})).no(&by_mod);
    }

    /// 5.5.1 "If the `sender` matches `state_key`, allow if and only if that user's current
    /// membership state is `invite`, `join`, or `knock`."
    v12_rule_5_5_1_leave_self, v11_rule_4_5_1_leave_self => |version| {
        let r = Room::new(version);
        let ev = r.mem(CAROL, CAROL, "leave");
        r.no(&ev);
        for (state, ok) in [("invite", true), ("join", true), ("knock", true), ("leave", false), ("ban", false)] {
            r.member(CAROL, state).expect(ok, &ev, state);
        }
    }

    /// 5.5.2 "If the `sender`'s current membership state is not `join`, reject."
    v12_rule_5_5_2_kick_sender_not_joined, v11_rule_4_5_2_kick_sender_not_joined => |version| {
        let r = Room::new(version);
        r.levels(json!({"users": {EVE: 100}})).member(EVE, "leave");
        r.no(&r.mem(EVE, BOB, "leave")).yes(&r.mem(MOD, BOB, "leave"));
    }

    /// 5.5.3 "If the *target user*'s current membership state is `ban`, and the `sender`'s power
    /// level is less than the *ban level*, reject."
    v12_rule_5_5_3_unban_needs_ban_level, v11_rule_4_5_3_unban_needs_ban_level => |version| {
        let r = Room::new(version);
        let by_mod = r.mem(MOD, CAROL, "leave");
        r.member(CAROL, "ban").yes(&by_mod);
        r.levels(json!({"ban": 75})).no(&by_mod).yes(&r.mem(ALICE, CAROL, "leave"));
        // Not banned: only the kick level counts.
        r.member(CAROL, "join").yes(&by_mod);
    }

    /// 5.5.4 "If the `sender`'s power level is greater than or equal to the *kick level*, and the
    /// *target user*'s power level is less than the `sender`'s power level, allow." 5.5.5
    /// "Otherwise, reject."
    v12_rule_5_5_4_and_5_kick_level, v11_rule_4_5_4_and_5_kick_level => |version| {
        let r = Room::new(version);
        let mod_kicks_bob = r.mem(MOD, BOB, "leave");
        r.yes(&mod_kicks_bob).no(&r.mem(BOB, MOD, "leave")).no(&r.mem(MOD, ALICE, "leave"));
        r.levels(json!({"users": {BOB: 50}})).no(&mod_kicks_bob);
        r.levels(json!({"kick": 51})).no(&mod_kicks_bob);
    }

    /// 5.6.1 "If the `sender`'s current membership state is not `join`, reject."
    v12_rule_5_6_1_ban_sender_not_joined, v11_rule_4_6_1_ban_sender_not_joined => |version| {
        let r = Room::new(version);
        let by_eve = r.mem(EVE, BOB, "ban");
        r.levels(json!({"users": {EVE: 100}})).no(&by_eve);
        r.member(EVE, "join").yes(&by_eve);
    }

    /// 5.6.2 "If the `sender`'s power level is greater than or equal to the *ban level*, and the
    /// *target user*'s power level is less than the `sender`'s power level, allow." 5.6.3
    /// "Otherwise, reject."
    v12_rule_5_6_2_and_3_ban_level, v11_rule_4_6_2_and_3_ban_level => |version| {
        let r = Room::new(version);
        let (bob, carol) = (r.mem(MOD, BOB, "ban"), r.mem(MOD, CAROL, "ban"));
        r.yes(&bob).yes(&carol).no(&r.mem(BOB, MOD, "ban")).no(&r.mem(MOD, ALICE, "ban"));
        r.levels(json!({"users": {BOB: 50}})).no(&bob);
        r.levels(json!({"ban": 51})).no(&carol);
    }

    /// 5.7.1 "If the `join_rule` is anything other than `knock` or `knock_restricted`, reject."
    v12_rule_5_7_1_knock_join_rule, v11_rule_4_7_1_knock_join_rule => |version| {
        let rules =
            [("knock", true), ("knock_restricted", true), ("invite", false), ("public", false), ("restricted", false)];
        for (rule, ok) in rules {
            let r = Room::new(version);
            r.join_rule(rule).expect(ok, &r.mem(CAROL, CAROL, "knock"), rule);
        }
    }

    /// 5.7.2 "If `sender` does not match `state_key`, reject."
    v12_rule_5_7_2_knock_sender_must_be_state_key, v11_rule_4_7_2_knock_sender_must_be_state_key => |version| {
        let r = Room::new(version);
        r.join_rule("knock").yes(&r.mem(CAROL, CAROL, "knock")).no(&r.mem(ALICE, CAROL, "knock"));
    }

    /// 5.7.3 "If the `sender`'s current membership is not `ban`, `invite`, or `join`, allow."
    /// 5.7.4 "Otherwise, reject."
    v12_rule_5_7_3_and_4_knock_membership, v11_rule_4_7_3_and_4_knock_membership => |version| {
        let r = Room::new(version);
        let ev = r.mem(CAROL, CAROL, "knock");
        r.join_rule("knock").yes(&ev);
        for (state, ok) in [("leave", true), ("knock", true), ("ban", false), ("invite", false), ("join", false)] {
            r.member(CAROL, state).expect(ok, &ev, state);
        }
    }

    /// 5.8 "Otherwise, the membership is unknown. Reject."
    v12_rule_5_8_unknown_membership, v11_rule_4_8_unknown_membership => |version| {
        let r = Room::new(version);
        r.join_rule("public");
        for membership in [json!("JOIN"), json!("org.example.lurk"), json!(""), json!(1)] {
            r.no(&r.mem_with(BOB, BOB, json!({"membership": membership})));
        }
    }

    // v12 rules 6–9 / v11 rules 5–8

    /// v12 6, v11 5 "If the `sender`'s current membership state is not `join`, reject."
    v12_rule_6_sender_not_joined, v11_rule_5_sender_not_joined => |version| {
        let r = Room::new(version);
        let bob = r.msg(BOB);
        r.yes(&bob).no(&r.msg(EVE));
        for state in ["invite", "leave", "knock", "ban"] {
            r.member(BOB, state).no(&bob);
        }
    }

    /// v12 7, v11 6 "If type is `m.room.third_party_invite`: Allow if and only if `sender`'s current
    /// power level is greater than or equal to the *invite level*."
    v12_rule_7_third_party_invite_event_invite_level, v11_rule_6_third_party_invite_event_invite_level => |version| {
        let r = Room::new(version);
        let content = json!({"display_name": "d", "key_validity_url": "https://id.example.org/", "public_key": "AA"});
        let (by_mod, by_bob) = (r.state_ev(MOD, TPI, "t", content.clone()), r.state_ev(BOB, TPI, "t", content));
        // The event's own required level (rule 8) does not count.
        r.levels(json!({"invite": 50, "events": {TPI: 100}})).yes(&by_mod).no(&by_bob);
    }

    /// v12 8, v11 7 "If the event type's *required power level* is greater than the `sender`'s
    /// power level, reject."
    v12_rule_8_required_power_level, v11_rule_7_required_power_level => |version| {
        let r = Room::new(version);
        let topic = |sender| r.state_ev(sender, "m.room.topic", "", json!({"topic": "t"}));
        let (bob_topic, mod_topic, bob_msg) = (topic(BOB), topic(MOD), r.msg(BOB));
        r.no(&bob_topic).yes(&mod_topic).yes(&bob_msg); // state_default 50, events_default 0
        r.levels(json!({"events_default": 10})).no(&bob_msg);
        r.levels(json!({"events": {"m.room.message": 10}})).no(&bob_msg);
        r.levels(json!({"events": {"m.room.topic": 0}})).yes(&bob_topic);
        r.levels(json!({"state_default": 51})).no(&mod_topic);
    }

    /// v12 9, v11 8 "If the event has a `state_key` that starts with an `@` and does not match the
    /// `sender`, reject."
    v12_rule_9_state_key_at_must_be_sender, v11_rule_8_state_key_at_must_be_sender => |version| {
        let r = Room::new(version);
        r.levels(json!({"events": {"org.example.profile": 0}}));
        let cases = [(BOB, true), ("bob", true), ("", true), (MOD, false), ("@", false), ("@bob:other.org2", false)];
        for (sk, ok) in cases {
            r.expect(ok, &r.state_ev(BOB, "org.example.profile", sk, json!({})), sk);
        }
    }

    // v12 rule 10 / v11 rule 9: m.room.power_levels (v11: 10.1–10.3 → 9.1–9.3, 10.5–10.10 → 9.4–9.9)

    /// 10.1 "If any of the properties `users_default`, `events_default`, `state_default`, `ban`,
    /// `redact`, `kick`, or `invite` in `content` are present and not an integer, reject."
    v12_rule_10_1_power_levels_integers, v11_rule_9_1_power_levels_integers => |version| {
        let r = Room::new(version);
        for key in LEVEL_KEYS {
            r.yes(&r.pl_ev(ALICE, json!({key: 20})));
            for bad in [json!("20"), json!(20.5), json!(20.0), json!(null), json!(true)] {
                r.no(&r.pl_ev(ALICE, json!({key: bad})));
            }
        }
    }

    /// 10.2 "If either of the properties `events` or `notifications` in `content` are present and
    /// not an object with values that are integers, reject."
    v12_rule_10_2_power_levels_events_notifications, v11_rule_9_2_power_levels_events_notifications => |version| {
        let r = Room::new(version);
        r.yes(&r.pl_ev(ALICE, json!({"events": {"m.room.name": 20}, "notifications": {"room": 20}})));
        for key in ["events", "notifications"] {
            for bad in [json!({"m.room.name": "20"}), json!({"room": 1.5}), json!([]), json!(5)] {
                r.no(&r.pl_ev(ALICE, json!({key: bad})));
            }
        }
    }

    /// 10.3 "If the `users` property in `content` is not an object with keys that are valid user
    /// IDs with values that are integers, reject."
    v12_rule_10_3_power_levels_users, v11_rule_9_3_power_levels_users => |version| {
        let r = Room::new(version);
        // (In v11 the base users list ALICE, the creator: v11 has no rule 10.4.)
        r.yes(&r.pl_ev(ALICE, json!({"users": {BOB: 10}})));
        for bad in [json!({"bob": 10}), json!({BOB: "10"}), json!({BOB: 1.5}), json!({"@:example.org": 1})] {
            r.no(&r.pl_ev(ALICE, json!({"users": bad})));
        }
        for bad in [json!([]), json!("x")] {
            r.no(&r.state_ev(ALICE, PL, "", json!({"users": bad})));
        }
    }

    /// 10.5 "If there is no previous `m.room.power_levels` event in the room, allow."
    v12_rule_10_5_power_levels_no_previous, v11_rule_9_4_power_levels_no_previous => |version| {
        let r = Room::new(version);
        // Levels above the sender's own: allowed only when there is no previous power levels event
        // (ALICE, the creator, has power 100 without one in v11, infinite power in v12).
        let content = json!({"users": {BOB: 1000, MOD: 2000}, "ban": 5000});
        let ev = r.state_ev(ALICE, PL, "", content.clone());
        r.unset(PL, "").yes(&ev);
        r.levels(json!({})).no(&r.state_ev(MOD, PL, "", content));
        if !r.v12() {
            r.no(&ev);
        }
    }

    /// 10.6 "For the properties `users_default`, `events_default`, `state_default`, `ban`,
    /// `redact`, `kick`, `invite` check if they were added, changed or removed. For each found
    /// alteration: 1. If the current value is higher than the `sender`'s current power level,
    /// reject. 2. If the new value is higher than the `sender`'s current power level, reject."
    v12_rule_10_6_power_levels_top_level_changes, v11_rule_9_5_power_levels_top_level_changes => |version| {
        let users = json!({MOD: 50});
        let without = json!({"users": users});
        for key in LEVEL_KEYS {
            let at = |n: i64| json!({"users": users, key: n});
            // Changed, added, removed within the sender's level.
            assert!(pl_change(version, MOD, at(40), at(50)), "{key}");
            assert!(pl_change(version, MOD, without.clone(), at(50)), "{key}");
            assert!(pl_change(version, MOD, at(30), without.clone()), "{key}");
            // 10.6.2: the new value above the sender's level, changed or added.
            assert!(!pl_change(version, MOD, at(40), at(51)), "{key}");
            assert!(!pl_change(version, MOD, without.clone(), at(51)), "{key}");
            // 10.6.1: the current value above the sender's level, changed or removed. (A
            // state_default above 50 would stop MOD at rule 8.)
            if key != "state_default" {
                assert!(!pl_change(version, MOD, at(60), at(40)), "{key}");
                assert!(!pl_change(version, MOD, at(60), without.clone()), "{key}");
            }
        }
    }

    /// 10.7 "For each entry being changed in, or removed from, the `events` or `notifications`
    /// properties: 1. If the current value is greater than the `sender`'s current power level,
    /// reject."
    v12_rule_10_7_power_levels_changed_or_removed_event_levels,
    v11_rule_9_6_power_levels_changed_or_removed_event_levels => |version| {
        let old = json!({"users": {MOD: 50}, "events": {"m.room.name": 60, "m.room.topic": 40},
                         "notifications": {"room": 60, "x": 40}});
        let cases = [
            (json!({"events": {"m.room.topic": 30}}), true), (json!({"events": {"m.room.topic": null}}), true),
            (json!({"notifications": {"x": null}}), true), (json!({"events": {"m.room.name": 50}}), false),
            (json!({"events": {"m.room.name": null}}), false), (json!({"notifications": {"room": 40}}), false),
            (json!({"notifications": {"room": null}}), false),
        ];
        for (patch, ok) in cases {
            assert_eq!(pl_change(version, MOD, old.clone(), patched(&old, patch.clone())), ok, "{patch}");
        }
    }

    /// 10.8 "For each entry being added to, or changed in, the `events` or `notifications`
    /// properties: 1. If the new value is greater than the `sender`'s current power level, reject."
    v12_rule_10_8_power_levels_added_or_changed_event_levels,
    v11_rule_9_7_power_levels_added_or_changed_event_levels => |version| {
        let old = json!({"users": {MOD: 50}, "events": {"m.room.topic": 40}, "notifications": {"room": 40}});
        for key in ["events", "notifications"] {
            for (entry, value, ok) in
                [("org.example.x", 50, true), ("org.example.x", 51, false), ("m.room.topic", 51, false)]
            {
                let new = patched(&old, json!({key: {entry: value}}));
                assert_eq!(pl_change(version, MOD, old.clone(), new), ok, "{key}.{entry} = {value}");
            }
        }
    }

    /// 10.9 "For each entry being changed in, or removed from, the `users` property, other than the
    /// `sender`'s own entry: 1. If the current value is greater than or equal to the `sender`'s
    /// current power level, reject."
    v12_rule_10_9_power_levels_changed_or_removed_users,
    v11_rule_9_8_power_levels_changed_or_removed_users => |version| {
        let peer = "@peer:example.org";
        let old = json!({"users": {MOD: 50, BOB: 10, peer: 50}});
        // The sender's own entry may be lowered or removed; a user at the sender's level may not
        // be changed or removed.
        let cases = [(json!({BOB: 20}), true), (json!({BOB: null}), true), (json!({MOD: 10}), true),
                     (json!({MOD: null}), true), (json!({peer: 40}), false), (json!({peer: null}), false)];
        for (users, ok) in cases {
            let new = patched(&old, json!({"users": users}));
            assert_eq!(pl_change(version, MOD, old.clone(), new), ok, "{users}");
        }
    }

    /// 10.10 "For each entry being added to, or changed in, the `users` property: 1. If the new
    /// value is greater than the `sender`'s current power level, reject."
    v12_rule_10_10_power_levels_added_or_changed_users, v11_rule_9_9_power_levels_added_or_changed_users => |version| {
        let old = json!({"users": {MOD: 50, BOB: 10}});
        let cases = [(json!({BOB: 50}), true), (json!({CAROL: 50}), true), (json!({BOB: 51}), false),
                     (json!({CAROL: 51}), false), (json!({MOD: 51}), false)];
        for (users, ok) in cases {
            let new = patched(&old, json!({"users": users}));
            assert_eq!(pl_change(version, MOD, old.clone(), new), ok, "{users}");
        }
    }

    // v12 rule 11 / v11 rule 10

    /// v12 11, v11 10 "Otherwise, allow." Redactions are checked like any other event: "the
    /// *redact level* is **not** considered by the auth rules".
    v12_rule_11_otherwise_allow, v11_rule_10_otherwise_allow => |version| {
        let r = Room::new(version);
        let redaction = json!({"type": "m.room.redaction", "sender": BOB, "content": {"redacts": "$e5"}});
        r.yes(&r.msg(BOB)).yes(&r.pdu(redaction)); // BOB is below the redact level (50)
        r.yes(&r.pdu(json!({"type": "org.example.custom", "sender": BOB, "content": {}})));
    }
}

// Rules of one version, and the creators' power.

/// v12 1.2 "If the event has a `room_id`, reject."
#[test]
fn v12_rule_1_2_create_has_no_room_id() {
    let r = Room::bare("12", json!({}));
    r.yes(&r.create_ev(json!({"room_version": "12"}), json!({})));
    r.no(&r.create_ev(json!({"room_version": "12"}), json!({"room_id": "!create"})));
}

/// v11 1.2 "If the domain of the `room_id` does not match the domain of the `sender`, reject."
#[test]
fn v11_rule_1_2_create_room_id_domain_is_sender_domain() {
    let r = Room::bare("11", json!({}));
    r.yes(&r.create_ev(json!({"room_version": "11"}), json!({})));
    r.yes(&r.create_ev(json!({}), json!({"room_id": "!other:other.org", "sender": BOB})));
    for patch in [json!({"room_id": "!room:other.org"}), json!({"sender": BOB}), json!({"room_id": null})] {
        r.no(&r.create_ev(json!({"room_version": "11"}), patch));
    }
}

/// v12 1.4 "If `additional_creators` is present in `content` and is not an array of strings
/// where each string passes the same user ID validation applied to `sender`, reject."
#[test]
fn v12_rule_1_4_create_additional_creators_are_user_ids() {
    let r = Room::bare("12", json!({}));
    for ok in [json!([BOB, CAROL]), json!([])] {
        r.yes(&r.create_ev(json!({"room_version": "12", "additional_creators": ok}), json!({})));
    }
    for bad in [json!(["bob"]), json!([BOB, 5]), json!(BOB), json!({"a": BOB}), json!(["@:example.org"])] {
        r.no(&r.create_ev(json!({"room_version": "12", "additional_creators": bad}), json!({})));
    }
}

/// v12 2 "If the event's `room_id` is not an event ID for an accepted (not rejected)
/// `m.room.create` event, with the sigil `!` instead of `$`, reject."
#[test]
fn v12_rule_2_room_id_is_accepted_create_event_id() {
    let r = Room::new("12");
    let create = r.get(CREATE, "");
    let msg = r.msg(BOB);
    let check = |ev: &AuthEvent, create: Option<&AuthEvent>| check_auth_events(&r.v, ev, &[], create).is_ok();
    assert!(check(&msg, Some(&create)));
    let mut elsewhere = (*msg).clone();
    for room_id in ["!other", "$create", "!create:example.org"] {
        elsewhere.room_id = Some(room_id.into());
        assert!(!check(&elsewhere, Some(&create)), "{room_id}");
    }
    // The create event was rejected, or is unknown.
    let mut rejected = (*create).clone();
    rejected.rejected = true;
    assert!(!check(&msg, Some(&rejected)));
    assert!(!check(&msg, None));
}

/// v11 2.4 "If there is no `m.room.create` event among the entries, reject."
#[test]
fn v11_rule_2_4_auth_events_without_create() {
    let r = Room::new("11");
    let (msg, base) = (r.msg(BOB), r.base_auth(BOB));
    assert!(r.auth_ok(&msg, &base));
    assert!(!r.auth_ok(&msg, &base[..2]));
}

/// v12 5.3.1: the rule names the create event's *sender*; an additional creator joining right
/// after the create event gets no exception (and, with no join rules, is rejected by 5.3.7).
#[test]
fn v12_rule_5_3_1_join_after_create_not_for_additional_creators() {
    let r = Room::bare("12", json!({"room_version": "12", "additional_creators": [BOB]}));
    r.no(&join_after(&r, BOB, BOB, json!(["$create"])));
}

/// v12 10.4 "If the `users` property in `content` contains the `sender` of the `m.room.create`
/// event or any of the `additional_creators` array (if present) from the `content` of the
/// `m.room.create` event, reject."
#[test]
fn v12_rule_10_4_power_levels_users_without_creators() {
    let r = Room::with("12", json!({"room_version": "12", "additional_creators": [CAROL]}));
    r.yes(&r.pl_ev(ALICE, json!({"users": {BOB: 100}})));
    r.no(&r.pl_ev(ALICE, json!({"users": {ALICE: 100}}))).no(&r.pl_ev(ALICE, json!({"users": {CAROL: 0}})));
    // Also with no previous power levels event (10.4 comes before 10.5).
    r.unset(PL, "").no(&r.state_ev(ALICE, PL, "", json!({"users": {ALICE: 100}})));
}

/// v12: "The power level of "room creators" is infinitely high. Room creators include: the
/// `sender` of the `m.room.create` event …, any user IDs contained in the `additional_creators`
/// array."
#[test]
fn v12_creators_have_infinite_power() {
    let r = Room::with("12", json!({"room_version": "12", "additional_creators": [CAROL]}));
    r.member(CAROL, "join").levels(json!({"users": {BOB: 50}}));
    // Creators outrank any level, and cannot be banned or kicked.
    r.yes(&r.mem(ALICE, MOD, "ban")).yes(&r.mem(CAROL, MOD, "ban"));
    r.no(&r.mem(MOD, CAROL, "ban")).no(&r.mem(MOD, ALICE, "leave"));
    // Creators change any level (10.6–10.10 never stop them); others cannot.
    let content = json!({"users": {MOD: 0, BOB: 0}, "ban": 1000});
    r.yes(&r.state_ev(CAROL, PL, "", content.clone())).no(&r.state_ev(MOD, PL, "", content));
    // Even the highest level a power levels event can hold is below a creator's.
    let max = 9_007_199_254_740_991_i64;
    r.levels(json!({"users": {BOB: max}, "ban": max})).yes(&r.mem(ALICE, BOB, "ban"));
}

/// v11: the creator has no power of its own, but 100 when the room has no power levels event
/// ("Power levels are inferred from defaults"); v12 creators keep infinite power.
#[test]
fn v11_creator_power_only_without_power_levels() {
    for version in ["11", "12"] {
        let r = Room::new(version);
        let topic = |r: &Room, sender| r.state_ev(sender, "m.room.topic", "", json!({}));
        let alice_topic = topic(&r, ALICE);
        r.unset(PL, "").yes(&alice_topic).no(&topic(&r, BOB));
        // Power levels that do not list ALICE: users_default (0) applies to her in v11.
        let pl = r.state_ev(ALICE, PL, "", json!({"users": {MOD: 50}}));
        r.put(pl).expect(version == "12", &alice_topic, "creator not in users");
        // additional_creators means nothing in v11.
        let r = Room::with(version, json!({"room_version": version, "additional_creators": [BOB]}));
        r.unset(PL, "").expect(version == "12", &topic(&r, BOB), "additional creator");
    }
}
