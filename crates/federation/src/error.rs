//! Errors of the federation layer, and the Matrix error each becomes when we answer another
//! server.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum FedError {
    /// The engine refused or failed.
    #[error(transparent)]
    Core(#[from] tandem_core::Error),
    /// An answer to give another server as it is.
    #[error("{errcode}: {message}")]
    Matrix { status: u16, errcode: &'static str, message: String },
    /// Another server could not be reached or answered with an error.
    #[error("{server}: {message}")]
    Remote { server: String, status: Option<u16>, errcode: Option<String>, message: String },
    #[error("{0}")]
    Internal(String),
}

impl FedError {
    pub fn forbidden(message: impl Into<String>) -> Self {
        FedError::Matrix { status: 403, errcode: "M_FORBIDDEN", message: message.into() }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        FedError::Matrix { status: 401, errcode: "M_UNAUTHORIZED", message: message.into() }
    }
    pub fn bad_json(message: impl Into<String>) -> Self {
        FedError::Matrix { status: 400, errcode: "M_BAD_JSON", message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        FedError::Matrix { status: 404, errcode: "M_NOT_FOUND", message: message.into() }
    }
    pub fn missing_param(message: impl Into<String>) -> Self {
        FedError::Matrix { status: 400, errcode: "M_MISSING_PARAM", message: message.into() }
    }
    pub fn invalid_param(message: impl Into<String>) -> Self {
        FedError::Matrix { status: 400, errcode: "M_INVALID_PARAM", message: message.into() }
    }
}

impl From<FedError> for tandem_core::Error {
    /// Failures of other servers reach local clients as Matrix errors too.
    fn from(e: FedError) -> Self {
        use tandem_core::ErrorKind;
        match e {
            FedError::Core(e) => e,
            FedError::Remote { status: Some(403), message, .. } => tandem_core::Error::forbidden(message),
            FedError::Remote { status: Some(404), message, .. } => tandem_core::Error::not_found(message),
            FedError::Remote { server, message, errcode: Some(code), .. } if code == "M_INCOMPATIBLE_ROOM_VERSION" => {
                tandem_core::Error::new(ErrorKind::IncompatibleRoomVersion, format!("{server}: {message}"))
            }
            FedError::Matrix { status: 403, message, .. } => tandem_core::Error::forbidden(message),
            FedError::Matrix { status: 404, message, .. } => tandem_core::Error::not_found(message),
            other => tandem_core::Error::new(ErrorKind::Unknown, other.to_string()),
        }
    }
}

impl IntoResponse for FedError {
    fn into_response(self) -> Response {
        let (status, errcode, message) = match self {
            FedError::Core(e) => {
                let (status, errcode) = e.kind.status_and_errcode();
                if status == 500 {
                    tracing::error!("{}", e.message);
                    (500, errcode, "Internal server error".to_owned())
                } else {
                    (status, errcode, e.message)
                }
            }
            FedError::Matrix { status, errcode, message } => (status, errcode, message),
            FedError::Remote { server, message, .. } => (502, "M_UNKNOWN", format!("{server}: {message}")),
            FedError::Internal(message) => {
                tracing::error!("{message}");
                (500, "M_UNKNOWN", "Internal server error".to_owned())
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "errcode": errcode, "error": message }))).into_response()
    }
}
