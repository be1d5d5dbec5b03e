//! Accounts and sessions: register, log in and out, authenticate a token,
//! edit a profile.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{Chat, Limit, RegistrationMode, sessions_ended};
use crate::error::{ChatError, ChatResult};
use crate::model::{EndReason, Millis, SessionId, User, UserId, now_ms};
use crate::source::Source;
use crate::store::{NewSession, NewUser, ProfilePatch};
use crate::text::{AvatarUrl, DisplayName, Password, Username};

/// An authenticated request's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub session: SessionId,
}

/// A successful login.
pub struct Login {
    /// The bearer token; shown once, stored only as a hash.
    pub token: String,
    pub session: SessionId,
    pub user: User,
    pub expires_at: Millis,
}

/// Sessions recently seen, by token hash, so authenticating a poll does not
/// read the store every time. Ended sessions are dropped from it at once.
/// In a cluster an ending announced on the bus may never reach this node,
/// so every `session_recheck` the node asks the store which of its cached
/// sessions ended, all of them in one query ([`Chat::recheck_sessions`]),
/// rather than reading each one again on its next request.
#[derive(Default)]
pub(super) struct SessionCache {
    // Every request reads it; only logins and logouts write.
    inner: RwLock<CacheInner>,
}

/// Sessions asked about in one query of a recheck.
const RECHECK_BATCH: usize = 1000;

#[derive(Default)]
struct CacheInner {
    by_hash: HashMap<[u8; 32], (Caller, Millis)>,
    hash_of: HashMap<SessionId, [u8; 32]>,
    /// Bumped by every `forget`: a session read from the store before a
    /// forget may already have ended, so it is not cached.
    forgets: u64,
}

/// Entries kept at most; past this the cache starts over (a simple bound).
const SESSION_CACHE_MAX: usize = 100_000;

impl SessionCache {
    fn get(&self, hash: &[u8; 32]) -> Option<(Caller, Millis)> {
        self.inner
            .read()
            .expect("cache poisoned")
            .by_hash
            .get(hash)
            .copied()
    }

    /// Every session cached now, for a recheck.
    fn cached(&self) -> Vec<SessionId> {
        let inner = self.inner.read().expect("cache poisoned");
        inner.hash_of.keys().copied().collect()
    }

    /// The forget count to pass to [`SessionCache::put`] after a store read.
    fn generation(&self) -> u64 {
        self.inner.read().expect("cache poisoned").forgets
    }

    /// Caches a session read from the store, unless some session was
    /// forgotten since `generation` was taken (it may be this one).
    fn put(&self, hash: [u8; 32], caller: Caller, expires_at: Millis, generation: u64) {
        let mut inner = self.inner.write().expect("cache poisoned");
        if inner.forgets != generation {
            return;
        }
        if inner.by_hash.len() >= SESSION_CACHE_MAX {
            inner.by_hash.clear();
            inner.hash_of.clear();
        }
        inner.by_hash.insert(hash, (caller, expires_at));
        inner.hash_of.insert(caller.session, hash);
    }

    pub(super) fn forget(&self, sessions: &[SessionId]) {
        let mut inner = self.inner.write().expect("cache poisoned");
        inner.forgets += 1;
        for id in sessions {
            if let Some(hash) = inner.hash_of.remove(id) {
                inner.by_hash.remove(&hash);
            }
        }
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Invite codes are stored by hash too, like session tokens.
pub(super) fn invite_hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.trim().as_bytes()).into()
}

/// A random code or token: 256 bits, URL-safe.
pub(super) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Chat {
    /// A hash to verify against when the username does not exist, so a
    /// wrong username costs as much time as a wrong password.
    async fn decoy_hash(&self) -> ChatResult<String> {
        self.decoy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 24];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
                self.passwords.hash(URL_SAFE_NO_PAD.encode(random)).await
            })
            .await
            .cloned()
    }
}

impl Chat {
    /// Creates an account. The display name defaults to the username.
    pub async fn register(
        &self,
        source: Source,
        username: &str,
        password: &str,
        display_name: Option<&str>,
        invite: Option<&str>,
    ) -> ChatResult<User> {
        let invite = match (self.config.registration, invite) {
            (RegistrationMode::Open, _) => None,
            (RegistrationMode::Invite, Some(code)) => Some(invite_hash(code)),
            (RegistrationMode::Invite, None) => return Err(ChatError::InviteInvalid),
            (RegistrationMode::Sites | RegistrationMode::Closed, _) => {
                return Err(ChatError::RegistrationClosed);
            }
        };
        let username = Username::parse_new(username)?;
        let password = Password::parse(password)?;
        let display_name = match display_name {
            Some(name) => DisplayName::parse_chosen(name)?.into_string(),
            None => username.as_str().to_owned(),
        };
        self.limits.by_source(Limit::Register, source).await?;
        let password_hash = self.passwords.hash(password.as_str().to_owned()).await?;
        let user = self
            .store
            .create_user(NewUser {
                username: username.as_str().to_owned(),
                display_name,
                password_hash,
                at: now_ms(),
                invite,
            })
            .await?;
        Ok(user)
    }

    /// Checks a password and opens a session. In single-session mode the
    /// user's other sessions end, and their open polls return at once.
    ///
    /// Refused before any password is checked when the source has tried
    /// too often, or while the account's delay after wrong passwords
    /// runs; accounts that do not exist are delayed the same way, so the
    /// answers say nothing about which exist.
    pub async fn login(&self, source: Source, username: &str, password: &str) -> ChatResult<Login> {
        self.limits.by_source(Limit::Login, source).await?;
        // Any malformed username simply cannot match an account.
        let username = Username::parse(username).map_err(|_| ChatError::InvalidCredentials)?;
        let attempt = self.limits.begin_login(username.as_str())?;
        let found = self.store.credentials(username.as_str()).await?;
        let found_deactivated = found.as_ref().is_some_and(|c| c.deactivated);
        let (hash, user) = match found {
            Some(c) => (c.password_hash, Some(c.user)),
            None => (self.decoy_hash().await?, None),
        };
        let ok = self
            .passwords
            .verify(password.to_owned(), hash.clone())
            .await?;
        let user = match (ok, user) {
            (true, Some(user)) => user,
            _ => {
                attempt.failed();
                return Err(ChatError::InvalidCredentials);
            }
        };
        attempt.succeeded();
        // Said only to whoever knows the password.
        if found_deactivated {
            return Err(ChatError::AccountDeactivated);
        }
        // The session is made only if the password is still this one and
        // the account still active when it is written: a password change
        // or deactivation that lands during the check wins.
        self.open_session_checked(user, self.config.session_ttl, Some(hash))
            .await
    }

    /// Opens a session for an authenticated user (password or site token).
    /// In single-session mode the user's other sessions end.
    pub(super) async fn open_session(&self, user: User, ttl: Duration) -> ChatResult<Login> {
        self.open_session_checked(user, ttl, None).await
    }

    /// Opens a session if, when it is written, the account is active and
    /// (when given) its password hash is still `password_hash`.
    async fn open_session_checked(
        &self,
        user: User,
        ttl: Duration,
        password_hash: Option<String>,
    ) -> ChatResult<Login> {
        let token = random_secret();
        let at = now_ms();
        let expires_at = at + ttl.as_millis() as Millis;
        let store = self.store.clone();
        let new_session = NewSession {
            user: user.id,
            token_hash: token_hash(&token),
            at,
            expires_at,
            end_others: self.config.single_session.then_some(EndReason::Replaced),
            password_hash,
        };
        let user_id = user.id;
        let session = self
            .commit(async move {
                let (session, ended) = store.create_session(new_session).await?;
                Ok((session, sessions_ended(user_id, ended, EndReason::Replaced)))
            })
            .await?;
        // Not cached from here: this row was read before the password
        // check, and a rename on another node may have come since.
        Ok(Login {
            token,
            session,
            user,
            expires_at,
        })
    }

    /// Resolves a bearer token to its caller, or says why it cannot.
    pub async fn authenticate(&self, token: &str) -> ChatResult<Caller> {
        let hash = token_hash(token);
        if let Some((caller, expires_at)) = self.sessions.get(&hash) {
            if expires_at > now_ms() {
                return Ok(caller);
            }
            return Err(ChatError::SessionExpired);
        }
        let generation = self.sessions.generation();
        let record = self
            .store
            .session_by_token(hash)
            .await?
            .ok_or(ChatError::Unauthenticated)?;
        if let Some(reason) = record.ended {
            return Err(ChatError::SessionEnded(reason));
        }
        if record.expires_at <= now_ms() {
            return Err(ChatError::SessionExpired);
        }
        let caller = Caller {
            user: record.user,
            session: record.id,
        };
        self.sessions
            .put(hash, caller, record.expires_at, generation);
        Ok(caller)
    }

    /// In a cluster: every `session_recheck`, ends here the cached
    /// sessions that ended on other nodes, as their lost bus message
    /// would have. Runs until the service goes.
    pub(super) fn spawn_session_rechecks(self: &Arc<Chat>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let chat = Arc::downgrade(self);
        let period = self.config.session_recheck;
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(chat) = chat.upgrade() else { return };
                let round = async move { chat.recheck_sessions().await };
                crate::panics::contained_task("a recheck of the cached sessions", round).await;
            }
        });
    }

    /// One recheck: the store says which cached sessions ended; they
    /// leave the cache and their polls end with the reason. A store that
    /// does not answer leaves them for the next round.
    async fn recheck_sessions(&self) {
        for chunk in self.sessions.cached().chunks(RECHECK_BATCH) {
            let ended = match self.store.ended_sessions(chunk).await {
                Ok(ended) => ended,
                Err(e) => {
                    tracing::warn!(error = %e, "could not recheck the cached sessions");
                    return;
                }
            };
            for (user, session, reason) in ended {
                self.sessions.forget(&[session]);
                self.hub.end_sessions(user, &[session], reason);
            }
        }
    }

    /// Ends the caller's session; its open polls return `session_ended`.
    pub async fn logout(&self, caller: &Caller) -> ChatResult<()> {
        let store = self.store.clone();
        let caller = *caller;
        self.commit(async move {
            store
                .end_session(caller.session, EndReason::LoggedOut, now_ms())
                .await?;
            let ended = vec![caller.session];
            Ok(((), sessions_ended(caller.user, ended, EndReason::LoggedOut)))
        })
        .await
    }

    /// Changes the caller's display name and/or avatar. An empty avatar
    /// URL goes back to the generated avatar.
    pub async fn update_profile(
        &self,
        caller: &Caller,
        display_name: Option<&str>,
        avatar_url: Option<&str>,
    ) -> ChatResult<User> {
        if let Some(name) = display_name {
            // People may not take natter's own names; sites and the
            // admin API name their users as they like.
            DisplayName::parse_chosen(name)?;
        }
        self.edit_profile(caller.user, display_name, avatar_url)
            .await
    }

    /// Validates and applies a profile change, for the user themselves or
    /// the admin API.
    pub(super) async fn edit_profile(
        &self,
        user: UserId,
        display_name: Option<&str>,
        avatar_url: Option<&str>,
    ) -> ChatResult<User> {
        let mut patch = ProfilePatch::default();
        if let Some(name) = display_name {
            patch.display_name = Some(DisplayName::parse(name)?.into_string());
        }
        if let Some(url) = avatar_url {
            patch.avatar_url = Some(if url.is_empty() {
                None
            } else {
                Some(AvatarUrl::parse(url)?.into_string())
            });
        }
        let user = self.store.update_profile(user, patch).await?;
        self.remember_name(&user);
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_lists_its_sessions_and_forgets_ended_ones() {
        let caller = |n| Caller {
            user: UserId(1),
            session: SessionId(n),
        };
        let cache = SessionCache::default();
        let generation = cache.generation();
        cache.put([7; 32], caller(2), i64::MAX, generation);
        cache.put([8; 32], caller(3), i64::MAX, generation);
        let mut cached = cache.cached();
        cached.sort_by_key(|s| s.0);
        assert_eq!(cached, [SessionId(2), SessionId(3)]);
        cache.forget(&[SessionId(2)]);
        assert!(cache.get(&[7; 32]).is_none(), "an ended session is gone");
        assert!(cache.get(&[8; 32]).is_some(), "the others stay");
        assert_eq!(cache.cached(), [SessionId(3)]);
        // A read from before the forget is not cached: it may be stale.
        cache.put([7; 32], caller(2), i64::MAX, generation);
        assert!(cache.get(&[7; 32]).is_none());
    }
}
