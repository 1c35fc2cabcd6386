//! The authorization rules of room versions 1–12.
//!
//! [`authorize`] checks an event against a room state (the spec's rules 1 and 4 onwards: the
//! rules that read state); [`check_auth_events`] checks the event's own `auth_events` list (rules
//! 2 and 3). Receiving a PDU runs the second once and the first against the auth events, the
//! state before the event and the current state. Signatures, including the one rule 5.2 asks of
//! `join_authorised_via_users_server`, are checked by the caller with the server keys it holds.

mod auth_events;
mod member;
mod power_levels;
mod selection;
mod third_party_invite;

use std::sync::Arc;

pub use auth_events::check_auth_events;
pub use selection::{AuthKey, auth_types_for_event};

use crate::RoomVersion;
use crate::event::{AuthEvent, Content, EventType, INFINITE_POWER, Power, server_of};

/// Why the authorization rules reject an event; the text names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rejected: {0}")]
pub struct Rejection(pub &'static str);

/// A room state to authorize against.
pub trait AuthState {
    /// The state event at `(kind, state_key)`, if there is one.
    fn get(&self, kind: &EventType, state_key: &str) -> Option<Arc<AuthEvent>>;
}

impl<F> AuthState for F
where
    F: Fn(&EventType, &str) -> Option<Arc<AuthEvent>>,
{
    fn get(&self, kind: &EventType, state_key: &str) -> Option<Arc<AuthEvent>> {
        self(kind, state_key)
    }
}

/// Checks `event` against the authorization rules of `version` in the room state `state`.
pub fn authorize(version: &RoomVersion, event: &AuthEvent, state: &impl AuthState) -> Result<(), Rejection> {
    let inputs = AuthInputs::gather(version, event, |key| state.get(&key.kind(), key.state_key()));
    check(version, event, &inputs.view())
}

/// The state events the rules read for one event, found by [`auth_types_for_event`]'s keys.
#[derive(Default)]
pub(crate) struct AuthInputs {
    slots: [Option<Arc<AuthEvent>>; selection::SLOTS],
}

impl AuthInputs {
    pub(crate) fn gather(
        version: &RoomVersion,
        event: &AuthEvent,
        mut get: impl FnMut(AuthKey<'_>) -> Option<Arc<AuthEvent>>,
    ) -> Self {
        let mut inputs = AuthInputs::default();
        for key in selection::lookup_keys(version, event) {
            inputs.slots[key.slot()] = get(key);
        }
        inputs
    }

    pub(crate) fn view(&self) -> Inputs<'_> {
        let [create, power_levels, join_rules, sender, target, authoriser, third_party_invite] =
            self.slots.each_ref().map(Option::as_deref);
        Inputs { create, power_levels, join_rules, sender, target, authoriser, third_party_invite }
    }
}

/// Borrowed [`AuthInputs`]: what each rule reads, by its role.
pub(crate) struct Inputs<'a> {
    pub create: Option<&'a AuthEvent>,
    pub power_levels: Option<&'a AuthEvent>,
    pub join_rules: Option<&'a AuthEvent>,
    /// The sender's membership event.
    pub sender: Option<&'a AuthEvent>,
    /// The target's (`state_key`'s) membership event, for member events.
    pub target: Option<&'a AuthEvent>,
    /// The membership event of `join_authorised_via_users_server`.
    pub authoriser: Option<&'a AuthEvent>,
    pub third_party_invite: Option<&'a AuthEvent>,
}

/// The rules, given the state they read.
pub(crate) fn check(v: &RoomVersion, event: &AuthEvent, s: &Inputs<'_>) -> Result<(), Rejection> {
    // Rule 1.
    if event.kind == EventType::Create {
        return check_create(v, event);
    }
    let create = s.create.filter(|c| c.is(&EventType::Create)).ok_or(Rejection("no m.room.create in state"))?;
    let Content::Create(create_content) = &create.content else {
        return Err(Rejection("no m.room.create in state"));
    };
    // Rule 4 (v1: rule 3).
    if !create_content.federate && server_of(&event.sender) != server_of(&create.sender) {
        return Err(Rejection("m.federate is false and the sender is of another server"));
    }
    // v1–v5 rule 4.
    if v.special_case_aliases && event.kind == EventType::Aliases {
        return match event.state_key() {
            None => Err(Rejection("m.room.aliases without a state_key")),
            Some(sk) if server_of(&event.sender) != Some(sk) => {
                Err(Rejection("m.room.aliases state_key is not the sender's server"))
            }
            Some(_) => Ok(()),
        };
    }
    let power = PowerCtx::new(v, create, s.power_levels);
    // Rule 5.
    if event.kind == EventType::Member {
        return member::check(v, event, s, &power);
    }
    // Rule 6.
    if membership_of(s.sender) != Some(crate::Membership::Join) {
        return Err(Rejection("the sender is not joined to the room"));
    }
    let sender_power = power.user(&event.sender);
    // Rule 7.
    if event.kind == EventType::ThirdPartyInvite {
        return if sender_power >= power.levels().invite() {
            Ok(())
        } else {
            Err(Rejection("m.room.third_party_invite needs the invite level"))
        };
    }
    // Rule 8.
    if power.required_for(event) > sender_power {
        return Err(Rejection("the sender's power level is below the event's required level"));
    }
    // Rule 9.
    if let Some(sk) = event.state_key()
        && sk.starts_with('@')
        && sk != &*event.sender
    {
        return Err(Rejection("a state_key starting with @ must be the sender"));
    }
    // Rule 10.
    if event.is(&EventType::PowerLevels) {
        return power_levels::check(v, event, s, &power);
    }
    // v1–v2 rule 11.
    if v.event_ids_have_domain && event.kind == EventType::Redaction {
        if sender_power >= power.levels().redact() {
            return Ok(());
        }
        let redacts = match &event.content {
            Content::Redaction(r) => r.as_deref(),
            _ => None,
        };
        return match redacts {
            Some(r) if server_of(r).is_some() && server_of(r) == server_of(&event.event_id) => Ok(()),
            _ => Err(Rejection("redaction of another server's event below the redact level")),
        };
    }
    Ok(())
}

fn check_create(v: &RoomVersion, event: &AuthEvent) -> Result<(), Rejection> {
    let Content::Create(c) = &event.content else { return Err(Rejection("m.room.create without create content")) };
    if !event.prev_events.is_empty() {
        return Err(Rejection("m.room.create has prev_events"));
    }
    if v.room_id_is_create_event_id {
        if event.room_id.is_some() {
            return Err(Rejection("v12 m.room.create has a room_id"));
        }
    } else {
        let room_server = event.room_id.as_deref().and_then(server_of);
        if room_server.is_none() || room_server != server_of(&event.sender) {
            return Err(Rejection("m.room.create room_id is not of the sender's server"));
        }
    }
    if c.unknown_room_version {
        return Err(Rejection("m.room.create names an unknown room_version"));
    }
    if !v.creator_is_sender && c.creator.is_none() {
        return Err(Rejection("m.room.create has no creator"));
    }
    if v.room_id_is_create_event_id && c.additional_creators.is_err() {
        return Err(Rejection("additional_creators is not a list of user ids"));
    }
    Ok(())
}

pub(crate) fn membership_of(member: Option<&AuthEvent>) -> Option<crate::Membership> {
    member.and_then(AuthEvent::membership)
}

/// Power levels as the rules read them: the room's power levels event, or the defaults the
/// spec gives when there is none, and the creators.
pub(crate) struct PowerCtx<'a> {
    v: &'a RoomVersion,
    create: &'a AuthEvent,
    levels: Option<&'a crate::PowerLevels>,
    default_levels: crate::PowerLevels,
}

impl<'a> PowerCtx<'a> {
    pub(crate) fn new(v: &'a RoomVersion, create: &'a AuthEvent, pl: Option<&'a AuthEvent>) -> Self {
        PowerCtx { v, create, levels: pl.and_then(AuthEvent::power_levels), default_levels: Default::default() }
    }

    pub(crate) fn levels(&self) -> &crate::PowerLevels {
        self.levels.unwrap_or(&self.default_levels)
    }

    pub(crate) fn user(&self, user: &str) -> Power {
        user_power(self.v, Some(self.create), self.levels, user)
    }

    /// The level needed to send `event`: its type's entry in `events`, else the state or
    /// event default.
    pub(crate) fn required_for(&self, event: &AuthEvent) -> Power {
        let levels = self.levels();
        levels.event(event.kind.as_str()).unwrap_or(if event.is_state() {
            levels.state_default()
        } else {
            levels.events_default()
        })
    }
}

/// The creators of a room: v12 the create event's sender and `additional_creators`, v11 its
/// sender, before that `content.creator`.
pub fn is_creator(v: &RoomVersion, create: &AuthEvent, user: &str) -> bool {
    let Content::Create(c) = &create.content else { return false };
    if v.room_id_is_create_event_id {
        &*create.sender == user || c.additional_creators.as_ref().is_ok_and(|a| a.iter().any(|u| &**u == user))
    } else if v.creator_is_sender {
        &*create.sender == user
    } else {
        c.creator.as_deref() == Some(user)
    }
}

/// The room's original creator, whose join may follow the create event directly (rule
/// 5.3.1): the create event's sender from v11 on (not the v12 `additional_creators`),
/// `content.creator` before.
pub(crate) fn is_original_creator(v: &RoomVersion, create: &AuthEvent, user: &str) -> bool {
    let Content::Create(c) = &create.content else { return false };
    if v.creator_is_sender { &*create.sender == user } else { c.creator.as_deref() == Some(user) }
}

/// A user's power level given the create event and the power levels in force.
pub fn user_power(
    v: &RoomVersion,
    create: Option<&AuthEvent>,
    levels: Option<&crate::PowerLevels>,
    user: &str,
) -> Power {
    let creator = create.is_some_and(|c| is_creator(v, c, user));
    if v.room_id_is_create_event_id && creator {
        return INFINITE_POWER;
    }
    match levels {
        Some(pl) => pl.user(user).unwrap_or(pl.users_default()),
        None if creator => 100,
        None => 0,
    }
}
