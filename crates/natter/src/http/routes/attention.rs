//! Typing notices and each member's notification choice for a room.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Auth, JsonBody, PathId};
use crate::model::{NotifyLevel, RoomId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{id}/typing", post(typing))
        .route("/api/v1/rooms/{id}/notifications", put(notifications))
}

#[derive(Deserialize)]
struct TypingIn {
    /// `false` when the user cleared the composer without sending.
    typing: bool,
}

/// `POST /api/v1/rooms/{id}/typing`: the caller is (or stopped) typing.
async fn typing(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    JsonBody(input): JsonBody<TypingIn>,
) -> ApiResult<Json<Value>> {
    let announced = s.chat.typing(&caller, RoomId(id), input.typing).await?;
    Ok(Json(json!({ "announced": announced })))
}

#[derive(Deserialize)]
struct NotificationsIn {
    /// `all`, `mentions`, `none`, or `default` for the room kind's default.
    level: String,
}

/// `PUT /api/v1/rooms/{id}/notifications`: which messages notify the caller.
async fn notifications(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
    JsonBody(input): JsonBody<NotificationsIn>,
) -> ApiResult<Json<Value>> {
    let level = match input.level.as_str() {
        "default" => None,
        name => Some(NotifyLevel::parse(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_level",
                "level must be one of all, mentions, none, default",
            )
        })?),
    };
    let level = s.chat.set_notifications(&caller, RoomId(id), level).await?;
    Ok(Json(json!({ "level": level })))
}
