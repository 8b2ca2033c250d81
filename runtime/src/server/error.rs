//! Errors as the Databricks API shapes them — `{"error_code": "...", "message": "..."}`
//! with the matching HTTP status — and the request extractors that turn malformed input
//! into such an error (naming the field) before any handler runs, so bad input writes
//! nothing.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::service::ServiceError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "INVALID_PARAMETER_VALUE", message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "INTERNAL_ERROR", message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code: "RESOURCE_DOES_NOT_EXIST", message: message.into() }
    }

    /// The error for a status a layer below the handlers answered with (body too large,
    /// no such route, wrong method, timeout).
    pub fn for_status(status: StatusCode) -> ApiError {
        let (code, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ("INVALID_PARAMETER_VALUE", "The request body is too large."),
            StatusCode::NOT_FOUND => ("ENDPOINT_NOT_FOUND", "No API endpoint at this path."),
            StatusCode::METHOD_NOT_ALLOWED => ("INVALID_PARAMETER_VALUE", "This endpoint does not take that method."),
            StatusCode::REQUEST_TIMEOUT => ("DEADLINE_EXCEEDED", "The request took too long."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("INVALID_PARAMETER_VALUE", "The request body must be JSON (Content-Type: application/json).")
            }
            s if s.is_server_error() => ("INTERNAL_ERROR", "The server failed to answer."),
            _ => ("INVALID_PARAMETER_VALUE", "The request was refused."),
        };
        ApiError { status, code, message: message.into() }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code) = match &e {
            ServiceError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
            ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
            ServiceError::InvalidState(_) => (StatusCode::BAD_REQUEST, "INVALID_STATE"),
            ServiceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            ServiceError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            ServiceError::Stopping(_) => (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE"),
            ServiceError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        };
        ApiError { status, code, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON body; malformed JSON or a field of the wrong type is a 400 naming the field.
/// A body without a Content-Type is read as JSON (curl users forget it); an empty body
/// reads as `{}`; another Content-Type is refused.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if content_type.is_some_and(|t| !t.starts_with("application/json")) {
            return Err(ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::for_status(status)
            } else {
                ApiError::invalid(format!("Could not read the request body: {}", rejection.body_text()))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match path.as_str() {
                "." | "" => ApiError::invalid(format!("Malformed request body: {inner}")),
                _ => ApiError::invalid(format!("Malformed request body: {path}: {inner}")),
            }
        })?;
        Ok(ApiJson(value))
    }
}

/// The query string as name → value (the last of repeated names wins); fields are parsed
/// by the handler with [`Params`], so errors name them.
pub struct Params(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|e| ApiError::invalid(format!("Malformed query string: {e}")))?;
        Ok(Params(pairs.into_iter().collect()))
    }
}

impl Params {
    /// An optional integer field.
    pub fn int(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::invalid(format!("Invalid value for {name}: `{v}` is not a non-negative integer."))
            }),
        }
    }

    /// A required integer field.
    pub fn required_int(&self, name: &str) -> Result<u64, ApiError> {
        self.int(name)?.ok_or_else(|| ApiError::invalid(format!("Missing required field: {name}")))
    }

    /// An optional boolean field (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.0.get(name).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ApiError::invalid(format!("Invalid value for {name}: `{v}` is not true or false."))),
        }
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}
