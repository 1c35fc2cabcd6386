//! `m.room.power_levels` content, parsed once with the room version's number rules.

use serde_json::{Map, Value};

use super::{Power, is_valid_user_id};
use crate::RoomVersion;

/// The integer-valued top-level properties, in the order the auth rules list them.
pub const LEVEL_KEYS: [&str; 7] =
    ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"];

/// Power levels content. Absent properties are `None`; the getters apply the spec's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PowerLevels {
    /// The values of [`LEVEL_KEYS`], in that order.
    pub levels: [Option<Power>; 7],
    /// Sorted by user id.
    pub users: Vec<(Box<str>, Power)>,
    /// Sorted by event type.
    pub events: Vec<(Box<str>, Power)>,
    /// Sorted by key.
    pub notifications: Vec<(Box<str>, Power)>,
}

impl PowerLevels {
    pub fn users_default(&self) -> Power {
        self.levels[0].unwrap_or(0)
    }
    pub fn events_default(&self) -> Power {
        self.levels[1].unwrap_or(0)
    }
    pub fn state_default(&self) -> Power {
        self.levels[2].unwrap_or(50)
    }
    pub fn ban(&self) -> Power {
        self.levels[3].unwrap_or(50)
    }
    pub fn redact(&self) -> Power {
        self.levels[4].unwrap_or(50)
    }
    pub fn kick(&self) -> Power {
        self.levels[5].unwrap_or(50)
    }
    pub fn invite(&self) -> Power {
        self.levels[6].unwrap_or(0)
    }

    pub fn user(&self, user_id: &str) -> Option<Power> {
        lookup(&self.users, user_id)
    }

    pub fn event(&self, event_type: &str) -> Option<Power> {
        lookup(&self.events, event_type)
    }

    /// Parses `content` under the number rules of `version`; `Err` says which format rule of
    /// the `m.room.power_levels` authorization rules the content breaks.
    pub fn from_content(content: &Map<String, Value>, version: &RoomVersion) -> Result<Self, &'static str> {
        let mut pl = PowerLevels::default();
        for (slot, key) in pl.levels.iter_mut().zip(LEVEL_KEYS) {
            if let Some(v) = content.get(key) {
                *slot = Some(parse_level(v, version).ok_or("a top-level power level is not an integer")?);
            }
        }
        pl.events =
            parse_map(content.get("events"), version, |_| true).ok_or("`events` is not an object of integers")?;
        pl.notifications = parse_map(content.get("notifications"), version, |_| true)
            .ok_or("`notifications` is not an object of integers")?;
        pl.users = parse_map(content.get("users"), version, is_valid_user_id)
            .ok_or("`users` is not an object of user ids to integers")?;
        Ok(pl)
    }
}

fn lookup(map: &[(Box<str>, Power)], key: &str) -> Option<Power> {
    map.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| map[i].1)
}

fn parse_map(
    value: Option<&Value>,
    version: &RoomVersion,
    valid_key: impl Fn(&str) -> bool,
) -> Option<Vec<(Box<str>, Power)>> {
    let Some(value) = value else { return Some(Vec::new()) };
    let obj = value.as_object()?;
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        if !valid_key(k) {
            return None;
        }
        out.push((k.as_str().into(), parse_level(v, version)?));
    }
    // serde_json's default map is ordered by key already; sorting keeps this true whatever
    // features another crate turns on.
    out.sort_unstable_by(|a: &(Box<str>, Power), b| a.0.cmp(&b.0));
    Some(out)
}

/// Integers always; strings (v1–v9) and floats (v1–v5) where the room version allows them.
pub(crate) fn parse_level(v: &Value, version: &RoomVersion) -> Option<Power> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(clamp(i))
            } else if n.is_u64() {
                Some(clamp(i64::MAX))
            } else if version.floaty_power_levels {
                let f = n.as_f64()?;
                f.is_finite().then(|| clamp(f.trunc() as i64))
            } else {
                None
            }
        }
        Value::String(s) if version.stringy_power_levels => parse_stringy(s),
        _ => None,
    }
}

/// "A single base 10 integer … optionally prefixed with `-` or `+` … optionally with leading or
/// trailing whitespace."
fn parse_stringy(s: &str) -> Option<Power> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut acc: i128 = 0;
    for b in digits.bytes() {
        acc = (acc * 10 + i128::from(b - b'0')).min(i128::from(i64::MAX));
    }
    let v = if neg { -acc } else { acc };
    Some(clamp(v as i64))
}

/// Keeps stored levels strictly below [`super::INFINITE_POWER`], which only creators hold.
fn clamp(v: i64) -> Power {
    v.clamp(i64::MIN + 1, i64::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, version: &str) -> Result<PowerLevels, &'static str> {
        PowerLevels::from_content(v.as_object().unwrap(), &RoomVersion::new(version).unwrap())
    }

    #[test]
    fn defaults() {
        let pl = parse(json!({}), "11").unwrap();
        assert_eq!((pl.users_default(), pl.events_default(), pl.state_default()), (0, 0, 50));
        assert_eq!((pl.ban(), pl.kick(), pl.redact(), pl.invite()), (50, 50, 50, 0));
    }

    #[test]
    fn stringy_and_floaty_by_version() {
        let c = json!({"ban": " +007 ", "users": {"@a:x": "-3"}});
        let pl = parse(c.clone(), "9").unwrap();
        assert_eq!((pl.ban(), pl.user("@a:x")), (7, Some(-3)));
        assert!(parse(c, "10").is_err());
        assert_eq!(parse(json!({"kick": 5.114698E4}), "5").unwrap().kick(), 51146);
        assert!(parse(json!({"kick": 1.5}), "6").is_err());
        assert!(parse(json!({"kick": "1.5"}), "6").is_err());
        assert!(parse(json!({"kick": "12a"}), "6").is_err());
    }

    #[test]
    fn bad_users_rejected() {
        assert!(parse(json!({"users": {"not-a-user": 1}}), "11").is_err());
        assert!(parse(json!({"users": []}), "11").is_err());
        assert!(parse(json!({"events": {"m.room.name": true}}), "11").is_err());
        assert!(parse(json!({"notifications": {"room": "x"}}), "11").is_err());
    }
}
