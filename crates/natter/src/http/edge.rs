//! The edge of every request, in one layer:
//!
//! - one log line per request at info (method, path — never the query,
//!   which may carry a cursor — status, duration; tokens and message text
//!   are never logged);
//! - a request id, in the `X-Request-Id` answer header and in every log
//!   line written while the request is handled (its span);
//! - `Cache-Control: no-store` on API answers, which are private and
//!   always fresh; `X-Content-Type-Options: nosniff` and
//!   `Referrer-Policy: no-referrer` on every answer; JSON labelled
//!   `charset=utf-8`;
//! - cross-origin calls from host sites: pages of a configured site's
//!   origins may call the user API (not the admin API) with the SDK; every
//!   other origin gets no CORS permission, so browsers refuse it.
//!
//! It is a hand-written service with a concrete future rather than axum's
//! `from_fn` middleware, which per layer and request boxes its own future,
//! the rest of the stack as a service, and that service's future: with
//! two layers, six allocations per request, and ~2 KiB more server RSS
//! for every waiting poll (S3, docs/performance.md).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderName;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, CACHE_CONTROL, CONTENT_TYPE, ORIGIN,
    REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::error::{ApiError, ErrorCode};
use crate::chat::Chat;
use crate::metrics::Metrics;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The most headers [`Marks::finish`] adds to an answer.
pub(super) const EDGE_HEADERS: usize = 7;

/// Wraps `inner` (the router) in the edge.
pub fn layer<S>(inner: S, chat: Arc<Chat>) -> Edge<S> {
    Edge {
        inner,
        chat,
        ids: Arc::new(RequestIds::new()),
    }
}

/// The edge service; see the module documentation.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    chat: Arc<Chat>,
    ids: Arc<RequestIds>,
}

/// Request ids: a random prefix per process and a count, so ids from two
/// nodes (or two runs) never collide and one node's are in order.
struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        RequestIds {
            prefix: rand::random(),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> RequestId {
        RequestId {
            prefix: self.prefix,
            n: self.next.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// One request's id, kept as numbers while the request waits (a waiting
/// poll holds it) and written out only for the answer and the log.
#[derive(Clone, Copy)]
struct RequestId {
    prefix: u32,
    n: u64,
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{:x}", self.prefix, self.n)
    }
}

impl RequestId {
    /// The id as `Display` writes it, spelt out without the formatting
    /// machinery or a temporary `String`: every answer carries one.
    fn header(self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 8 + 1 + 16];
        for (i, digit) in text[..8].iter_mut().enumerate() {
            *digit = HEX[(self.prefix >> (28 - 4 * i) & 0xf) as usize];
        }
        text[8] = b'-';
        let digits = (64 - self.n.leading_zeros()).div_ceil(4).max(1) as usize;
        for (i, digit) in text[9..9 + digits].iter_mut().enumerate() {
            *digit = HEX[(self.n >> (4 * (digits - 1 - i)) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&text[..9 + digits]).expect("hex is a valid header")
    }
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let marks = Marks::of(&request, &self.chat, self.ids.next());
        let span = marks.span();
        let state = if marks.preflight {
            State::Preflight
        } else {
            let _in_span = span.enter();
            State::Inner {
                inner: self.inner.call(request),
            }
        };
        EdgeFuture {
            state,
            marks: Some(marks),
            span,
            metrics: self.chat.metrics().clone(),
        }
    }
}

pin_project! {
    /// The router's answer, finished by the edge; or the edge's own answer
    /// to a CORS preflight, which never reaches the router.
    pub struct EdgeFuture<F> {
        #[pin]
        state: State<F>,
        marks: Option<Marks>,
        // Entered while the router's future runs, so every log line of
        // the request names it.
        span: tracing::Span,
        metrics: Arc<Metrics>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] inner: F },
        Preflight,
        Done,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.as_mut().project();
        let _in_span = this.span.enter();
        let response = match this.state.project() {
            StateProj::Inner { inner } => match ready!(inner.poll(cx)) {
                Ok(response) => response,
                Err(never) => match never {},
            },
            StateProj::Preflight => this
                .marks
                .as_ref()
                .expect("marks are taken only when done")
                .preflight_answer(),
            StateProj::Done => panic!("EdgeFuture polled after completion"),
        };
        drop(_in_span);
        let mut this = self.project();
        let _in_span = this.span.enter();
        this.state.set(State::Done);
        let marks = this.marks.take().expect("marks are taken only when done");
        Poll::Ready(Ok(marks.finish(response, this.metrics)))
    }
}

/// What the edge learned from a request and adds to its answer.
struct Marks {
    /// An API path: the answer must not be cached.
    api: bool,
    /// A path of the user API, which host sites' pages may call.
    cross_origin_api: bool,
    /// A browser asking whether it may make a cross-origin call: the edge
    /// answers it.
    preflight: bool,
    /// The caller's origin, when it is allowed to read the answer.
    allowed_origin: Option<HeaderValue>,
    /// Present when the log line is wanted.
    log: Option<LogLine>,
    request_id: RequestId,
}

struct LogLine {
    started: Instant,
    method: Method,
    path: String,
}

impl Marks {
    fn of(request: &Request, chat: &Chat, request_id: RequestId) -> Marks {
        let path = request.uri().path();
        let cross_origin_api = path.starts_with("/api/v1/") && !path.starts_with("/api/v1/admin/");
        // A copy of the origin, not a clone of the request's header: that
        // would keep the connection's whole read buffer alive for as long
        // as a poll waits.
        let allowed_origin = request
            .headers()
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .filter(|origin| cross_origin_api && chat.origin_allowed(origin))
            .and_then(|origin| HeaderValue::from_str(origin).ok());
        let log = tracing::enabled!(tracing::Level::INFO).then(|| LogLine {
            started: Instant::now(),
            method: request.method().clone(),
            path: path.to_owned(),
        });
        Marks {
            api: path.starts_with("/api/"),
            cross_origin_api,
            preflight: request.method() == Method::OPTIONS
                && request.headers().contains_key(ORIGIN)
                && request
                    .headers()
                    .contains_key(ACCESS_CONTROL_REQUEST_METHOD),
            allowed_origin,
            log,
            request_id,
        }
    }

    /// The request's span: every line logged inside it carries the id.
    fn span(&self) -> tracing::Span {
        tracing::info_span!("request", id = %self.request_id)
    }

    /// The answer to a CORS preflight: permission for an allowed origin,
    /// a JSON refusal for any other.
    fn preflight_answer(&self) -> Response {
        let Some(origin) = self.allowed_origin.clone() else {
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
        response
    }

    /// Adds the edge's headers to an answer and logs it.
    fn finish(self, mut response: Response, metrics: &Metrics) -> Response {
        if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
            metrics.error(code);
        }
        let headers = response.headers_mut();
        // Room for the edge's headers at once, rather than a rehash of
        // the map halfway through them.
        headers.reserve(EDGE_HEADERS);
        headers.insert(X_REQUEST_ID, self.request_id.header());
        headers
            .entry(X_CONTENT_TYPE_OPTIONS)
            .or_insert(HeaderValue::from_static("nosniff"));
        headers
            .entry(REFERRER_POLICY)
            .or_insert(HeaderValue::from_static("no-referrer"));
        if headers
            .get(CONTENT_TYPE)
            .is_some_and(|t| t == "application/json")
        {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
        }
        if self.api {
            headers
                .entry(CACHE_CONTROL)
                .or_insert(HeaderValue::from_static("no-store"));
        }
        if !self.preflight {
            if self.cross_origin_api {
                // Whether an answer is readable depends on the origin:
                // caches must know.
                headers.append(VARY, HeaderValue::from_static("origin"));
            }
            if let Some(origin) = self.allowed_origin {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            }
        }
        if let Some(line) = self.log {
            tracing::info!(
                http.method = %line.method,
                http.path = %line.path,
                http.status = response.status().as_u16(),
                duration_ms = line.started.elapsed().as_millis() as u64,
                "request"
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn the_request_id_header_reads_as_displayed() {
        for (prefix, n) in [
            (0, 0),
            (0xdead_beef, 1),
            (7, 0x10),
            (u32::MAX, u64::MAX),
            (1, 12_345),
        ] {
            let id = RequestId { prefix, n };
            assert_eq!(id.header().to_str().unwrap(), id.to_string());
        }
    }
}
