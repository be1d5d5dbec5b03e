//! Request extractors whose every failure is an [`ApiError`] in the API's
//! JSON shape, never axum's plain-text rejections.

use std::net::{IpAddr, Ipv4Addr};

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::chat::Caller;
use crate::error::ChatError;
use crate::source::{Source, TrustedProxies};

/// A JSON body that is a JSON object; wrong content type, bad syntax
/// (invalid UTF-8 anywhere included), a top-level array or scalar, wrong
/// shape, oversize and a body not finished within the read deadline each
/// get their own code.
///
/// serde would read a struct from a JSON array too (`["c","hi"]` as
/// `client_msg_id`, `text`), and skips unknown string fields without
/// checking their UTF-8; both are refused here, before any handler runs.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes =
            match tokio::time::timeout(state.body_read_timeout, Bytes::from_request(req, state))
                .await
            {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is too large",
                    ));
                }
                Ok(Err(rejection)) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_body",
                        rejection.body_text(),
                    ));
                }
                Err(_elapsed) => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        format!(
                            "the request body did not arrive within {} s",
                            state.body_read_timeout.as_secs()
                        ),
                    )
                    .closing());
                }
            };
        parse_object(&bytes).map(JsonBody)
    }
}

/// `application/json` or `application/…+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Parses a body that must be a JSON object.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid UTF-8",
        ));
    };
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .chars()
        .next();
    let malformed = |e: serde_json::Error| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string())
    };
    if first.is_some() && first != Some('{') {
        // Well-formed JSON of the wrong kind, or not JSON at all.
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(malformed)?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string())
        }
        _ => malformed(e),
    })
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

/// A numeric id in the path: plain decimal digits without a sign or a
/// leading zero, so each id has exactly one spelling (`/rooms/+1` and
/// `/rooms/01` are not aliases of `/rooms/1`).
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => parse_id(&id).map(PathId).ok_or_else(bad_id),
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
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((a, b))) => match (parse_id(&a), parse_id(&b)) {
                (Some(a), Some(b)) => Ok(PathIds(a, b)),
                _ => Err(bad_id()),
            },
            _ => Err(bad_id()),
        }
    }
}

/// Text segments of the path (`/admin/sites/{site}/users/{external_id}`);
/// a segment that is not UTF-8 gets the API's JSON error.
pub struct PathText<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathText<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| PathText(v))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}

/// A path segment that must be an id, or the API's error for one that is not.
pub fn path_id(text: &str) -> Result<i64, ApiError> {
    parse_id(text).ok_or_else(bad_id)
}

/// `^[1-9][0-9]{0,17}$`: every such number fits an `i64`.
fn parse_id(text: &str) -> Option<i64> {
    let canonical = (1..=18).contains(&text.len())
        && !text.starts_with('0')
        && text.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| text.parse().ok()).flatten()
}

/// The network source of the request (see `crate::source`): the peer,
/// or the client a trusted proxy names in `X-Forwarded-For`.
pub struct ClientSource(pub Source);

impl FromRequestParts<AppState> for ClientSource {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientSource(source_of(parts, &state.trusted_proxies)))
    }
}

/// The source of a request from its connection's peer and headers.
pub fn source_of(parts: &Parts, trusted: &TrustedProxies) -> Source {
    let peer = parts
        .extensions
        .get::<Peer>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok());
    Source::of(trusted.client_of(peer, forwarded))
}

/// The TCP peer of the connection a request arrived on; the server puts
/// it in every request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

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
        let token = bearer_token(&parts.headers)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ChatError::Unauthenticated)?;
        Ok(Auth(state.chat.authenticate(token).await?))
    }
}

/// The token of an `Authorization: Bearer …` header (the scheme in any
/// letter case, as RFC 7235 has it), trimmed.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}
