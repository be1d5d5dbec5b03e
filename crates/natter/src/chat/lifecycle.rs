//! An account's life after registration: changing the password, seeing
//! and ending one's sessions, deactivating the account (by its owner or
//! the admin API), and the invite codes that invite-only registration
//! takes.
//!
//! Every change that ends sessions ends them in the same transaction as
//! the change itself, and announces them on the bus, so their open polls
//! return at once on every node.

use std::time::Duration;

use super::accounts::{invite_hash, random_secret};
use super::{Caller, Chat, Limit, sessions_ended};
use crate::error::{ChatError, ChatResult};
use crate::model::{EndReason, Millis, SessionId, UserId, now_ms};
use crate::store::{EndSessions, SessionInfo};
use crate::text::{Invalid, Password};

/// One of the caller's live sessions.
pub struct SessionListing {
    pub session: SessionInfo,
    /// The session this request came with.
    pub current: bool,
}

/// A new invite code; shown once, stored only as a hash.
pub struct Invite {
    pub code: String,
    pub expires_at: Millis,
}

impl Chat {
    /// Checks the caller's own password, with the same growing delay
    /// after wrong guesses as a login: a stolen session cannot be used
    /// to guess the password behind it.
    async fn check_own_password(&self, user: UserId, password: &str) -> ChatResult<()> {
        let account = self.user(user).await?;
        if account.username.contains(':') {
            return Err(ChatError::NotAllowed(
                "this account signs in through its site and has no password here",
            ));
        }
        self.limits.by_user(Limit::PasswordCheck, user).await?;
        let attempt = self.limits.begin_login(&account.username)?;
        let credentials = self
            .store
            .credentials(&account.username)
            .await?
            .ok_or(ChatError::UserNotFound)?;
        let ok = self
            .passwords
            .verify(password.to_owned(), credentials.password_hash)
            .await?;
        if !ok {
            attempt.failed();
            return Err(ChatError::WrongPassword);
        }
        attempt.succeeded();
        Ok(())
    }

    /// Changes the caller's password. By default every other session of
    /// theirs ends (whoever else held one is signed out); the caller's
    /// own goes on. Returns how many sessions ended.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &str,
        new: &str,
        end_other_sessions: bool,
    ) -> ChatResult<usize> {
        let new = Password::parse(new)?;
        self.check_own_password(caller.user, current).await?;
        let hash = self.passwords.hash(new.as_str().to_owned()).await?;
        let ending = if end_other_sessions {
            EndSessions::AllBut(caller.session)
        } else {
            EndSessions::None
        };
        let (store, user) = (self.store.clone(), caller.user);
        self.commit(async move {
            let ended = store.set_password(user, hash, ending, now_ms()).await?;
            let count = ended.len();
            Ok((count, sessions_ended(user, ended, EndReason::LoggedOut)))
        })
        .await
    }

    /// The caller's live sessions, oldest first.
    pub async fn sessions(&self, caller: &Caller) -> ChatResult<Vec<SessionListing>> {
        let sessions = self.store.live_sessions(caller.user, now_ms()).await?;
        Ok(sessions
            .into_iter()
            .map(|session| SessionListing {
                current: session.id == caller.session,
                session,
            })
            .collect())
    }

    /// Ends one of the caller's sessions; another user's is not found.
    pub async fn end_own_session(&self, caller: &Caller, session: SessionId) -> ChatResult<()> {
        let live = self.store.live_sessions(caller.user, now_ms()).await?;
        if !live.iter().any(|s| s.id == session) {
            return Err(ChatError::SessionNotFound);
        }
        let (store, user) = (self.store.clone(), caller.user);
        self.commit(async move {
            store
                .end_session(session, EndReason::LoggedOut, now_ms())
                .await?;
            Ok((
                (),
                sessions_ended(user, vec![session], EndReason::LoggedOut),
            ))
        })
        .await
    }

    /// Ends every session of the caller's but this one ("sign out
    /// everywhere else"); returns how many ended.
    pub async fn end_other_sessions(&self, caller: &Caller) -> ChatResult<usize> {
        self.end_sessions_of(
            caller.user,
            EndSessions::AllBut(caller.session),
            EndReason::LoggedOut,
        )
        .await
    }

    /// Ends the sessions of `user` that `which` names, and their polls.
    pub(super) async fn end_sessions_of(
        &self,
        user: UserId,
        which: EndSessions,
        reason: EndReason,
    ) -> ChatResult<usize> {
        let store = self.store.clone();
        self.commit(async move {
            let ended = store
                .end_user_sessions(user, which, reason, now_ms())
                .await?;
            let count = ended.len();
            Ok((count, sessions_ended(user, ended, reason)))
        })
        .await
    }

    /// Deactivates the caller's own account, after checking their
    /// password: every session and poll ends, and logins are refused.
    pub async fn deactivate_own_account(&self, caller: &Caller, password: &str) -> ChatResult<()> {
        self.check_own_password(caller.user, password).await?;
        self.set_deactivated(caller.user, true).await.map(|_| ())
    }

    /// Deactivates or reactivates an account (the admin API); returns how
    /// many sessions ended.
    pub async fn set_deactivated(&self, user: UserId, deactivated: bool) -> ChatResult<usize> {
        self.not_the_system_user(user).await?;
        let store = self.store.clone();
        self.commit(async move {
            let ended = store.set_deactivated(user, deactivated, now_ms()).await?;
            let count = ended.len();
            Ok((count, sessions_ended(user, ended, EndReason::Deactivated)))
        })
        .await
    }

    /// A new invite code for invite-only registration, good once, for
    /// `valid_for_secs` (60 s to a year; a week when not given).
    pub async fn create_invite(&self, valid_for_secs: Option<u64>) -> ChatResult<Invite> {
        let secs = valid_for_secs.unwrap_or(7 * 86_400);
        if !(60..=365 * 86_400).contains(&secs) {
            return Err(ChatError::Invalid(Invalid {
                code: "invalid_valid_for",
                message: "valid_for_secs must be 60..=31536000".into(),
            }));
        }
        let valid_for = Duration::from_secs(secs);
        let code = random_secret();
        let at = now_ms();
        let expires_at = at + valid_for.as_millis() as Millis;
        self.store
            .create_invite(invite_hash(&code), at, expires_at)
            .await?;
        Ok(Invite { code, expires_at })
    }
}
