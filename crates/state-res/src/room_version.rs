//! What changes between room versions, as flags the rules consult.
//!
//! Each flag names the spec change it stands for, so a rule reads as the spec does
//! ("if the room version supports knocking …") instead of comparing version numbers.

use crate::Error;

/// Which state resolution algorithm a room version uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateResAlgorithm {
    /// Room version 1.
    V1,
    /// Room versions 2 to 11.
    V2,
    /// Room version 12 (MSC4297): iterative auth checks start from the empty state and the
    /// conflicted state subgraph joins the full conflicted set.
    V2_1,
}

/// The rules of one room version that authorization and state resolution depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomVersion {
    /// The version identifier, `"1"` to `"12"`.
    pub id: &'static str,
    pub state_res: StateResAlgorithm,
    /// v1–v2: event ids carry the origin's domain, and `m.room.redaction` is authorized by the
    /// redact level or by matching domains (v1 auth rule 11).
    pub event_ids_have_domain: bool,
    /// v1–v5: `m.room.aliases` has its own auth rule (v1 rule 4).
    pub special_case_aliases: bool,
    /// v1–v5: power level values may be floats (truncated).
    pub floaty_power_levels: bool,
    /// v1–v9: power level values may be strings holding integers.
    pub stringy_power_levels: bool,
    /// v6+: the `notifications` property of power levels is checked like `events`.
    pub limit_notifications_power_levels: bool,
    /// v7+: `knock` membership and join rule.
    pub knocking: bool,
    /// v8+: `restricted` join rule and `join_authorised_via_users_server`.
    pub restricted_join: bool,
    /// v10+: `knock_restricted` join rule.
    pub knock_restricted: bool,
    /// v10+: power level values must be integers.
    pub integer_power_levels: bool,
    /// v11+: the creator is the create event's `sender`; `content.creator` is not required.
    pub creator_is_sender: bool,
    /// v12+: the room id is the create event's id, the create event is not in `auth_events`,
    /// creators (sender and `additional_creators`) have infinite power.
    pub room_id_is_create_event_id: bool,
}

const V1: RoomVersion = RoomVersion {
    id: "1",
    state_res: StateResAlgorithm::V1,
    event_ids_have_domain: true,
    special_case_aliases: true,
    floaty_power_levels: true,
    stringy_power_levels: true,
    limit_notifications_power_levels: false,
    knocking: false,
    restricted_join: false,
    knock_restricted: false,
    integer_power_levels: false,
    creator_is_sender: false,
    room_id_is_create_event_id: false,
};

impl RoomVersion {
    /// The rules of a room version the spec defines (`"1"` to `"12"`).
    pub fn new(id: &str) -> Result<Self, Error> {
        Self::known(id).ok_or_else(|| Error::UnsupportedRoomVersion(id.to_owned()))
    }

    /// The rules of `id`, or `None` if it is not a version this crate knows.
    pub fn known(id: &str) -> Option<Self> {
        let n: u8 = match id {
            "1" => 1,
            "2" => 2,
            "3" => 3,
            "4" => 4,
            "5" => 5,
            "6" => 6,
            "7" => 7,
            "8" => 8,
            "9" => 9,
            "10" => 10,
            "11" => 11,
            "12" => 12,
            _ => return None,
        };
        const IDS: [&str; 12] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];
        Some(RoomVersion {
            id: IDS[usize::from(n - 1)],
            state_res: match n {
                1 => StateResAlgorithm::V1,
                2..=11 => StateResAlgorithm::V2,
                _ => StateResAlgorithm::V2_1,
            },
            event_ids_have_domain: n <= 2,
            special_case_aliases: n <= 5,
            floaty_power_levels: n <= 5,
            stringy_power_levels: n <= 9,
            limit_notifications_power_levels: n >= 6,
            knocking: n >= 7,
            restricted_join: n >= 8,
            knock_restricted: n >= 10,
            integer_power_levels: n >= 10,
            creator_is_sender: n >= 11,
            room_id_is_create_event_id: n >= 12,
        })
    }

    /// Room version 1.
    pub const V1: RoomVersion = V1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_algorithms() {
        assert_eq!(RoomVersion::new("1").unwrap(), RoomVersion::V1);
        assert_eq!(RoomVersion::new("2").unwrap().state_res, StateResAlgorithm::V2);
        assert_eq!(RoomVersion::new("11").unwrap().state_res, StateResAlgorithm::V2);
        assert_eq!(RoomVersion::new("12").unwrap().state_res, StateResAlgorithm::V2_1);
        assert_eq!(RoomVersion::new("12").unwrap().id, "12");
        assert!(RoomVersion::new("13").is_err());
        assert!(RoomVersion::new("org.example.custom").is_err());
        assert!(RoomVersion::new("").is_err());
    }
}
