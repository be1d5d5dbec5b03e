//! Cross-origin calls from host sites: pages of a configured site's origins
//! may call the user API (not the admin API) with the SDK; every other
//! origin gets no CORS permission, so browsers refuse it.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// Answers preflights and marks answers readable by allowed origins.
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/v1/") && !path.starts_with("/api/v1/admin/");
    let allowed = request
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|origin| api && state.chat.origin_allowed(origin))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(ORIGIN)
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(origin) = allowed else {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not call natter's API",
            )
            .into_response();
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, DELETE"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        headers.insert(VARY, HeaderValue::from_static("origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if api {
        // Whether an answer is readable depends on the origin: caches must know.
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("origin"));
    }
    if let Some(origin) = allowed {
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}
