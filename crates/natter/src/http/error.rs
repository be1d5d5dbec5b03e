//! The API's one error shape: `{"error":{"code":"…","message":"…"}}` with a
//! stable code per case. Server faults are logged here, once, and hidden
//! from clients.

use axum::Json;
use axum::http::header::{CONNECTION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ChatError;
use crate::model::EndReason;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which a refused call may be tried again
    /// (`Retry-After`), for rate limits and an unreachable store.
    pub retry_after: Option<u64>,
    /// The connection is closed after this answer (a body that never
    /// came leaves the connection in an unknown state).
    pub close: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            close: false,
        }
    }

    /// The same error, answered with `Connection: close`.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        // For the edge, which counts errors by code.
        response.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match e {
            ChatError::Invalid(invalid) => {
                return ApiError::new(S::BAD_REQUEST, invalid.code, invalid.message);
            }
            ChatError::Unauthenticated => (S::UNAUTHORIZED, "unauthenticated"),
            ChatError::SessionEnded(EndReason::LoggedOut) => (S::UNAUTHORIZED, "session_ended"),
            ChatError::SessionEnded(EndReason::Deactivated) => {
                return ApiError::new(
                    S::UNAUTHORIZED,
                    "account_deactivated",
                    "this account has been deactivated",
                );
            }
            ChatError::SessionEnded(EndReason::Replaced) => {
                return ApiError::new(
                    S::UNAUTHORIZED,
                    "session_replaced",
                    "a newer login replaced this session",
                );
            }
            ChatError::SessionExpired => (S::UNAUTHORIZED, "session_expired"),
            ChatError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            ChatError::WrongPassword => (S::FORBIDDEN, "wrong_password"),
            ChatError::AccountDeactivated => (S::FORBIDDEN, "account_deactivated"),
            ChatError::RegistrationClosed => (S::FORBIDDEN, "registration_closed"),
            ChatError::InviteInvalid => (S::FORBIDDEN, "invite_invalid"),
            ChatError::SessionNotFound => (S::NOT_FOUND, "session_not_found"),
            ChatError::UsernameTaken => (S::CONFLICT, "username_taken"),
            ChatError::UserNotFound => (S::NOT_FOUND, "user_not_found"),
            ChatError::RoomNotFound => (S::NOT_FOUND, "room_not_found"),
            ChatError::NotAMember => (S::FORBIDDEN, "not_a_member"),
            ChatError::MessageNotFound => (S::NOT_FOUND, "message_not_found"),
            ChatError::MessageDeleted => (S::CONFLICT, "message_deleted"),
            ChatError::EditWindowClosed => (S::FORBIDDEN, "edit_window_closed"),
            ChatError::TooManyReactions(_) => (S::CONFLICT, "too_many_reactions"),
            ChatError::NotAllowed(_) => (S::FORBIDDEN, "forbidden"),
            ChatError::IdempotencyConflict => (S::CONFLICT, "client_msg_id_conflict"),
            ChatError::ResyncRequired(_) => (S::BAD_REQUEST, "resync_required"),
            ChatError::TooManyPolls => (S::TOO_MANY_REQUESTS, "too_many_polls"),
            ChatError::RateLimited { limit, retry_after } => {
                // Whole seconds, rounded up: a client that waits exactly
                // this long passes.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let mut error = ApiError::new(
                    S::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many requests ({}); try again in {secs} s",
                        limit.name()
                    ),
                );
                error.retry_after = Some(secs.max(1));
                return error;
            }
            ChatError::TokenRefused { code, message } => {
                let status = match code {
                    "token_malformed" | "token_invalid_claim" => S::BAD_REQUEST,
                    _ => S::UNAUTHORIZED,
                };
                return ApiError::new(status, code, message);
            }
            ChatError::StorageFull => (S::INSUFFICIENT_STORAGE, "storage_full"),
            ChatError::StoreUnavailable(detail) => {
                // A database restart makes many of these at once; each is
                // worth a line, since it says which call failed and why.
                tracing::warn!(error = %detail, "store unavailable");
                let mut error = ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the server cannot reach its database; try again shortly",
                );
                error.retry_after = Some(1);
                return error;
            }
            ChatError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                return ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                );
            }
        };
        ApiError::new(status, code, message)
    }
}

/// The API code of an error answer, carried in the response's
/// extensions to the edge.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A database that is down is a 503 with its own code, telling a
    /// client to try again, not a 500.
    #[test]
    fn an_unavailable_store_is_a_503() {
        let error = ApiError::from(ChatError::StoreUnavailable("connection refused".into()));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "store_unavailable");
        assert_eq!(error.retry_after, Some(1));
        assert!(
            !error.message.contains("refused"),
            "details stay in the log"
        );
    }
}
