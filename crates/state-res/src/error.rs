use crate::EventNid;

/// Why resolution or authorization could not run. An event that runs and fails the
/// authorization rules is not an `Error` but a [`Rejection`](crate::Rejection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unsupported room version {0:?}")]
    UnsupportedRoomVersion(String),
    #[error("event {0:?} is not available from the event provider")]
    MissingEvent(EventNid),
    #[error("event {0:?} names a state key the provider cannot intern")]
    UnknownStateKey(EventNid),
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    #[error("no state sets to resolve")]
    NoStateSets,
}
