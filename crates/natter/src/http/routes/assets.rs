//! The web client and SDK (`web/` in the repository), embedded in the
//! binary at build time so natter stays one file to deploy.

use std::sync::Arc;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::http::AppState;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $file:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_str!(concat!("../../../../../web/", $file)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/app/app.css", "app/app.css", "text/css; charset=utf-8"),
    asset!("/app/app.js", "app/app.js", JS),
    asset!("/app/attention.js", "app/attention.js", JS),
    asset!("/app/composer.js", "app/composer.js", JS),
    asset!("/app/conversation.js", "app/conversation.js", JS),
    asset!("/app/dialog.js", "app/dialog.js", JS),
    asset!("/app/drafts.js", "app/drafts.js", JS),
    asset!("/app/embed.js", "app/embed.js", JS),
    asset!("/app/emoji-picker.js", "app/emoji-picker.js", JS),
    asset!("/app/emoticons.js", "app/emoticons.js", JS),
    asset!("/app/events.js", "app/events.js", JS),
    asset!("/app/i18n.js", "app/i18n.js", JS),
    asset!("/app/jump.js", "app/jump.js", JS),
    asset!("/app/loads.js", "app/loads.js", JS),
    asset!("/app/member-pages.js", "app/member-pages.js", JS),
    asset!("/app/members.js", "app/members.js", JS),
    asset!("/app/mentions.js", "app/mentions.js", JS),
    asset!("/app/message-actions.js", "app/message-actions.js", JS),
    asset!("/app/message-item.js", "app/message-item.js", JS),
    asset!("/app/new-direct.js", "app/new-direct.js", JS),
    asset!("/app/no-room.js", "app/no-room.js", JS),
    asset!("/app/notifications.js", "app/notifications.js", JS),
    asset!("/app/people.js", "app/people.js", JS),
    asset!("/app/reactions.js", "app/reactions.js", JS),
    asset!("/app/render.js", "app/render.js", JS),
    asset!("/app/room-header.js", "app/room-header.js", JS),
    asset!("/app/room-notify.js", "app/room-notify.js", JS),
    asset!("/app/router.js", "app/router.js", JS),
    asset!("/app/seen.js", "app/seen.js", JS),
    asset!("/app/session.js", "app/session.js", JS),
    asset!("/app/settings.js", "app/settings.js", JS),
    asset!("/app/sidebar.js", "app/sidebar.js", JS),
    asset!("/app/signin.js", "app/signin.js", JS),
    asset!("/app/state.js", "app/state.js", JS),
    asset!("/app/stream.js", "app/stream.js", JS),
    asset!("/app/timeline.js", "app/timeline.js", JS),
    asset!("/app/typing.js", "app/typing.js", JS),
    asset!("/app/unread-line.js", "app/unread-line.js", JS),
    asset!("/app/worker.js", "app/worker.js", JS),
    asset!("/sdk/natter.js", "sdk/natter.js", JS),
    asset!("/widget.js", "widget.js", JS),
];

/// What the app's pages may load: only natter's own scripts, styles and
/// API; images also from https (users' own avatars). No inline script, no
/// framing by other sites.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: data:; connect-src 'self'; worker-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for asset in ASSETS {
        let tag = Arc::new(etag(asset.body.as_bytes()));
        router = router.route(
            asset.path,
            get(move |headers: HeaderMap| {
                let tag = tag.clone();
                async move { serve(&headers, &tag, asset) }
            }),
        );
    }
    router
}

fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Browsers revalidate every file on each load (`no-cache` with an ETag):
/// a new natter version is picked up at once, an unchanged file costs a 304.
fn serve(request: &HeaderMap, tag: &str, asset: &Asset) -> Response {
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(ETAG, HeaderValue::from_str(tag).expect("etags are ASCII"));
    if asset.content_type.starts_with("text/html") {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        );
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    (headers, asset.body).into_response()
}
