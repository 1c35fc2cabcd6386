//! The engine's errors. Each names the Matrix error it becomes at the HTTP edge, so a handler
//! never has to guess a status code.

/// What went wrong, in the terms of the Matrix error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Forbidden,
    NotFound,
    BadJson,
    InvalidParam,
    MissingParam,
    UserInUse,
    InvalidUsername,
    Exclusive,
    RoomInUse,
    UnsupportedRoomVersion,
    UnknownToken {
        soft_logout: bool,
    },
    UserDeactivated,
    WeakPassword,
    TooLarge,
    BadState,
    /// Exists already: 409 with `M_UNKNOWN`, as the spec gives for aliases.
    Conflict,
    /// A sliding sync `pos` the server does not know (any more): 400 `M_UNKNOWN_POS`.
    UnknownPos,
    Unknown,
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadJson, message)
    }
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParam, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl From<tandem_storage::Error> for Error {
    fn from(e: tandem_storage::Error) -> Self {
        tracing::error!("storage: {e}");
        Error::internal("storage failure")
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        tracing::error!("stored JSON: {e}");
        Error::internal("corrupt stored value")
    }
}
