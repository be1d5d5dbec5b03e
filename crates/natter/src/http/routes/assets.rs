//! Files of the web client and SDK, embedded in the binary at build time
//! (`web/` in the repository), so natter stays one file to deploy.

use std::sync::OnceLock;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::http::AppState;

/// The JS SDK, importable by the app and by other pages.
const SDK: &str = include_str!("../../../../../web/sdk/natter.js");

pub fn router() -> Router<AppState> {
    Router::new().route("/sdk/natter.js", get(sdk))
}

/// `GET /sdk/natter.js`: the SDK module. Browsers revalidate it on every
/// load (`no-cache` with an ETag), so a new natter version is picked up
/// at once and an unchanged one costs a 304.
async fn sdk(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| etag(SDK.as_bytes()));
    serve(&headers, tag, "text/javascript; charset=utf-8", SDK)
}

fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn serve(
    request: &HeaderMap,
    tag: &str,
    content_type: &'static str,
    body: &'static str,
) -> Response {
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let tag = HeaderValue::from_str(tag).expect("etags are ASCII");
    let common = [
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (ETAG, tag),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
