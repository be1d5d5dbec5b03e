//! The SQL of users and sessions: accounts, site users, credentials,
//! sessions, deactivation, invites and site token ids. Where two nodes
//! may race (the same site user signing in on both, the same token id
//! replayed at once), a unique key decides and `ON CONFLICT` answers as
//! the SQLite store's single writer would.

use deadpool_postgres::GenericClient;

use super::{R, all, exec, one, opt};
use crate::model::{EndReason, Millis, SessionId, User, UserId};
use crate::store::postgres::rows::{self, USER_COLUMNS};
use crate::store::{
    Credentials, EndSessions, NewSession, NewUser, ProfilePatch, SessionInfo, SessionRecord,
    StoreError,
};

pub(in crate::store::postgres) async fn create_user(
    c: &impl GenericClient,
    u: &NewUser,
) -> R<User> {
    if let Some(invite) = &u.invite {
        // Used up in this transaction: an invite makes one account. A
        // concurrent use waits for this row and then finds it used.
        let used = exec(
            c,
            "UPDATE invites SET used_at = $1
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1",
            &[&u.at, &&invite[..]],
        )
        .await?;
        if used != 1 {
            return Err(StoreError::NotFound("invite").into());
        }
    }
    let inserted = opt(
        c,
        "INSERT INTO users (username, display_name, password_hash, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING RETURNING id",
        &[&u.username, &u.display_name, &u.password_hash, &u.at],
    )
    .await?;
    let Some(row) = inserted else {
        return Err(StoreError::Conflict("username").into());
    };
    let id: i64 = row.try_get(0)?;
    if let Some(invite) = &u.invite {
        exec(
            c,
            "UPDATE invites SET used_by = $1 WHERE code_hash = $2",
            &[&id, &&invite[..]],
        )
        .await?;
    }
    Ok(User {
        id: UserId(id),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        avatar_url: None,
        created_at: u.at,
    })
}

pub(in crate::store::postgres) async fn credentials(
    c: &impl GenericClient,
    username: &str,
) -> R<Option<Credentials>> {
    let Some(r) = opt(
        c,
        &format!(
            "SELECT {USER_COLUMNS}, password_hash, deactivated_at IS NOT NULL
             FROM users WHERE username = $1"
        ),
        &[&username],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        user: rows::user(&r)?,
        password_hash: r.try_get(5)?,
        deactivated: r.try_get(6)?,
    }))
}

pub(in crate::store::postgres) async fn user(
    c: &impl GenericClient,
    id: UserId,
) -> R<Option<User>> {
    opt(
        c,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
        &[&id.0],
    )
    .await?
    .map(|r| rows::user(&r))
    .transpose()
}

pub(in crate::store::postgres) async fn upsert_site_user(
    c: &impl GenericClient,
    site: &str,
    external_id: &str,
    display_name: &str,
    avatar_url: Option<&str>,
    at: Millis,
) -> R<User> {
    // Made if missing (no password: the empty hash matches nothing, and
    // the username, with its ':', is not one a login form can send); a
    // node that loses the race to make it finds the winner's row (ON
    // CONFLICT waits for it) and updates that. The row is locked either
    // way, so a deactivation cannot slip in between.
    exec(
        c,
        "INSERT INTO users (username, display_name, avatar_url, password_hash, created_at, site, external_id)
         VALUES ($1, $2, $3, '', $4, $5, $6)
         ON CONFLICT (site, external_id) WHERE site IS NOT NULL DO NOTHING",
        &[
            &format!("{site}:{external_id}"),
            &display_name,
            &avatar_url,
            &at,
            &site,
            &external_id,
        ],
    )
    .await?;
    let row = one(
        c,
        "SELECT id, deactivated_at IS NOT NULL FROM users
         WHERE site = $1 AND external_id = $2 FOR NO KEY UPDATE",
        &[&site, &external_id],
    )
    .await?;
    let (id, deactivated): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
    if deactivated {
        return Err(StoreError::Conflict("deactivated").into());
    }
    exec(
        c,
        "UPDATE users SET display_name = $1, avatar_url = COALESCE($2, avatar_url) WHERE id = $3",
        &[&display_name, &avatar_url, &id],
    )
    .await?;
    user(c, UserId(id))
        .await?
        .ok_or_else(|| StoreError::NotFound("user").into())
}

pub(in crate::store::postgres) async fn site_user(
    c: &impl GenericClient,
    site: &str,
    external_id: &str,
) -> R<Option<User>> {
    opt(
        c,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE site = $1 AND external_id = $2"),
        &[&site, &external_id],
    )
    .await?
    .map(|r| rows::user(&r))
    .transpose()
}

pub(in crate::store::postgres) async fn end_user_sessions(
    c: &impl GenericClient,
    user: UserId,
    which: EndSessions,
    reason: EndReason,
    at: Millis,
) -> R<Vec<SessionId>> {
    let keep = match which {
        EndSessions::None => return Ok(Vec::new()),
        EndSessions::AllBut(keep) => keep.0,
        EndSessions::All => 0,
    };
    all(
        c,
        "UPDATE sessions SET ended_reason = $1, ended_at = $2
         WHERE user_id = $3 AND ended_reason IS NULL AND id != $4 RETURNING id",
        &[&reason.as_str(), &at, &user.0, &keep],
    )
    .await?
    .iter()
    .map(|r| Ok(SessionId(r.try_get(0)?)))
    .collect()
}

pub(in crate::store::postgres) async fn live_sessions(
    c: &impl GenericClient,
    user: UserId,
    now: Millis,
) -> R<Vec<SessionInfo>> {
    all(
        c,
        "SELECT id, created_at, expires_at FROM sessions
         WHERE user_id = $1 AND ended_reason IS NULL AND expires_at > $2 ORDER BY id",
        &[&user.0, &now],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SessionInfo {
            id: SessionId(r.try_get(0)?),
            created_at: r.try_get(1)?,
            expires_at: r.try_get(2)?,
        })
    })
    .collect()
}

pub(in crate::store::postgres) async fn set_password(
    c: &impl GenericClient,
    user: UserId,
    password_hash: &str,
    ending: EndSessions,
    at: Millis,
) -> R<Vec<SessionId>> {
    let changed = exec(
        c,
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        &[&password_hash, &user.0],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("user").into());
    }
    end_user_sessions(c, user, ending, EndReason::LoggedOut, at).await
}

pub(in crate::store::postgres) async fn set_deactivated(
    c: &impl GenericClient,
    user: UserId,
    deactivated: bool,
    at: Millis,
) -> R<Vec<SessionId>> {
    let changed = exec(
        c,
        "UPDATE users SET deactivated_at = CASE WHEN $1::BOOLEAN THEN COALESCE(deactivated_at, $2) END
         WHERE id = $3",
        &[&deactivated, &at, &user.0],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("user").into());
    }
    if !deactivated {
        return Ok(Vec::new());
    }
    end_user_sessions(c, user, EndSessions::All, EndReason::Deactivated, at).await
}

pub(in crate::store::postgres) async fn is_deactivated(
    c: &impl GenericClient,
    user: UserId,
) -> R<Option<bool>> {
    opt(
        c,
        "SELECT deactivated_at IS NOT NULL FROM users WHERE id = $1",
        &[&user.0],
    )
    .await?
    .map(|r| r.try_get(0).map_err(Into::into))
    .transpose()
}

pub(in crate::store::postgres) async fn create_invite(
    c: &impl GenericClient,
    code_hash: &[u8; 32],
    at: Millis,
    expires_at: Millis,
) -> R<()> {
    exec(
        c,
        "INSERT INTO invites (code_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        &[&&code_hash[..], &at, &expires_at],
    )
    .await?;
    Ok(())
}

pub(in crate::store::postgres) async fn claim_token_id(
    c: &impl GenericClient,
    site: &str,
    jti: &str,
    expires_at: Millis,
    now: Millis,
) -> R<bool> {
    exec(
        c,
        "DELETE FROM sso_token_ids WHERE expires_at < $1",
        &[&now],
    )
    .await?;
    // A replay on another node at the same moment waits for this row,
    // then inserts nothing: exactly one of them claims the id.
    let inserted = exec(
        c,
        "INSERT INTO sso_token_ids (site, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&site, &jti, &expires_at],
    )
    .await?;
    Ok(inserted == 1)
}

pub(in crate::store::postgres) async fn update_profile(
    c: &impl GenericClient,
    id: UserId,
    patch: &ProfilePatch,
) -> R<User> {
    if let Some(name) = &patch.display_name {
        exec(
            c,
            "UPDATE users SET display_name = $1 WHERE id = $2",
            &[name, &id.0],
        )
        .await?;
    }
    if let Some(url) = &patch.avatar_url {
        exec(
            c,
            "UPDATE users SET avatar_url = $1 WHERE id = $2",
            &[url, &id.0],
        )
        .await?;
    }
    user(c, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("user").into())
}

pub(in crate::store::postgres) async fn create_session(
    c: &impl GenericClient,
    s: &NewSession,
) -> R<(SessionId, Vec<SessionId>)> {
    // Checked, with the user's row locked, in the transaction that writes
    // the session: a deactivation or password change that committed while
    // the password was being checked wins, on any node.
    let row = opt(
        c,
        "SELECT deactivated_at IS NOT NULL, password_hash FROM users WHERE id = $1
         FOR NO KEY UPDATE",
        &[&s.user.0],
    )
    .await?
    .ok_or(StoreError::NotFound("user"))?;
    let (deactivated, hash): (bool, String) = (row.try_get(0)?, row.try_get(1)?);
    if deactivated {
        return Err(StoreError::Conflict("deactivated").into());
    }
    if s.password_hash
        .as_ref()
        .is_some_and(|expected| *expected != hash)
    {
        return Err(StoreError::Conflict("password_changed").into());
    }
    let ended = match s.end_others {
        Some(reason) => end_user_sessions(c, s.user, EndSessions::All, reason, s.at).await?,
        None => Vec::new(),
    };
    let id: i64 = one(
        c,
        "INSERT INTO sessions (user_id, token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&s.user.0, &&s.token_hash[..], &s.at, &s.expires_at],
    )
    .await?
    .try_get(0)?;
    Ok((SessionId(id), ended))
}

pub(in crate::store::postgres) async fn session_by_token(
    c: &impl GenericClient,
    hash: &[u8; 32],
) -> R<Option<SessionRecord>> {
    let Some(r) = opt(
        c,
        "SELECT id, user_id, expires_at, ended_reason FROM sessions WHERE token_hash = $1",
        &[&&hash[..]],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(SessionRecord {
        id: SessionId(r.try_get(0)?),
        user: UserId(r.try_get(1)?),
        expires_at: r.try_get(2)?,
        ended: r.try_get::<_, Option<&str>>(3)?.map(EndReason::parse),
    }))
}

/// Those of `ids` that have ended, in one query.
pub(in crate::store::postgres) async fn ended_sessions(
    c: &impl GenericClient,
    ids: &[i64],
) -> R<Vec<(UserId, SessionId, EndReason)>> {
    all(
        c,
        "SELECT user_id, id, ended_reason FROM sessions
         WHERE id = ANY($1) AND ended_reason IS NOT NULL",
        &[&ids],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            UserId(r.try_get(0)?),
            SessionId(r.try_get(1)?),
            EndReason::parse(r.try_get(2)?),
        ))
    })
    .collect()
}

pub(in crate::store::postgres) async fn end_session(
    c: &impl GenericClient,
    id: SessionId,
    reason: EndReason,
    at: Millis,
) -> R<()> {
    exec(
        c,
        "UPDATE sessions SET ended_reason = $1, ended_at = $2 WHERE id = $3 AND ended_reason IS NULL",
        &[&reason.as_str(), &at, &id.0],
    )
    .await?;
    Ok(())
}
