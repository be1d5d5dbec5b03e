//! The event stream by long polling.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

use crate::http::AppState;
use crate::http::error::ApiResult;
use crate::http::extract::{Auth, QueryParams};
use crate::http::wire::EventsOut;

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(poll))
}

#[derive(Deserialize)]
struct PollQuery {
    cursor: Option<String>,
    /// Seconds to wait when nothing is new.
    timeout: Option<u64>,
}

/// `GET /api/v1/events?cursor=&timeout=`: everything after the cursor in
/// all of the caller's conversations, waiting for it if there is nothing
/// yet. See docs/protocol.md.
async fn poll(
    State(s): State<AppState>,
    Auth(caller): Auth,
    QueryParams(q): QueryParams<PollQuery>,
) -> ApiResult<impl IntoResponse> {
    let answer = s.chat.poll(&caller, q.cursor.as_deref(), q.timeout).await?;
    let body = serde_json::to_vec(&EventsOut::from(&answer))
        .map_err(|e| crate::error::ChatError::Internal(e.to_string()))?;
    Ok(([(CONTENT_TYPE, "application/json")], body))
}
