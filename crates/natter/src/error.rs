//! The domain's one error type. Each case maps to one stable API code in
//! `http::error`; the domain itself knows nothing of HTTP.

use crate::model::EndReason;
use crate::store::StoreError;
use crate::text::Invalid;

/// Why a chat operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("authentication required")]
    Unauthenticated,
    #[error("the session has ended")]
    SessionEnded(EndReason),
    #[error("the session has expired")]
    SessionExpired,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("this account has been deactivated")]
    AccountDeactivated,
    #[error("this server does not take new accounts")]
    RegistrationClosed,
    #[error("a valid, unused invite code is required")]
    InviteInvalid,
    #[error("no such session")]
    SessionNotFound,
    #[error("that username is taken")]
    UsernameTaken,
    #[error("no such user")]
    UserNotFound,
    #[error("no such room")]
    RoomNotFound,
    #[error("you are not a member of this room")]
    NotAMember,
    #[error("no such message in this room")]
    MessageNotFound,
    #[error("the message was deleted")]
    MessageDeleted,
    #[error("the time for editing this message is over")]
    EditWindowClosed,
    #[error("too many {0}")]
    TooManyReactions(&'static str),
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("this client_msg_id was already used for a different message")]
    IdempotencyConflict,
    #[error("the cursor cannot be served exactly ({0}); resync")]
    ResyncRequired(&'static str),
    #[error("too many open polls for this user")]
    TooManyPolls,
    /// A rate limit refused the call; it may be tried again after `retry_after`.
    #[error("too many requests; try again later")]
    RateLimited {
        limit: crate::chat::Limit,
        retry_after: std::time::Duration,
    },
    /// A host site's sign-in token was refused; `code` says why.
    #[error("{message}")]
    TokenRefused { code: &'static str, message: String },
    /// The disk is full: nothing was stored; it works again once there is room.
    #[error("the server's storage is full; try again later")]
    StorageFull,
    /// The store cannot be reached right now (its database is down or
    /// restarting): nothing was written; the same call may succeed soon.
    /// The detail is logged, not shown.
    #[error("the store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Invalid> for ChatError {
    fn from(e: Invalid) -> Self {
        ChatError::Invalid(e)
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict("username") => ChatError::UsernameTaken,
            StoreError::Conflict("deactivated") => ChatError::AccountDeactivated,
            StoreError::Conflict("password_changed") => ChatError::InvalidCredentials,
            StoreError::NotFound("invite") => ChatError::InviteInvalid,
            StoreError::NotFound("user") => ChatError::UserNotFound,
            StoreError::NotFound("message") => ChatError::MessageNotFound,
            StoreError::NotAllowed(why) => ChatError::NotAllowed(why),
            StoreError::MessageDeleted => ChatError::MessageDeleted,
            StoreError::EditWindowClosed => ChatError::EditWindowClosed,
            StoreError::TooMany(what) => ChatError::TooManyReactions(what),
            StoreError::NotFound(_) => ChatError::RoomNotFound,
            StoreError::NotAMember => ChatError::NotAMember,
            StoreError::IdempotencyConflict => ChatError::IdempotencyConflict,
            StoreError::Full => ChatError::StorageFull,
            StoreError::Unavailable(why) => ChatError::StoreUnavailable(why),
            other => ChatError::Internal(other.to_string()),
        }
    }
}

/// Results of domain operations.
pub type ChatResult<T> = Result<T, ChatError>;
