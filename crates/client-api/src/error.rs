//! The one mapping to Matrix errors at the HTTP edge: `{"errcode", "error"}` with its status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct MatrixError {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub error: String,
}

impl MatrixError {
    pub fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
        MatrixError { status, errcode, error: error.into() }
    }
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"errcode": self.errcode, "error": self.error}))).into_response()
    }
}

/// Every path or method the server does not implement: 404 `M_UNRECOGNIZED`, as the spec asks.
pub(crate) async fn unrecognized() -> MatrixError {
    MatrixError::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "Unrecognized request")
}
