//! Messages: send, page history, mark read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::error::ApiResult;
use crate::http::extract::{Auth, JsonBody, PathId, QueryParams};
use crate::http::wire::EventOut;
use crate::model::{RoomId, Seq};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms/{id}/messages", get(history).post(send))
        .route("/rooms/{id}/read", post(mark_read))
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
) -> ApiResult<(StatusCode, Json<Value>)> {
    let appended = s
        .chat
        .send(&caller, RoomId(id), &input.client_msg_id, &input.text)
        .await?;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "message": EventOut::from(&appended.event),
            "duplicate": appended.duplicate,
        })),
    ))
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
