//! Pages that host sites embed: the floating widget's chat
//! (`/embed/widget`) and one room as a panel (`/embed/rooms/{id}`), both in
//! an iframe, plus the loader script `/widget.js`. Only the pages of a
//! site's own origins may frame them (`frame-ancestors`); for anyone else
//! the browser shows nothing.

use axum::Router;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::chat::Site;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{PathId, QueryParams};

const PAGE: &str = include_str!("../../../../../web/embed.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/embed/widget", get(widget))
        .route("/embed/rooms/{id}", get(room))
}

#[derive(Deserialize)]
struct SiteQuery {
    site: Option<String>,
}

/// `GET /embed/widget?site=…`: the chat inside the floating widget.
async fn widget(State(s): State<AppState>, QueryParams(q): QueryParams<SiteQuery>) -> Response {
    page(&s, q.site.as_deref(), "widget", None)
}

/// `GET /embed/rooms/{id}?site=…`: one room as a panel in the host page.
async fn room(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<SiteQuery>,
    PathId(id): PathId,
) -> Response {
    page(&s, q.site.as_deref(), "room", Some(id))
}

fn page(state: &AppState, site: Option<&str>, mode: &str, room: Option<i64>) -> Response {
    let Some(site) = site.and_then(|id| state.chat.site_by_id(id)) else {
        let mut response = ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_site",
            "no such site is configured",
        )
        .into_response();
        response.headers_mut().insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
        return response;
    };
    // Every value put into the page comes from the configuration (checked
    // at start-up) or is a number; none is taken from the request as is.
    let html = PAGE
        .replace("{{ORIGINS}}", &site.origins.join(" "))
        .replace("{{MODE}}", mode)
        .replace("{{SITE}}", &site.id)
        .replace("{{ROOM}}", &room.map(|r| r.to_string()).unwrap_or_default());
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy(&site)).expect("origins are checked ASCII"),
    );
    (headers, html).into_response()
}

/// The app's page policy, framed only by the site's own origins.
fn policy(site: &Site) -> String {
    let ancestors = if site.origins.is_empty() {
        "'none'".to_owned()
    } else {
        site.origins.join(" ")
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
         connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors {ancestors}"
    )
}
