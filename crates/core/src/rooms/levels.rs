//! Power levels as numbers: which keys of `m.room.power_levels` hold levels, refusing
//! clients' non-integer levels and turning old rooms' strings and floats into integers.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The keys whose value is a level.
const LEVELS: &[&str] = &["ban", "events_default", "invite", "kick", "redact", "state_default", "users_default"];
/// The keys whose value maps names (users, event types, notification kinds) to levels.
const LEVEL_MAPS: &[&str] = &["users", "events", "notifications"];

/// Power levels a client sends must hold integers, whatever the room version allows over
/// federation (strings and floats before version 10): Synapse refuses them the same way.
pub(crate) fn integers_only(content: &Value) -> Result<()> {
    let not_integer = |key: &str, v: &Value| Error::bad_json(format!("\"{key}\": {v} is not of type 'integer'"));
    let Some(levels) = content.as_object() else { return Ok(()) };
    for (key, value) in levels {
        if LEVELS.contains(&key.as_str()) && !value.is_i64() {
            return Err(not_integer(key, value));
        }
        if LEVEL_MAPS.contains(&key.as_str()) {
            let map = value.as_object().ok_or_else(|| Error::bad_json(format!("\"{key}\" must be an object")))?;
            if let Some((k, v)) = map.iter().find(|(_, v)| !v.is_i64()) {
                return Err(not_integer(&format!("{key}.{k}"), v));
            }
        }
    }
    Ok(())
}

/// Power levels with every level an integer: rooms before version 10 allow strings holding
/// integers (and before version 6 floats), which the version of a room upgraded to may refuse.
pub(crate) fn to_integers(mut content: Map<String, Value>) -> Map<String, Value> {
    fn integer(value: &Value) -> Option<Value> {
        match value {
            Value::Number(n) if n.is_i64() => None,
            Value::Number(n) => n.as_f64().map(|f| (f.trunc() as i64).into()),
            Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
            _ => None,
        }
    }
    for (key, value) in content.iter_mut() {
        let levels: Vec<&mut Value> = match value {
            Value::Object(map) if LEVEL_MAPS.contains(&key.as_str()) => map.values_mut().collect(),
            _ if LEVELS.contains(&key.as_str()) => vec![value],
            _ => continue,
        };
        for level in levels {
            if let Some(fixed) = integer(level) {
                *level = fixed;
            }
        }
    }
    content
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::to_integers;

    #[test]
    fn levels_of_old_rooms_become_integers() {
        let Value::Object(old) = json!({
            "ban": "50", "kick": 50.7, "invite": 0, "users_default": " 10 ",
            "users": { "@a:x": "100", "@b:x": 20 }, "events": { "m.room.name": 50.0 },
            "notifications": { "room": "50" }, "other": "not a level"
        }) else {
            unreachable!()
        };
        let fixed = Value::Object(to_integers(old));
        assert_eq!(
            fixed,
            json!({
                "ban": 50, "kick": 50, "invite": 0, "users_default": 10,
                "users": { "@a:x": 100, "@b:x": 20 }, "events": { "m.room.name": 50 },
                "notifications": { "room": 50 }, "other": "not a level"
            })
        );
    }
}
