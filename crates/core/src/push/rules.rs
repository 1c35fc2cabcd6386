//! Push rules: the spec's predefined rules, a user's changes to them (stored as the
//! `m.push_rules` account data clients read), and their evaluation.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::server::Homeserver;

pub const KINDS: &[&str] = &["override", "content", "room", "sender", "underride"];

fn rule(id: &str, conditions: Value, actions: Value) -> Value {
    json!({ "rule_id": id, "default": true, "enabled": true, "conditions": conditions, "actions": actions })
}

fn em(key: &str, pattern: &str) -> Value {
    json!({ "kind": "event_match", "key": key, "pattern": pattern })
}

/// The predefined rules of the spec (v1.19), for `user_id` with `localpart`.
pub fn default_rules(user_id: &str, localpart: &str) -> Value {
    let notify_sound = json!(["notify", { "set_tweak": "sound", "value": "default" }]);
    let highlight = json!(["notify", { "set_tweak": "sound", "value": "default" }, { "set_tweak": "highlight" }]);
    let mut master = rule(".m.rule.master", json!([]), json!([]));
    master["enabled"] = false.into();
    json!({
        "override": [
            master,
            rule(".m.rule.suppress_notices", json!([em("content.msgtype", "m.notice")]), json!([])),
            rule(".m.rule.invite_for_me", json!([em("type", "m.room.member"), em("content.membership", "invite"), em("state_key", user_id)]), notify_sound.clone()),
            rule(".m.rule.member_event", json!([em("type", "m.room.member")]), json!([])),
            rule(".m.rule.is_user_mention", json!([{ "kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": user_id }]), highlight.clone()),
            rule(".m.rule.contains_display_name", json!([{ "kind": "contains_display_name" }]), highlight.clone()),
            rule(".m.rule.is_room_mention", json!([
                { "kind": "event_property_is", "key": "content.m\\.mentions.room", "value": true },
                { "kind": "sender_notification_permission", "key": "room" },
            ]), json!(["notify", { "set_tweak": "highlight" }])),
            rule(".m.rule.roomnotif", json!([{ "kind": "sender_notification_permission", "key": "room" }, em("content.body", "@room")]), json!(["notify", { "set_tweak": "highlight" }])),
            rule(".m.rule.tombstone", json!([em("type", "m.room.tombstone"), em("state_key", "")]), json!(["notify", { "set_tweak": "highlight" }])),
            rule(".m.rule.reaction", json!([em("type", "m.reaction")]), json!([])),
            rule(".m.rule.room.server_acl", json!([em("type", "m.room.server_acl"), em("state_key", "")]), json!([])),
            rule(".m.rule.suppress_edits", json!([{ "kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace" }]), json!([])),
        ],
        "content": [{
            "rule_id": ".m.rule.contains_user_name", "default": true, "enabled": true, "pattern": localpart,
            "actions": highlight,
        }],
        "room": [],
        "sender": [],
        "underride": [
            rule(".m.rule.call", json!([em("type", "m.call.invite")]), json!(["notify", { "set_tweak": "sound", "value": "ring" }])),
            rule(".m.rule.encrypted_room_one_to_one", json!([{ "kind": "room_member_count", "is": "2" }, em("type", "m.room.encrypted")]), notify_sound.clone()),
            rule(".m.rule.room_one_to_one", json!([{ "kind": "room_member_count", "is": "2" }, em("type", "m.room.message")]), notify_sound.clone()),
            rule(".m.rule.message", json!([em("type", "m.room.message")]), json!(["notify"])),
            rule(".m.rule.encrypted", json!([em("type", "m.room.encrypted")]), json!(["notify"])),
        ],
    })
}

/// What a rule decided for one event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub notify: bool,
    pub highlight: bool,
}

/// What evaluation needs to know about the room and the reader.
pub struct Context<'a> {
    pub user_id: &'a str,
    pub display_name: Option<&'a str>,
    pub member_count: u64,
    /// The sender's power level and the level `notifications.room` requires.
    pub sender_power: i64,
    pub room_notification_level: i64,
}

/// A dotted key (`content.m\.mentions.user_ids`) into an event.
fn lookup<'v>(event: &'v Value, key: &str) -> Option<&'v Value> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            '.' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts.iter().try_fold(event, |v, p| v.get(p))
}

/// Glob match (`*`, `?`), case-insensitive: push rule patterns, and the server names of
/// server ACLs and federation allow/deny lists.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `pattern` matches a whole word (or run of words) of `body`.
fn word_match(pattern: &str, body: &str) -> bool {
    let words: Vec<&str> = body
        .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '_' && c != '-' && c != '.' && c != ':')
        .filter(|w| !w.is_empty())
        .collect();
    let n = pattern.split_whitespace().count().max(1);
    words.windows(n).any(|w| glob(pattern, &w.join(" ")))
        || words.iter().any(|w| glob(pattern, w.trim_end_matches(['.', ':'])))
}

fn condition_holds(cond: &Value, event: &Value, ctx: &Context<'_>) -> bool {
    match cond["kind"].as_str() {
        Some("event_match") => {
            let (Some(key), Some(pattern)) = (cond["key"].as_str(), cond["pattern"].as_str()) else { return false };
            let Some(value) = lookup(event, key).and_then(Value::as_str) else { return false };
            if key == "content.body" { word_match(pattern, value) } else { glob(pattern, value) }
        }
        Some("event_property_is") => cond["key"].as_str().and_then(|k| lookup(event, k)) == Some(&cond["value"]),
        Some("event_property_contains") => cond["key"]
            .as_str()
            .and_then(|k| lookup(event, k))
            .and_then(Value::as_array)
            .is_some_and(|a| a.contains(&cond["value"])),
        Some("contains_display_name") => match (ctx.display_name, event["content"]["body"].as_str()) {
            (Some(name), Some(body)) if !name.is_empty() => {
                let lower = body.to_lowercase();
                let name = name.to_lowercase();
                lower.match_indices(&name).any(|(i, _)| {
                    let before = lower[..i].chars().next_back();
                    let after = lower[i + name.len()..].chars().next();
                    before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
                })
            }
            _ => false,
        },
        Some("room_member_count") => {
            let is = cond["is"].as_str().unwrap_or_default();
            let (op, n) = match is.find(|c: char| c.is_ascii_digit()) {
                Some(i) => (&is[..i], is[i..].parse::<u64>().unwrap_or(u64::MAX)),
                None => return false,
            };
            let c = ctx.member_count;
            match op {
                "" | "==" => c == n,
                "<" => c < n,
                ">" => c > n,
                "<=" => c <= n,
                ">=" => c >= n,
                _ => false,
            }
        }
        Some("sender_notification_permission") => ctx.sender_power >= ctx.room_notification_level,
        _ => false,
    }
}

/// Runs a ruleset over an event (PDU or client format): the actions of the first enabled rule
/// that matches, or none.
pub fn actions(rules: &Value, event: &Value, ctx: &Context<'_>) -> Vec<Value> {
    for kind in KINDS {
        for rule in rules[*kind].as_array().into_iter().flatten() {
            if rule["enabled"] == false {
                continue;
            }
            let matches = match *kind {
                "content" => rule["pattern"]
                    .as_str()
                    .is_some_and(|p| event["content"]["body"].as_str().is_some_and(|b| word_match(p, b))),
                "room" => event["room_id"] == rule["rule_id"],
                "sender" => event["sender"] == rule["rule_id"],
                _ => rule["conditions"].as_array().is_some_and(|c| c.iter().all(|c| condition_holds(c, event, ctx))),
            };
            if matches {
                return rule["actions"].as_array().cloned().unwrap_or_default();
            }
        }
    }
    Vec::new()
}

impl Outcome {
    /// What a rule's actions mean for the counts.
    pub fn of(actions: &[Value]) -> Outcome {
        let notify = actions.iter().any(|a| a == "notify");
        let highlight = tweaks(actions).get("highlight").is_some_and(|v| *v == true);
        Outcome { notify, highlight: notify && highlight }
    }
}

/// The tweaks a rule's actions set (`highlight` without a value is `true`).
pub fn tweaks(actions: &[Value]) -> Map<String, Value> {
    let mut out = Map::new();
    for a in actions {
        if let Some(name) = a["set_tweak"].as_str() {
            out.insert(name.to_owned(), a.get("value").cloned().unwrap_or(Value::Bool(true)));
        }
    }
    out
}

/// [`actions`], reduced to what they mean for the counts.
pub fn evaluate(rules: &Value, event: &Value, ctx: &Context<'_>) -> Outcome {
    Outcome::of(&actions(rules, event, ctx))
}

impl Homeserver {
    /// A user's ruleset: the stored one, or the predefined rules.
    pub fn push_rules(&self, user_id: &str) -> Result<Value> {
        match self.account_data(user_id, None, "m.push_rules") {
            Ok(v) if v.get("global").is_some() => Ok(v["global"].clone()),
            _ => {
                let localpart = user_id.trim_start_matches('@').split(':').next().unwrap_or_default();
                Ok(default_rules(user_id, localpart))
            }
        }
    }

    fn save_push_rules(&self, user_id: &str, rules: Value) -> Result<()> {
        self.put_account_data(user_id, None, "m.push_rules", json!({ "global": rules }))
    }

    /// Finds a rule: `(kind index, position)`.
    fn find_rule(rules: &Value, kind: &str, rule_id: &str) -> Option<usize> {
        rules[kind].as_array()?.iter().position(|r| r["rule_id"] == rule_id)
    }

    pub fn push_rule(&self, user_id: &str, kind: &str, rule_id: &str) -> Result<Value> {
        check_kind(kind)?;
        let rules = self.push_rules(user_id)?;
        let i = Self::find_rule(&rules, kind, rule_id).ok_or_else(|| Error::not_found("Unknown rule"))?;
        Ok(rules[kind][i].clone())
    }

    /// Adds or replaces a user-defined rule (`before`/`after` place it among the user's rules).
    pub fn set_push_rule(
        &self,
        user_id: &str,
        kind: &str,
        rule_id: &str,
        body: &Map<String, Value>,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<()> {
        check_kind(kind)?;
        if rule_id.starts_with('.') {
            return Err(Error::invalid_param("cannot add new rule_ids with a leading '.'"));
        }
        let actions =
            body.get("actions").and_then(Value::as_array).ok_or_else(|| Error::bad_json("actions missing"))?;
        let mut rule = json!({ "rule_id": rule_id, "default": false, "enabled": true, "actions": actions });
        match kind {
            "content" => {
                let pattern =
                    body.get("pattern").and_then(Value::as_str).ok_or_else(|| Error::bad_json("pattern missing"))?;
                rule["pattern"] = pattern.into();
            }
            "override" | "underride" => {
                rule["conditions"] = body.get("conditions").cloned().unwrap_or_else(|| json!([]));
            }
            _ => {}
        }
        let mut rules = self.push_rules(user_id)?;
        let list = rules[kind].as_array_mut().ok_or_else(|| Error::internal("ruleset"))?;
        list.retain(|r| r["rule_id"] != rule_id);
        let anchor = |id: &str| list.iter().position(|r| r["rule_id"] == id);
        let at = match (before, after) {
            (Some(b), _) => anchor(b).ok_or_else(|| Error::not_found("before rule not found"))?,
            (None, Some(a)) => anchor(a).ok_or_else(|| Error::not_found("after rule not found"))? + 1,
            // New user rules go before the predefined ones of their kind.
            (None, None) => list.iter().position(|r| r["default"] == true).unwrap_or(list.len()),
        };
        list.insert(at, rule);
        self.save_push_rules(user_id, rules)
    }

    pub fn delete_push_rule(&self, user_id: &str, kind: &str, rule_id: &str) -> Result<()> {
        check_kind(kind)?;
        let mut rules = self.push_rules(user_id)?;
        let i = Self::find_rule(&rules, kind, rule_id).ok_or_else(|| Error::not_found("Unknown rule"))?;
        if rules[kind][i]["default"] == true {
            return Err(Error::invalid_param("cannot delete a predefined rule"));
        }
        rules[kind].as_array_mut().expect("array").remove(i);
        self.save_push_rules(user_id, rules)
    }

    /// Sets a rule's `enabled` flag or `actions`.
    pub fn set_push_rule_attr(&self, user_id: &str, kind: &str, rule_id: &str, attr: &str, value: Value) -> Result<()> {
        check_kind(kind)?;
        match attr {
            "enabled" if value.is_boolean() => {}
            "actions" if value.is_array() => {}
            _ => return Err(Error::bad_json(format!("invalid {attr}"))),
        }
        let mut rules = self.push_rules(user_id)?;
        let i = Self::find_rule(&rules, kind, rule_id).ok_or_else(|| Error::not_found("Unknown rule"))?;
        rules[kind][i][attr] = value;
        self.save_push_rules(user_id, rules)
    }
}

fn check_kind(kind: &str) -> Result<()> {
    if KINDS.contains(&kind) { Ok(()) } else { Err(Error::invalid_param(format!("Unknown push rule kind {kind:?}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            user_id: "@bob:x",
            display_name: Some("Bob"),
            member_count: 3,
            sender_power: 0,
            room_notification_level: 50,
        }
    }

    fn msg(body: &str) -> Value {
        json!({ "type": "m.room.message", "sender": "@a:x", "room_id": "!r:x", "content": { "msgtype": "m.text", "body": body } })
    }

    #[test]
    fn defaults() {
        let rules = default_rules("@bob:x", "bob");
        assert_eq!(evaluate(&rules, &msg("hello"), &ctx()), Outcome { notify: true, highlight: false });
        assert_eq!(evaluate(&rules, &msg("hey Bob!"), &ctx()), Outcome { notify: true, highlight: true });
        assert_eq!(evaluate(&rules, &msg("bobby"), &ctx()), Outcome { notify: true, highlight: false });
        assert_eq!(evaluate(&rules, &msg("@room look"), &ctx()), Outcome { notify: true, highlight: false });
        let notice = json!({ "type": "m.room.message", "content": { "msgtype": "m.notice", "body": "Bob" } });
        assert_eq!(evaluate(&rules, &notice, &ctx()), Outcome::default());
        let mention =
            json!({ "type": "m.room.message", "content": { "body": "x", "m.mentions": { "user_ids": ["@bob:x"] } } });
        assert!(evaluate(&rules, &mention, &ctx()).highlight);
        let member = json!({ "type": "m.room.member", "state_key": "@c:x", "content": { "membership": "join" } });
        assert_eq!(evaluate(&rules, &member, &ctx()), Outcome::default());
    }

    #[test]
    fn globs() {
        assert!(glob("m.room.*", "m.room.message"));
        assert!(glob("b?b", "BOB"));
        assert!(!glob("m.room.*", "m.call"));
        assert!(word_match("bob", "hi bob."));
        assert!(!word_match("bob", "bobby"));
    }
}
