//! The compact, pre-parsed view of an event that authorization and resolution read.
//!
//! A server builds it once per event (from the PDU's JSON, see [`AuthEvent::from_json`]) and
//! keeps it; nothing in the checking and sorting loops parses JSON again.

mod parse;
mod power_levels;

pub use power_levels::PowerLevels;

/// A dense integer standing for an event id, assigned by the caller (storage's short event id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventNid(pub u64);

/// A dense integer standing for an `(event type, state key)` pair, assigned by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateKeyNid(pub u64);

/// A user's power level. v12 room creators have [`INFINITE_POWER`].
pub type Power = i64;

/// The power of a v12 room creator: above every level a power levels event can hold.
pub const INFINITE_POWER: Power = i64::MAX;

/// The event types the authorization rules treat specially.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Create,
    Member,
    PowerLevels,
    JoinRules,
    ThirdPartyInvite,
    Redaction,
    Aliases,
    Other(Box<str>),
}

impl EventType {
    pub fn parse(s: &str) -> Self {
        match s {
            "m.room.create" => Self::Create,
            "m.room.member" => Self::Member,
            "m.room.power_levels" => Self::PowerLevels,
            "m.room.join_rules" => Self::JoinRules,
            "m.room.third_party_invite" => Self::ThirdPartyInvite,
            "m.room.redaction" => Self::Redaction,
            "m.room.aliases" => Self::Aliases,
            other => Self::Other(other.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Create => "m.room.create",
            Self::Member => "m.room.member",
            Self::PowerLevels => "m.room.power_levels",
            Self::JoinRules => "m.room.join_rules",
            Self::ThirdPartyInvite => "m.room.third_party_invite",
            Self::Redaction => "m.room.redaction",
            Self::Aliases => "m.room.aliases",
            Self::Other(s) => s,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Join,
    Invite,
    Leave,
    Ban,
    Knock,
    /// A string the spec does not define.
    Unknown,
}

impl Membership {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Invite => "invite",
            Self::Leave => "leave",
            Self::Ban => "ban",
            Self::Knock => "knock",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinRule {
    Public,
    Invite,
    Knock,
    Restricted,
    KnockRestricted,
    Private,
    /// Missing, not a string, or a string the spec does not define.
    Unknown,
}

/// `m.room.create` content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateContent {
    pub creator: Option<Box<str>>,
    /// `content.room_version` is present and not a version this crate knows.
    pub unknown_room_version: bool,
    /// `content["m.federate"]`, true when absent.
    pub federate: bool,
    /// v12 `additional_creators`; `Err` when present and not an array of valid user ids.
    pub additional_creators: Result<Vec<Box<str>>, ()>,
}

/// The `signed` block of a third-party invite, kept whole for signature verification.
#[derive(Clone, Debug, PartialEq)]
pub struct ThirdPartySigned {
    pub mxid: Option<Box<str>>,
    pub token: Option<Box<str>>,
    pub json: serde_json::Map<String, serde_json::Value>,
}

/// `m.room.member` content.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberContent {
    /// `None` when missing or not a string.
    pub membership: Option<Membership>,
    /// `content.join_authorised_via_users_server`; a non-string value is kept as `""`.
    pub join_authorised_via_users_server: Option<Box<str>>,
    /// `Some(None)`: `third_party_invite` present without a usable `signed` object.
    pub third_party_invite: Option<Option<ThirdPartySigned>>,
}

/// The part of an event's content the rules read, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Create(CreateContent),
    Member(MemberContent),
    /// `Err` holds why the content breaks the power levels format rules of the room version.
    PowerLevels(Result<Box<PowerLevels>, &'static str>),
    JoinRules(JoinRule),
    /// The public keys of an `m.room.third_party_invite`, base64 as sent.
    ThirdPartyInvite(Vec<Box<str>>),
    Redaction(Option<Box<str>>),
    Other,
}

/// What authorization and resolution need of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthEvent {
    /// The caller's integer for this event's id.
    pub nid: EventNid,
    pub event_id: Box<str>,
    /// Absent on v12 create events.
    pub room_id: Option<Box<str>>,
    pub sender: Box<str>,
    pub kind: EventType,
    pub state_key: Option<Box<str>>,
    pub origin_server_ts: i64,
    pub depth: i64,
    pub prev_events: Box<[EventNid]>,
    pub auth_events: Box<[EventNid]>,
    /// The event was rejected on receipt: never used as an auth event.
    pub rejected: bool,
    pub content: Content,
}

impl AuthEvent {
    pub fn is_state(&self) -> bool {
        self.state_key.is_some()
    }

    pub fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    /// True for the state event of `kind` with the empty state key.
    pub fn is(&self, kind: &EventType) -> bool {
        &self.kind == kind && self.state_key.as_deref() == Some("")
    }

    pub fn membership(&self) -> Option<Membership> {
        match &self.content {
            Content::Member(m) => m.membership,
            _ => None,
        }
    }

    pub fn power_levels(&self) -> Option<&PowerLevels> {
        match &self.content {
            Content::PowerLevels(Ok(pl)) => Some(pl),
            _ => None,
        }
    }

    /// A power event in the sense of state resolution v2: power levels, join rules, the create
    /// event (as Synapse and ruma count it), and kicks and bans.
    pub fn is_power_event(&self) -> bool {
        match self.kind {
            EventType::PowerLevels | EventType::JoinRules | EventType::Create => self.state_key.as_deref() == Some(""),
            EventType::Member => {
                matches!(self.membership(), Some(Membership::Leave | Membership::Ban))
                    && self.state_key.as_deref() != Some(&*self.sender)
            }
            _ => false,
        }
    }
}

/// The server name of a user id, room id (v1–v11) or event id (v1–v2): what follows the first `:`.
pub fn server_of(id: &str) -> Option<&str> {
    id.split_once(':').map(|(_, server)| server).filter(|s| !s.is_empty())
}

/// The user id grammar, leniently (historical user ids are accepted), as the rules need it.
pub fn is_valid_user_id(id: &str) -> bool {
    id.len() <= 255
        && id.starts_with('@')
        && id.split_once(':').is_some_and(|(local, server)| local.len() > 1 && !server.is_empty())
}
