//! The one mapping to Matrix errors at the HTTP edge: `{"errcode", "error"}` with its status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tandem_core::{Error, ErrorKind};

#[derive(Debug, Clone)]
pub struct MatrixError {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub error: String,
    /// Fields beside `errcode` and `error` (`soft_logout`, `retry_after_ms`, UIA flows).
    pub extra: Map<String, Value>,
}

pub type ApiResult<T> = Result<T, MatrixError>;

impl MatrixError {
    pub fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
        MatrixError { status, errcode, error: error.into(), extra: Map::new() }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", error)
    }
    pub fn bad_json(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", error)
    }
    pub fn invalid_param(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", error)
    }
    pub fn missing_param(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", error)
    }
    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", error)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "Internal server error")
    }
}

impl From<Error> for MatrixError {
    fn from(e: Error) -> Self {
        let (status, errcode) = e.kind.status_and_errcode();
        match e.kind {
            ErrorKind::Internal => MatrixError::internal(),
            ErrorKind::UnknownToken { soft_logout } => {
                MatrixError::new(StatusCode::UNAUTHORIZED, errcode, e.message).with("soft_logout", soft_logout)
            }
            _ => {
                let mut out = MatrixError::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    errcode,
                    e.message,
                );
                for (k, v) in e.fields.into_iter().flat_map(|f| *f) {
                    out = out.with(&k, v);
                }
                out
            }
        }
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        if !self.errcode.is_empty() {
            body.insert("errcode".into(), self.errcode.into());
            body.insert("error".into(), self.error.into());
        }
        (self.status, Json(Value::Object(body))).into_response()
    }
}

/// Every path or method the server does not implement: 404 `M_UNRECOGNIZED`, as the spec asks.
pub(crate) async fn unrecognized() -> MatrixError {
    MatrixError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request")
}

/// A known path called with a method it does not take: 405 `M_UNRECOGNIZED`.
pub(crate) async fn method_not_allowed() -> MatrixError {
    MatrixError::new(StatusCode::METHOD_NOT_ALLOWED, "M_UNRECOGNIZED", "Unrecognized request")
}

pub(crate) fn ok() -> Json<Value> {
    Json(json!({}))
}
