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
use crate::http::extract::{Auth, ClientSource, JsonBody, PathId, QueryParams};
use crate::http::wire::{PersonOut, SessionOut, UserOut};
use crate::model::{SessionId, UserId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(search).post(register))
        .route("/api/v1/users/{id}", get(user))
        .route("/api/v1/sessions", post(login))
        .route("/api/v1/sessions/sso", post(sso_login))
        .route("/api/v1/sessions/current", delete(logout))
        .route("/api/v1/me", get(me).patch(update_me))
        .route("/api/v1/me/password", post(change_password))
        .route(
            "/api/v1/me/sessions",
            get(my_sessions).delete(end_other_sessions),
        )
        .route("/api/v1/me/sessions/{id}", delete(end_my_session))
        .route("/api/v1/me/deactivate", post(deactivate_me))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

/// `GET /api/v1/users?q=`: people of the caller's community by name.
async fn search(
    State(s): State<AppState>,
    Auth(caller): Auth,
    QueryParams(query): QueryParams<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let found = s.chat.search_people(&caller, &query.q, query.limit).await?;
    let users: Vec<PersonOut> = found.iter().map(PersonOut::from).collect();
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
struct RegisterIn {
    username: String,
    password: String,
    display_name: Option<String>,
    /// Required when registration is invite-only.
    invite: Option<String>,
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
            input.invite.as_deref(),
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

/// `GET /api/v1/users/{id}`: the profile of someone the caller shares a
/// conversation with (anyone else is not found).
async fn user(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<Value>> {
    let user = s.chat.visible_user(caller.user, UserId(id)).await?;
    Ok(Json(json!({ "user": UserOut::from(&user) })))
}

#[derive(Deserialize)]
struct PasswordIn {
    current_password: String,
    new_password: String,
    /// Sign out every other session (the default).
    #[serde(default = "yes")]
    end_other_sessions: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/me/password`: change the caller's password.
async fn change_password(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(input): JsonBody<PasswordIn>,
) -> ApiResult<Json<Value>> {
    let ended = s
        .chat
        .change_password(
            &caller,
            &input.current_password,
            &input.new_password,
            input.end_other_sessions,
        )
        .await?;
    Ok(Json(json!({ "ended_sessions": ended })))
}

/// `GET /api/v1/me/sessions`: the caller's live sessions.
async fn my_sessions(State(s): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<Value>> {
    let sessions = s.chat.sessions(&caller).await?;
    let sessions: Vec<_> = sessions.iter().map(SessionOut::from).collect();
    Ok(Json(json!({ "sessions": sessions })))
}

/// `DELETE /api/v1/me/sessions`: sign out every session but this one.
async fn end_other_sessions(
    State(s): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<Json<Value>> {
    let ended = s.chat.end_other_sessions(&caller).await?;
    Ok(Json(json!({ "ended_sessions": ended })))
}

/// `DELETE /api/v1/me/sessions/{id}`: sign out one of the caller's sessions.
async fn end_my_session(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    s.chat.end_own_session(&caller, SessionId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DeactivateIn {
    password: String,
}

/// `POST /api/v1/me/deactivate`: deactivate the caller's own account.
async fn deactivate_me(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(input): JsonBody<DeactivateIn>,
) -> ApiResult<StatusCode> {
    s.chat
        .deactivate_own_account(&caller, &input.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
