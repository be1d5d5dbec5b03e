//! Messages: send, page history, mark read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::http::error::ApiResult;
use crate::http::extract::{Auth, JsonBody, PathId, QueryParams};
use crate::http::wire::{EventOut, encoded_event};
use crate::http::{AppState, json_response};
use crate::model::{RoomId, Seq};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{id}/messages", get(history).post(send))
        .route("/api/v1/rooms/{id}/read", post(mark_read))
}

#[derive(Deserialize)]
struct SendIn {
    client_msg_id: String,
    text: String,
}

/// `POST /api/v1/rooms/{id}/messages`: send; 201 when stored, 200 when the
/// client message id was already used (the stored message is returned).
async fn send(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    JsonBody(input): JsonBody<SendIn>,
) -> ApiResult<Response> {
    let sent = s
        .chat
        .send(&caller, RoomId(id), &input.client_msg_id, &input.text)
        .await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    // The event's JSON, encoded here once, is what every poll then sends.
    let body = SentOut {
        message: encoded_event(&sent.event),
        duplicate: sent.duplicate,
    };
    json_response(status, &body)
}

#[derive(Serialize)]
struct SentOut<'a> {
    message: &'a RawValue,
    duplicate: bool,
}

#[derive(Deserialize)]
struct HistoryQuery {
    before: Option<Seq>,
    limit: Option<usize>,
}

/// `GET /api/v1/rooms/{id}/messages?before=&limit=`: a page of events
/// before a sequence number, oldest first.
async fn history(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let events = s
        .chat
        .history(&caller, RoomId(id), q.before, q.limit)
        .await?;
    let has_more = events.first().is_some_and(|e| e.seq > 1);
    let events: Vec<_> = events.iter().map(EventOut::from).collect();
    Ok(Json(json!({ "messages": events, "has_more": has_more })))
}

#[derive(Deserialize)]
struct ReadIn {
    seq: Seq,
}

/// `POST /api/v1/rooms/{id}/read`: move the read marker forward.
async fn mark_read(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    JsonBody(input): JsonBody<ReadIn>,
) -> ApiResult<Json<Value>> {
    let read_seq = s.chat.mark_read(&caller, RoomId(id), input.seq).await?;
    Ok(Json(json!({ "read_seq": read_seq })))
}
