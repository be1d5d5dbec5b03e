//! Everything that is not chat: health, the OpenAPI document, generated
//! avatars.

use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{PathId, QueryParams, bearer_token};
use crate::http::wire;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/avatar.svg", get(avatar))
        .route("/api/v1/users/{id}/avatar.svg", get(avatar_by_id))
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
    let given = bearer_token(&headers).unwrap_or_default();
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
        // prometheus-client writes OpenMetrics text (`# EOF`, `# UNIT`).
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
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

/// `GET /api/v1/avatar.svg?initial=&hue=`: a generated avatar, the
/// initial on the colour, as a profile's default `avatar_url` names it.
/// Public, so `<img>` can load it, and about nobody: it draws what the
/// URL says and looks no user up.
async fn avatar(QueryParams(q): QueryParams<AvatarQuery>) -> ApiResult<Response> {
    let initial = q.initial.unwrap_or_default();
    let hue = q.hue.unwrap_or(0);
    let drawable = initial.chars().count() <= 3 && !initial.chars().any(char::is_control);
    if !drawable || hue >= 360 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "initial is at most 3 characters and hue is 0..=359",
        ));
    }
    Ok(svg_avatar(&initial, i64::from(hue)))
}

#[derive(Deserialize)]
struct AvatarQuery {
    initial: Option<String>,
    hue: Option<u16>,
}

/// `GET /api/v1/users/{id}/avatar.svg`: the generated avatar's old
/// address, kept for URLs already handed out. It shows the id's colour
/// and no initial, for every id, so it says nothing about who exists.
async fn avatar_by_id(PathId(id): PathId) -> Response {
    svg_avatar("", wire::avatar_hue(id))
}

fn svg_avatar(initial: &str, hue: i64) -> Response {
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="32" fill="hsl({hue},55%,45%)"/><text x="32" y="32" dy=".35em" text-anchor="middle" font-family="sans-serif" font-size="30" fill="#fff">{}</text></svg>"##,
        xml_escape(initial)
    );
    (
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "public, max-age=86400"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    )
        .into_response()
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
