//! Rule 10: `m.room.power_levels` events.

use super::{Inputs, PowerCtx, Rejection, is_creator};
use crate::RoomVersion;
use crate::event::{AuthEvent, Content, Power};

pub(super) fn check(v: &RoomVersion, event: &AuthEvent, s: &Inputs<'_>, power: &PowerCtx<'_>) -> Result<(), Rejection> {
    // 10.1–10.3: the format, checked when the content was parsed.
    let new = match &event.content {
        Content::PowerLevels(Ok(pl)) => pl,
        Content::PowerLevels(Err(why)) => return Err(Rejection(why)),
        _ => return Err(Rejection("m.room.power_levels without power levels content")),
    };
    // 10.4 (v12)
    if v.room_id_is_create_event_id
        && let Some(create) = s.create
        && new.users.iter().any(|(u, _)| is_creator(v, create, u))
    {
        return Err(Rejection("power levels list a room creator in users"));
    }
    // 10.5
    let Some(old) = s.power_levels else { return Ok(()) };
    let default = Default::default();
    let old = old.power_levels().unwrap_or(&default);
    let sender = &*event.sender;
    let sender_power = power.user(sender);

    // 10.6
    for (old_v, new_v) in old.levels.iter().zip(&new.levels) {
        if old_v != new_v && (above(*old_v, sender_power) || above(*new_v, sender_power)) {
            return Err(Rejection("a changed default level is above the sender's level"));
        }
    }
    // 10.7, 10.8
    let mut maps = vec![(&old.events, &new.events)];
    if v.limit_notifications_power_levels {
        maps.push((&old.notifications, &new.notifications));
    }
    for (old_map, new_map) in maps {
        for (_, old_v, new_v) in changes(old_map, new_map) {
            if above(old_v, sender_power) || above(new_v, sender_power) {
                return Err(Rejection("a changed event level is above the sender's level"));
            }
        }
    }
    // 10.9, 10.10
    for (user, old_v, new_v) in changes(&old.users, &new.users) {
        if user != sender && old_v.is_some_and(|o| o >= sender_power) {
            return Err(Rejection("changes the level of a user at or above the sender's level"));
        }
        if above(new_v, sender_power) {
            return Err(Rejection("gives a user a level above the sender's"));
        }
    }
    Ok(())
}

fn above(value: Option<Power>, sender_power: Power) -> bool {
    value.is_some_and(|v| v > sender_power)
}

/// The keys whose values differ between two sorted maps, with the old and new values.
fn changes<'a>(
    old: &'a [(Box<str>, Power)],
    new: &'a [(Box<str>, Power)],
) -> impl Iterator<Item = (&'a str, Option<Power>, Option<Power>)> {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        loop {
            let item = match (old.get(i), new.get(j)) {
                (None, None) => return None,
                (Some((k, o)), None) => {
                    i += 1;
                    (&**k, Some(*o), None)
                }
                (None, Some((k, n))) => {
                    j += 1;
                    (&**k, None, Some(*n))
                }
                (Some((ko, o)), Some((kn, n))) => match ko.cmp(kn) {
                    std::cmp::Ordering::Less => {
                        i += 1;
                        (&**ko, Some(*o), None)
                    }
                    std::cmp::Ordering::Greater => {
                        j += 1;
                        (&**kn, None, Some(*n))
                    }
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        j += 1;
                        (&**ko, Some(*o), Some(*n))
                    }
                },
            };
            if item.1 != item.2 {
                return Some(item);
            }
        }
    })
}
