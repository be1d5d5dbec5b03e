//! The edge of every request: one log line per request at info (method,
//! path — never the query, which may carry a cursor — status, duration;
//! tokens and message text are never logged), and `Cache-Control:
//! no-store` on API answers, which are private and always fresh.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::middleware::Next;
use axum::response::Response;

/// Logs the request once its response is ready, and marks API answers
/// uncacheable.
pub async fn log_request(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    if !tracing::enabled!(tracing::Level::INFO) {
        let mut response = next.run(request).await;
        if api {
            no_store(&mut response);
        }
        return response;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if api {
        no_store(&mut response);
    }
    tracing::info!(
        http.method = %method,
        http.path = %path,
        http.status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
