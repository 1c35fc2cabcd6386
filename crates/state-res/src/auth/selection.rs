//! Auth events selection: which state events give an event its permission.

use crate::RoomVersion;
use crate::event::{AuthEvent, Content, EventType, Membership};

pub(crate) const SLOTS: usize = 7;

/// One state key the authorization rules read for an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKey<'a> {
    Create,
    PowerLevels,
    JoinRules,
    /// The sender's membership.
    Sender(&'a str),
    /// The target's membership (a member event's `state_key`).
    Target(&'a str),
    /// The membership of `join_authorised_via_users_server`.
    Authoriser(&'a str),
    /// The `m.room.third_party_invite` named by the invite's token.
    ThirdPartyInvite(&'a str),
}

impl<'a> AuthKey<'a> {
    pub fn kind(&self) -> EventType {
        match self {
            Self::Create => EventType::Create,
            Self::PowerLevels => EventType::PowerLevels,
            Self::JoinRules => EventType::JoinRules,
            Self::Sender(_) | Self::Target(_) | Self::Authoriser(_) => EventType::Member,
            Self::ThirdPartyInvite(_) => EventType::ThirdPartyInvite,
        }
    }

    pub fn state_key(&self) -> &'a str {
        match *self {
            Self::Create | Self::PowerLevels | Self::JoinRules => "",
            Self::Sender(s) | Self::Target(s) | Self::Authoriser(s) | Self::ThirdPartyInvite(s) => s,
        }
    }

    pub(crate) fn slot(&self) -> usize {
        match self {
            Self::Create => 0,
            Self::PowerLevels => 1,
            Self::JoinRules => 2,
            Self::Sender(_) => 3,
            Self::Target(_) => 4,
            Self::Authoriser(_) => 5,
            Self::ThirdPartyInvite(_) => 6,
        }
    }
}

/// Every key the rules may read for `event`, the create event included in all versions.
pub(crate) fn lookup_keys<'a>(v: &RoomVersion, event: &'a AuthEvent) -> impl Iterator<Item = AuthKey<'a>> {
    let mut keys: [Option<AuthKey<'a>>; SLOTS] = [None; SLOTS];
    keys[0] = Some(AuthKey::Create);
    keys[1] = Some(AuthKey::PowerLevels);
    keys[3] = Some(AuthKey::Sender(&event.sender));
    if let (EventType::Member, Some(target), Content::Member(m)) = (&event.kind, event.state_key(), &event.content) {
        keys[4] = Some(AuthKey::Target(target));
        if matches!(m.membership, Some(Membership::Join | Membership::Invite | Membership::Knock)) {
            keys[2] = Some(AuthKey::JoinRules);
        }
        if m.membership == Some(Membership::Invite)
            && let Some(Some(signed)) = &m.third_party_invite
            && let Some(token) = &signed.token
        {
            keys[6] = Some(AuthKey::ThirdPartyInvite(token));
        }
        if m.membership == Some(Membership::Join)
            && v.restricted_join
            && let Some(via) = &m.join_authorised_via_users_server
        {
            keys[5] = Some(AuthKey::Authoriser(via));
        }
    }
    keys.into_iter().flatten()
}

/// The `(type, state_key)` pairs an event's `auth_events` should hold, as the server-server
/// API's auth events selection gives them (without the create event from v12 on).
pub fn auth_types_for_event(v: &RoomVersion, event: &AuthEvent) -> Vec<(EventType, Box<str>)> {
    if event.kind == EventType::Create {
        return Vec::new();
    }
    let mut out: Vec<(EventType, Box<str>)> = Vec::with_capacity(SLOTS);
    for key in lookup_keys(v, event) {
        if key == AuthKey::Create && v.room_id_is_create_event_id {
            continue;
        }
        let pair = (key.kind(), key.state_key().into());
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}
