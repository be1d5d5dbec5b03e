//! The event stream by long polling.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::http::error::ApiResult;
use crate::http::extract::Auth;
use crate::http::poll_query::PollQuery;
use crate::http::wire::EventsOut;
use crate::http::{AppState, json_response_sized};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", get(poll))
}

/// `GET /api/v1/events?cursor=&timeout=&limit=&watch=`: everything after the cursor in
/// all of the caller's conversations, waiting for it if there is nothing
/// yet. See docs/protocol.md.
async fn poll(State(s): State<AppState>, Auth(caller): Auth, q: PollQuery) -> ApiResult<Response> {
    let answer = s
        .chat
        .poll(
            &caller,
            q.cursor.as_deref(),
            q.timeout,
            q.limit,
            q.watch.as_deref(),
        )
        .await?;
    let out = EventsOut::from(&answer);
    json_response_sized(StatusCode::OK, &out, out.size_hint())
}
