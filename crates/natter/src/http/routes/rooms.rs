//! Conversations: create, list, join, invite, leave, members, direct chats.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::MemberPage;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Auth, JsonBody, PathId, QueryParams};
use crate::http::wire::{MembersOut, RoomListingOut, RoomOut, parse_place};
use crate::model::{RoomId, UserId, Visibility};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms", get(list).post(create))
        .route("/api/v1/rooms/public", get(public))
        .route("/api/v1/rooms/{id}", get(room).patch(update))
        .route("/api/v1/rooms/{id}/join", post(join))
        .route("/api/v1/rooms/{id}/leave", post(leave))
        .route("/api/v1/rooms/{id}/members", get(members).post(invite))
        .route("/api/v1/direct", post(open_direct))
}

#[derive(Deserialize)]
struct CreateIn {
    title: String,
    #[serde(default = "private")]
    visibility: Visibility,
}

fn private() -> Visibility {
    Visibility::Private
}

/// `POST /api/v1/rooms`: create a group room owned by the caller.
async fn create(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(input): JsonBody<CreateIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let room = s
        .chat
        .create_room(&caller, &input.title, input.visibility)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "room": RoomOut::from(&room) })),
    ))
}

/// `GET /api/v1/rooms`: the caller's conversations with unread counts.
async fn list(State(s): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<Value>> {
    let rooms = s.chat.rooms(&caller).await?;
    let rooms: Vec<_> = rooms.iter().map(RoomListingOut::from).collect();
    Ok(Json(json!({ "rooms": rooms })))
}

/// `GET /api/v1/rooms/public`: the directory of public rooms.
async fn public(State(s): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<Value>> {
    let rooms = s.chat.public_rooms(&caller).await?;
    let rooms: Vec<_> = rooms.iter().map(RoomOut::from).collect();
    Ok(Json(json!({ "rooms": rooms })))
}

/// `GET /api/v1/rooms/{id}`: a room the caller is in, or a public one.
async fn room(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let room = s.chat.room(&caller, RoomId(id)).await?;
    Ok(Json(json!({ "room": RoomOut::from(&room) })))
}

#[derive(Deserialize)]
struct UpdateIn {
    title: Option<String>,
    visibility: Option<Visibility>,
}

/// `PATCH /api/v1/rooms/{id}`: rename or change visibility (owner/admin).
async fn update(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    JsonBody(input): JsonBody<UpdateIn>,
) -> ApiResult<Json<Value>> {
    let room = s
        .chat
        .update_room(
            &caller,
            RoomId(id),
            input.title.as_deref(),
            input.visibility,
        )
        .await?;
    Ok(Json(json!({ "room": RoomOut::from(&room) })))
}

/// `POST /api/v1/rooms/{id}/join`: join a public room.
async fn join(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let room = s.chat.join(&caller, RoomId(id)).await?;
    Ok(Json(json!({ "room": RoomOut::from(&room) })))
}

/// `POST /api/v1/rooms/{id}/leave`: leave a group room.
async fn leave(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    s.chat.leave(&caller, RoomId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct MembersQuery {
    after: Option<String>,
    q: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/rooms/{id}/members?after=&q=&limit=`: a page of members
/// by name, with online flags and the room's counts.
async fn members(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    QueryParams(query): QueryParams<MembersQuery>,
) -> ApiResult<Json<MembersOut>> {
    let after = match query.after.as_deref() {
        None => None,
        Some(after) => Some(parse_place(after).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_after",
                "after must be a page's next, or the positive id of a member",
            )
        })?),
    };
    let page = MemberPage {
        after,
        text: query.q.as_deref(),
        limit: query.limit,
    };
    let list = s.chat.members(&caller, RoomId(id), page).await?;
    Ok(Json(MembersOut::from(&list)))
}

#[derive(Deserialize)]
struct UserRef {
    user_id: i64,
}

impl UserRef {
    /// Ids are positive, as in paths; anything else is a malformed request.
    fn id(&self) -> ApiResult<UserId> {
        if self.user_id > 0 {
            Ok(UserId(self.user_id))
        } else {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "user_id must be a positive integer",
            ))
        }
    }
}

/// `POST /api/v1/rooms/{id}/members`: invite a user.
async fn invite(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    JsonBody(input): JsonBody<UserRef>,
) -> ApiResult<StatusCode> {
    s.chat.invite(&caller, RoomId(id), input.id()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/direct`: the direct conversation with a user (201 when
/// this call created it, 200 when it existed).
async fn open_direct(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(input): JsonBody<UserRef>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (room, created) = s.chat.open_direct(&caller, input.id()?).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "room": RoomOut::from(&room) }))))
}
