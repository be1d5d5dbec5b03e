//! Accounts and sessions: register, log in, log out, profiles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::Login;
use crate::http::AppState;
use crate::http::error::ApiResult;
use crate::http::extract::{Auth, ClientSource, JsonBody, PathId};
use crate::http::wire::UserOut;
use crate::model::UserId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(register))
        .route("/api/v1/users/{id}", get(user))
        .route("/api/v1/sessions", post(login))
        .route("/api/v1/sessions/sso", post(sso_login))
        .route("/api/v1/sessions/current", delete(logout))
        .route("/api/v1/me", get(me).patch(update_me))
}

#[derive(Deserialize)]
struct RegisterIn {
    username: String,
    password: String,
    display_name: Option<String>,
}

/// `POST /api/v1/users`: create an account.
async fn register(
    State(s): State<AppState>,
    ClientSource(source): ClientSource,
    JsonBody(input): JsonBody<RegisterIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = s
        .chat
        .register(
            source,
            &input.username,
            &input.password,
            input.display_name.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserOut::from(&user) })),
    ))
}

#[derive(Deserialize)]
struct LoginIn {
    username: String,
    password: String,
}

/// `POST /api/v1/sessions`: log in; the token is shown only here.
async fn login(
    State(s): State<AppState>,
    ClientSource(source): ClientSource,
    JsonBody(input): JsonBody<LoginIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let login = s
        .chat
        .login(source, &input.username, &input.password)
        .await?;
    Ok((StatusCode::CREATED, Json(login_json(&login))))
}

fn login_json(login: &Login) -> Value {
    json!({
        "token": login.token,
        "session_id": login.session,
        "expires_at": login.expires_at,
        "user": UserOut::from(&login.user),
    })
}

#[derive(Deserialize)]
struct SsoIn {
    token: String,
    /// The site's id; without it the token's `iss` chooses the site.
    site: Option<String>,
}

/// `POST /api/v1/sessions/sso`: exchange a host site's signed token for a
/// session (docs/embedding.md).
async fn sso_login(
    State(s): State<AppState>,
    ClientSource(source): ClientSource,
    JsonBody(input): JsonBody<SsoIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let login = s
        .chat
        .sso_login(source, input.site.as_deref(), &input.token)
        .await?;
    Ok((StatusCode::CREATED, Json(login_json(&login))))
}

/// `DELETE /api/v1/sessions/current`: log out; open polls of the session
/// return `session_ended`.
async fn logout(State(s): State<AppState>, Auth(caller): Auth) -> ApiResult<StatusCode> {
    s.chat.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`: the caller's profile, and how many event polls the
/// caller's sessions hold open right now.
async fn me(State(s): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<Value>> {
    let user = s.chat.user(caller.user).await?;
    Ok(Json(json!({
        "user": UserOut::from(&user),
        "open_event_polls": s.chat.hub().open_polls(caller.user),
    })))
}

#[derive(Deserialize)]
struct ProfileIn {
    display_name: Option<String>,
    /// An empty string returns to the generated avatar.
    avatar_url: Option<String>,
}

/// `PATCH /api/v1/me`: change display name and/or avatar.
async fn update_me(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(input): JsonBody<ProfileIn>,
) -> ApiResult<Json<Value>> {
    let user = s
        .chat
        .update_profile(
            &caller,
            input.display_name.as_deref(),
            input.avatar_url.as_deref(),
        )
        .await?;
    Ok(Json(json!({ "user": UserOut::from(&user) })))
}

/// `GET /api/v1/users/{id}`: another user's public profile.
async fn user(
    State(s): State<AppState>,
    Auth(_): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let user = s.chat.user(UserId(id)).await?;
    Ok(Json(json!({ "user": UserOut::from(&user) })))
}
