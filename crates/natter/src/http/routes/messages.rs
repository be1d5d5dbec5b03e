//! Messages: send (or reply), page history, read one, edit, delete,
//! react, mark read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::chat::{Caller, Changed};
use crate::http::error::ApiResult;
use crate::http::extract::{Auth, JsonBody, PathId, PathIds, PathText, QueryParams, path_id};
use crate::http::wire::{CurrentOut, encoded_event};
use crate::http::{AppState, json_response};
use crate::model::{RoomId, Seq};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{id}/messages", get(history).post(send))
        .route(
            "/api/v1/rooms/{id}/messages/{seq}",
            get(one).patch(edit).delete(delete),
        )
        .route(
            "/api/v1/rooms/{id}/messages/{seq}/reactions/{reaction}",
            put(add_reaction).delete(remove_reaction),
        )
        .route("/api/v1/rooms/{id}/read", post(mark_read))
}

#[derive(Deserialize)]
struct SendIn {
    client_msg_id: String,
    text: String,
    /// The message this one answers.
    reply_to: Option<Seq>,
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
        .send(
            &caller,
            RoomId(id),
            &input.client_msg_id,
            &input.text,
            input.reply_to,
        )
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
    let has_more = events.entries.first().is_some_and(|e| e.event.seq > 1);
    let messages: Vec<_> = events.entries.iter().map(CurrentOut::from).collect();
    Ok(Json(
        json!({ "messages": messages, "has_more": has_more, "head_seq": events.head }),
    ))
}

/// `GET /api/v1/rooms/{id}/messages/{seq}`: one message as it stands now
/// (for a quote whose original is not loaded).
async fn one(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathIds(id, seq): PathIds,
) -> ApiResult<Json<Value>> {
    let message = s.chat.message(&caller, RoomId(id), seq).await?;
    Ok(Json(json!({ "message": CurrentOut::from(&message) })))
}

#[derive(Deserialize)]
struct EditIn {
    text: String,
}

fn changed(c: Changed) -> Json<Value> {
    Json(json!({ "message": CurrentOut::from(&c.message), "changed": c.changed }))
}

/// `PATCH /api/v1/rooms/{id}/messages/{seq}`: the sender's new text.
async fn edit(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathIds(id, seq): PathIds,
    JsonBody(input): JsonBody<EditIn>,
) -> ApiResult<Json<Value>> {
    let edited = s.chat.edit(&caller, RoomId(id), seq, &input.text).await?;
    Ok(changed(edited))
}

/// `DELETE /api/v1/rooms/{id}/messages/{seq}`: by the sender or a room
/// manager; the text leaves the store.
async fn delete(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathIds(id, seq): PathIds,
) -> ApiResult<Json<Value>> {
    let deleted = s.chat.delete_message(&caller, RoomId(id), seq).await?;
    Ok(changed(deleted))
}

/// `PUT /api/v1/rooms/{id}/messages/{seq}/reactions/{reaction}`.
async fn add_reaction(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathText(path): PathText<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    react(&s, &caller, path, true).await
}

/// `DELETE /api/v1/rooms/{id}/messages/{seq}/reactions/{reaction}`.
async fn remove_reaction(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathText(path): PathText<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    react(&s, &caller, path, false).await
}

/// Gives (`add`) or takes back a reaction named by a reactions path.
async fn react(
    s: &AppState,
    caller: &Caller,
    (room, seq, reaction): (String, String, String),
    add: bool,
) -> ApiResult<Json<Value>> {
    let (room, seq) = (RoomId(path_id(&room)?), path_id(&seq)?);
    Ok(changed(
        s.chat.react(caller, room, seq, &reaction, add).await?,
    ))
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
