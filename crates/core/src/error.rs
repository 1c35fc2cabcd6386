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
    /// The room's version is not among those the asking server supports.
    IncompatibleRoomVersion,
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
    /// A key backup version that is not the current one: 403 `M_WRONG_ROOM_KEYS_VERSION`.
    WrongRoomKeysVersion,
    /// A key signature that does not verify: 400 `M_INVALID_SIGNATURE`.
    InvalidSignature,
    /// A quota is used up: 400 `M_RESOURCE_LIMIT_EXCEEDED`.
    ResourceLimitExceeded,
    /// A third-party identifier the user has not bound: 400 `M_THREEPID_NOT_FOUND`.
    ThreepidNotFound,
    /// Too many of something at once: 429 `M_LIMIT_EXCEEDED`.
    LimitExceeded,
    /// Media that has its bytes already: 409 `M_CANNOT_OVERWRITE_MEDIA`.
    CannotOverwriteMedia,
    /// Media created but not uploaded yet: 504 `M_NOT_YET_UPLOADED`.
    NotYetUploaded,
    /// Another server failed to give what was asked of it: 502 `M_UNKNOWN`.
    BadGateway,
    /// Another server's answer was larger than this server takes: 502 `M_TOO_LARGE`.
    RemoteTooLarge,
    Unknown,
    Internal,
}

impl ErrorKind {
    /// The HTTP status and Matrix `errcode` this error becomes at either HTTP edge.
    pub fn status_and_errcode(&self) -> (u16, &'static str) {
        match self {
            ErrorKind::Forbidden => (403, "M_FORBIDDEN"),
            ErrorKind::NotFound => (404, "M_NOT_FOUND"),
            ErrorKind::BadJson => (400, "M_BAD_JSON"),
            ErrorKind::InvalidParam => (400, "M_INVALID_PARAM"),
            ErrorKind::MissingParam => (400, "M_MISSING_PARAM"),
            ErrorKind::UserInUse => (400, "M_USER_IN_USE"),
            ErrorKind::InvalidUsername => (400, "M_INVALID_USERNAME"),
            ErrorKind::Exclusive => (400, "M_EXCLUSIVE"),
            ErrorKind::RoomInUse => (400, "M_ROOM_IN_USE"),
            ErrorKind::UnsupportedRoomVersion => (400, "M_UNSUPPORTED_ROOM_VERSION"),
            ErrorKind::IncompatibleRoomVersion => (400, "M_INCOMPATIBLE_ROOM_VERSION"),
            ErrorKind::UnknownToken { .. } => (401, "M_UNKNOWN_TOKEN"),
            ErrorKind::UserDeactivated => (403, "M_USER_DEACTIVATED"),
            ErrorKind::WeakPassword => (400, "M_WEAK_PASSWORD"),
            ErrorKind::TooLarge => (413, "M_TOO_LARGE"),
            ErrorKind::BadState => (400, "M_BAD_STATE"),
            // Exists already: 409 with `M_UNKNOWN`, as the spec gives for aliases.
            ErrorKind::Conflict => (409, "M_UNKNOWN"),
            ErrorKind::UnknownPos => (400, "M_UNKNOWN_POS"),
            ErrorKind::WrongRoomKeysVersion => (403, "M_WRONG_ROOM_KEYS_VERSION"),
            ErrorKind::InvalidSignature => (400, "M_INVALID_SIGNATURE"),
            ErrorKind::ResourceLimitExceeded => (400, "M_RESOURCE_LIMIT_EXCEEDED"),
            ErrorKind::ThreepidNotFound => (400, "M_THREEPID_NOT_FOUND"),
            ErrorKind::LimitExceeded => (429, "M_LIMIT_EXCEEDED"),
            ErrorKind::CannotOverwriteMedia => (409, "M_CANNOT_OVERWRITE_MEDIA"),
            ErrorKind::NotYetUploaded => (504, "M_NOT_YET_UPLOADED"),
            ErrorKind::BadGateway => (502, "M_UNKNOWN"),
            ErrorKind::RemoteTooLarge => (502, "M_TOO_LARGE"),
            ErrorKind::Unknown => (400, "M_UNKNOWN"),
            ErrorKind::Internal => (500, "M_UNKNOWN"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Fields the Matrix error carries beside `errcode` and `error` (`current_version`, …).
    pub fields: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), fields: None }
    }
    /// Adds a field to the Matrix error.
    pub fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.get_or_insert_default().insert(name.to_owned(), value.into());
        self
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
