//! The HTTP edge: axum routes under `/api/v1/`, JSON in and out. Handlers
//! translate between wire shapes ([`wire`]) and the chat domain; they hold
//! no rules of their own.

mod edge;
mod error;
mod extract;
mod poll_query;
mod routes;
mod wire;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Request};
use axum::response::Response;
use hyper::body::Incoming;
use tower::{Service, ServiceBuilder};

pub use self::error::{ApiError, ApiResult};
pub use self::extract::Peer;
use crate::chat::Chat;
use crate::config::Config;
use crate::source::TrustedProxies;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub chat: Arc<Chat>,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// How long a request body may take to arrive.
    pub body_read_timeout: Duration,
    /// The bearer token `/metrics` takes on the main listener; without
    /// one it is not served there.
    pub metrics_token: Option<Arc<str>>,
}

/// The whole HTTP application: the routes behind the edge (log line,
/// `no-store`, CORS; `http/edge.rs`) and the body limit.
///
/// The edge wraps the router once rather than each route through
/// `Router::layer`, which boxes and clones every layer again per route on
/// every request: on the poll path, where a fan-out answers thousands of
/// requests at once, that was several allocations per delivery. Every
/// request passes the edge either way, unknown paths included.
pub fn app(
    chat: Arc<Chat>,
    config: &Config,
) -> impl Service<Request<Incoming>, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    let state = AppState {
        chat,
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        body_read_timeout: config.body_read_timeout,
        metrics_token: config.metrics_token.as_ref().map(|t| Arc::from(t.as_str())),
    };
    // One flat router with full paths: a nested router would add a layer
    // of prefix stripping and routing to every request.
    let routes = Router::new()
        .merge(routes::meta::router())
        .merge(routes::assets::router())
        .merge(routes::embed::router())
        .merge(routes::accounts::router())
        .merge(routes::admin::router())
        .merge(routes::rooms::router())
        .merge(routes::attention::router())
        .merge(routes::messages::router())
        .merge(routes::events::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    ServiceBuilder::new()
        .map_request(|request: Request<Incoming>| request.map(Body::new))
        .layer_fn(|routes| edge::layer(routes, state.chat.clone()))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .service(routes)
}

/// The metrics listener's app: `/metrics` and nothing else.
pub fn metrics_app(metrics: Arc<crate::metrics::Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { routes::meta::metrics_text(&metrics) }
            }),
        )
        .fallback(not_found)
}

/// A JSON answer from a value that borrows (such as events' cached
/// encodings), which axum's `Json` cannot hold.
fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> ApiResult<Response> {
    json_response_sized(status, value, 128)
}

/// [`json_response`] into a buffer of about the answer's size (a poll
/// answer knows it from its events' cached JSON), so the encoder does not
/// grow the buffer several times; and with room for the edge's headers.
fn json_response_sized<T: serde::Serialize>(
    status: StatusCode,
    value: &T,
    size_hint: usize,
) -> ApiResult<Response> {
    let mut body = Vec::with_capacity(size_hint);
    serde_json::to_writer(&mut body, value)
        .map_err(|e| crate::error::ChatError::Internal(format!("encoding an answer: {e}")))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.reserve(1 + edge::EDGE_HEADERS);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not support that method",
    )
}
