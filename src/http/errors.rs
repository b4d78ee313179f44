//! Error responses: always `{"error":{"code":"...","message":"..."}}` with
//! a stable code, whether the daemon refused the request ([`ApiError`]) or
//! the HTTP layer did (token, rate, body, route), so clients need to
//! handle one shape only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::daemon::api::{ApiError, ErrorCode};

/// The HTTP status of a daemon error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UnknownJob | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::JobRunning => StatusCode::CONFLICT,
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The stable result of a response (`ok` or an error code), left in the
/// response's extensions for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResultCode(pub &'static str);

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn rate_limited(retry_after: u64, per_minute: u32) -> Failure {
        Failure {
            retry_after: Some(retry_after),
            ..Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this token made {per_minute} mutating requests within the last minute, \
                     the limit ([http] mutations_per_minute); retry in {retry_after} s"
                ),
            )
        }
    }

    pub fn payload_too_large(limit: usize) -> Failure {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes ([http] max_body_bytes)"),
        )
    }

    pub fn invalid_json(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::new(status_of(e.code), e.code.as_str(), e.message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ResultCode(self.code));
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn daemon_codes_map_to_statuses() {
        for (code, status) in [
            (ErrorCode::UnknownJob, 404),
            (ErrorCode::NotFound, 404),
            (ErrorCode::JobRunning, 409),
            (ErrorCode::InvalidRequest, 400),
            (ErrorCode::ShuttingDown, 503),
            (ErrorCode::Internal, 500),
        ] {
            assert_eq!(status_of(code).as_u16(), status, "{code:?}");
            let failure = Failure::from(ApiError::new(code, "why"));
            assert_eq!(failure.code, code.as_str());
            assert_eq!(failure.status.as_u16(), status);
        }
    }

    #[tokio::test]
    async fn responses_are_json_with_code_and_headers() {
        let response = Failure::rate_limited(7, 5).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(
            response.extensions().get::<ResultCode>(),
            Some(&ResultCode("rate_limited"))
        );
        let bytes = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["error"]["code"], "rate_limited");
        assert!(value["error"]["message"].as_str().unwrap().contains("7 s"));

        let response = Failure::unauthorized("no token").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
