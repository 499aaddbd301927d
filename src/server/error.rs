//! The error envelope every endpoint answers with: `{"error", "error_description"}` and the
//! HTTP status the real API answers it with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Extra members of the body (`mfa_token` on `mfa_required`).
    pub mfa_token: Option<String>,
    /// Add `WWW-Authenticate: Bearer` (401 on bearer-protected endpoints).
    pub bearer_challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            description: description.into(),
            mfa_token: None,
            bearer_challenge: false,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn missing(param: &str) -> Self {
        Self::invalid_request(format!("Missing required parameter: {param}"))
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn mfa_required(mfa_token: String) -> Self {
        ApiError {
            mfa_token: Some(mfa_token),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "mfa_required",
                "Multifactor authentication required",
            )
        }
    }

    pub fn expired_mfa_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "expired_token",
            "mfa_token is expired",
        )
    }

    pub fn malformed_mfa_token() -> Self {
        Self::invalid_grant("Malformed mfa_token")
    }

    pub fn too_many_attempts() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many failed codes. Wait for some minutes before retrying.",
        )
    }

    pub fn not_enrolled() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unsupported_challenge_type",
            "User is not enrolled. You can use /mfa/associate endpoint to enroll the first authenticator.",
        )
    }

    /// 401 for a bearer-protected endpoint, with `WWW-Authenticate`.
    pub fn unauthorized(error: &'static str, description: impl Into<String>) -> Self {
        ApiError {
            bearer_challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, error, description)
        }
    }

    pub fn insufficient_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("Insufficient scope, expected: {scope}"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.description
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.error, "error_description": self.description});
        if let Some(token) = self.mfa_token {
            body["mfa_token"] = token.into();
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.bearer_challenge {
            let value = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.error,
                self.description.replace('"', "'")
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
