//! Request extractors whose every failure is an [`ApiError`] in the API's
//! JSON shape, never axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::chat::Caller;
use crate::error::ChatError;

/// A JSON body; wrong content type, bad syntax, wrong shape and oversize
/// each get their own code.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    use StatusCode as S;
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            S::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(S::BAD_REQUEST, "malformed_json", e.body_text())
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::new(S::BAD_REQUEST, "invalid_body", e.body_text())
        }
        other if other.status() == S::PAYLOAD_TOO_LARGE => ApiError::new(
            S::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        other => ApiError::new(S::BAD_REQUEST, "invalid_body", other.body_text()),
    }
}

/// Query parameters.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| QueryParams(v))
            .map_err(|e: QueryRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
            })
    }
}

/// A numeric id in the path.
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<i64>::from_request_parts(parts, state).await {
            Ok(Path(id)) if id > 0 => Ok(PathId(id)),
            Ok(_) => Err(bad_id()),
            Err(_e @ PathRejection::FailedToDeserializePathParams(_)) => Err(bad_id()),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                e.body_text(),
            )),
        }
    }
}

/// Two numeric ids in the path (`/rooms/{id}/members/{user_id}`).
pub struct PathIds(pub i64, pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<(i64, i64)>::from_request_parts(parts, state).await {
            Ok(Path((a, b))) if a > 0 && b > 0 => Ok(PathIds(a, b)),
            _ => Err(bad_id()),
        }
    }
}

/// A call of the admin API: it carries a configured key in
/// `X-Natter-Admin-Key`, and comes from a server, not a browser (browsers
/// always send `Origin` or `Sec-Fetch-Site` on such requests).
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(ORIGIN) || parts.headers.contains_key("sec-fetch-site") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_from_browser",
                "the admin API is for servers; browsers may not call it",
            ));
        }
        let key = parts
            .headers
            .get("x-natter-admin-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if key.is_empty() || !state.chat.is_admin_key(key) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "admin_key_invalid",
                "a valid X-Natter-Admin-Key is required",
            ));
        }
        Ok(Admin)
    }
}

fn bad_id() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_id",
        "ids in the path are positive integers",
    )
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ChatError::Unauthenticated)?;
        Ok(Auth(state.chat.authenticate(token).await?))
    }
}
