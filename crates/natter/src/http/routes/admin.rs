//! The server-to-server admin API (`/api/v1/admin/…`), for a host site's
//! backend: rooms, rosters, profiles, notices, sessions. Every route takes
//! the `Admin` extractor: a configured key, and no browser.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::MemberRef;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Admin, JsonBody, PathId, PathIds, PathText};
use crate::http::wire::{EventOut, RoomOut, UserOut};
use crate::model::{RoomId, UserId, Visibility};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/rooms", post(create_room))
        .route(
            "/api/v1/admin/rooms/{id}/members",
            post(add_member).put(sync_members),
        )
        .route(
            "/api/v1/admin/rooms/{id}/members/{user_id}",
            delete(remove_member),
        )
        .route("/api/v1/admin/rooms/{id}/messages", post(post_message))
        .route("/api/v1/admin/users/{id}", patch(update_user))
        .route("/api/v1/admin/users/{id}/sessions", delete(end_sessions))
        .route("/api/v1/admin/users/{id}/deactivate", post(deactivate_user))
        .route("/api/v1/admin/users/{id}/reactivate", post(reactivate_user))
        .route("/api/v1/admin/invites", post(create_invite))
        .route(
            "/api/v1/admin/sites/{site}/users/{external_id}",
            get(site_user),
        )
}

/// A member as the admin API names one: `{"user_id": 7}` or
/// `{"site": "school", "external_id": "42", "name": "…", "avatar_url": "…"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MemberIn {
    Id {
        user_id: i64,
    },
    Site {
        site: String,
        external_id: String,
        name: Option<String>,
        avatar_url: Option<String>,
    },
}

impl MemberIn {
    fn into_ref(self) -> ApiResult<MemberRef> {
        match self {
            MemberIn::Id { user_id } if user_id > 0 => Ok(MemberRef::Id(UserId(user_id))),
            MemberIn::Id { .. } => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "user_id must be a positive integer",
            )),
            MemberIn::Site {
                site,
                external_id,
                name,
                avatar_url,
            } => Ok(MemberRef::Site {
                site,
                external_id,
                name,
                avatar_url,
            }),
        }
    }
}

#[derive(Deserialize)]
struct CreateRoomIn {
    title: String,
    #[serde(default = "private")]
    visibility: Visibility,
    /// The site whose users the room is for; without it, everyone's.
    site: Option<String>,
}

fn private() -> Visibility {
    Visibility::Private
}

/// `POST /api/v1/admin/rooms`: a room owned by the system user.
async fn create_room(
    _: Admin,
    State(s): State<AppState>,
    JsonBody(input): JsonBody<CreateRoomIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let room = s
        .chat
        .admin_create_room(&input.title, input.visibility, input.site.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "room": RoomOut::from(&room) })),
    ))
}

/// `POST /api/v1/admin/rooms/{id}/members`: add one member.
async fn add_member(
    _: Admin,
    State(s): State<AppState>,
    PathId(room): PathId,
    JsonBody(input): JsonBody<MemberIn>,
) -> ApiResult<Json<Value>> {
    let user = s
        .chat
        .admin_add_member(RoomId(room), &input.into_ref()?)
        .await?;
    Ok(Json(json!({ "user": UserOut::from(&user) })))
}

#[derive(Deserialize)]
struct RosterIn {
    members: Vec<MemberIn>,
}

/// At most this many members in one roster sync.
const MAX_ROSTER: usize = 5000;

/// `PUT /api/v1/admin/rooms/{id}/members`: make the members exactly these
/// (the system user and the room's owner stay).
async fn sync_members(
    _: Admin,
    State(s): State<AppState>,
    PathId(room): PathId,
    JsonBody(input): JsonBody<RosterIn>,
) -> ApiResult<Json<Value>> {
    if input.members.len() > MAX_ROSTER {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "roster_too_large",
            format!("a roster has at most {MAX_ROSTER} members"),
        ));
    }
    let roster = input
        .members
        .into_iter()
        .map(MemberIn::into_ref)
        .collect::<ApiResult<Vec<_>>>()?;
    let change = s.chat.admin_sync_members(RoomId(room), &roster).await?;
    let members: Vec<_> = change.members.iter().map(UserOut::from).collect();
    Ok(Json(
        json!({ "added": change.added, "removed": change.removed, "members": members }),
    ))
}

/// `DELETE /api/v1/admin/rooms/{id}/members/{user_id}`: remove a member.
async fn remove_member(
    _: Admin,
    State(s): State<AppState>,
    PathIds(room, user): PathIds,
) -> ApiResult<StatusCode> {
    s.chat
        .admin_remove_member(RoomId(room), UserId(user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct NoticeIn {
    text: String,
    client_msg_id: Option<String>,
}

/// `POST /api/v1/admin/rooms/{id}/messages`: a notice from the system user.
async fn post_message(
    _: Admin,
    State(s): State<AppState>,
    PathId(room): PathId,
    JsonBody(input): JsonBody<NoticeIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (event, duplicate) = s
        .chat
        .admin_post(RoomId(room), &input.text, input.client_msg_id.as_deref())
        .await?;
    // As for a user's send: 200 when the client message id was used before.
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({ "message": EventOut::from(&event), "duplicate": duplicate })),
    ))
}

#[derive(Deserialize)]
struct UserPatchIn {
    display_name: Option<String>,
    avatar_url: Option<String>,
}

/// `PATCH /api/v1/admin/users/{id}`: change a user's name or avatar.
async fn update_user(
    _: Admin,
    State(s): State<AppState>,
    PathId(user): PathId,
    JsonBody(input): JsonBody<UserPatchIn>,
) -> ApiResult<Json<Value>> {
    let user = s
        .chat
        .admin_update_user(
            UserId(user),
            input.display_name.as_deref(),
            input.avatar_url.as_deref(),
        )
        .await?;
    Ok(Json(json!({ "user": UserOut::from(&user) })))
}

/// `DELETE /api/v1/admin/users/{id}/sessions`: end all of a user's sessions.
async fn end_sessions(
    _: Admin,
    State(s): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<Json<Value>> {
    let ended = s.chat.admin_end_sessions(UserId(user)).await?;
    Ok(Json(json!({ "ended": ended })))
}

/// `GET /api/v1/admin/sites/{site}/users/{external_id}`: find a site's user.
async fn site_user(
    _: Admin,
    State(s): State<AppState>,
    PathText((site, external_id)): PathText<(String, String)>,
) -> ApiResult<Json<Value>> {
    let user = s.chat.admin_site_user(&site, &external_id).await?;
    Ok(Json(json!({ "user": UserOut::from(&user) })))
}

/// `POST /api/v1/admin/users/{id}/deactivate`: end every session and poll
/// of the user at once and refuse their logins.
async fn deactivate_user(
    _: Admin,
    State(s): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<Json<Value>> {
    let ended = s.chat.set_deactivated(UserId(user), true).await?;
    Ok(Json(json!({ "ended": ended })))
}

/// `POST /api/v1/admin/users/{id}/reactivate`: let a deactivated user sign in again.
async fn reactivate_user(
    _: Admin,
    State(s): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<StatusCode> {
    s.chat.set_deactivated(UserId(user), false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct InviteIn {
    /// How long the code stays good [default: 7 days].
    valid_for_secs: Option<u64>,
}

/// `POST /api/v1/admin/invites`: an invite code for invite-only registration.
async fn create_invite(
    _: Admin,
    State(s): State<AppState>,
    JsonBody(input): JsonBody<InviteIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let invite = s.chat.create_invite(input.valid_for_secs).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "code": invite.code, "expires_at": invite.expires_at })),
    ))
}
