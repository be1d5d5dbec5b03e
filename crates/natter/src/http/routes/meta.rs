//! Everything that is not chat: health, the OpenAPI document, generated
//! avatars.

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::PathId;
use crate::model::UserId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/users/{id}/avatar.svg", get(avatar))
        .route("/metrics", get(metrics))
}

/// `GET /metrics` on the main listener: the Prometheus metrics, for the
/// bearer of the configured metrics token only; without a token
/// configured there is no such endpoint here.
async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(expected) = &s.metrics_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ));
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    // Compared as digests, so the time taken says nothing about the token.
    if Sha256::digest(given.as_bytes()) != Sha256::digest(expected.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "metrics_token_invalid",
            "a valid metrics token is required",
        ));
    }
    Ok(metrics_text(s.chat.metrics()))
}

/// The metrics as Prometheus scrapes them.
pub fn metrics_text(metrics: &crate::metrics::Metrics) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(),
    )
        .into_response()
}

/// `GET /healthz`: for load balancers.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/openapi.json`: the API description.
async fn openapi() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

/// `GET /api/v1/users/{id}/avatar.svg`: a generated avatar, the user's
/// initial on a colour derived from their id. Public, so `<img>` can load it.
async fn avatar(State(s): State<AppState>, PathId(id): PathId) -> ApiResult<impl IntoResponse> {
    let user = s.chat.user(UserId(id)).await?;
    let initial: String = user
        .display_name
        .chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    let hue = (id.wrapping_mul(137) % 360 + 360) % 360;
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="32" fill="hsl({hue},55%,45%)"/><text x="32" y="32" dy=".35em" text-anchor="middle" font-family="sans-serif" font-size="30" fill="#fff">{}</text></svg>"##,
        xml_escape(&initial)
    );
    Ok((
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "public, max-age=3600"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    ))
}

/// User text inside SVG is escaped, so a name can never become markup.
fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}
