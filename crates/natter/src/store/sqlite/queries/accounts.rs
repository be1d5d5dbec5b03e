//! The SQL of users and sessions: accounts, site users, credentials,
//! sessions, deactivation, invites and site token ids.

use rusqlite::{Connection, OptionalExtension, params};

use super::{R, exec, q, row};
use crate::model::{EndReason, Millis, SessionId, User, UserId};
use crate::store::sqlite::rows::{self, USER_COLUMNS, store_error};
use crate::store::{
    Credentials, EndSessions, NewSession, NewUser, ProfilePatch, SessionInfo, SessionRecord,
    StoreError,
};

pub fn create_user(conn: &Connection, u: &NewUser) -> R<User> {
    if let Some(invite) = &u.invite {
        // Used up in this transaction: an invite makes one account.
        let used = q(exec(
            conn,
            "UPDATE invites SET used_at = ?1 WHERE code_hash = ?2 AND used_at IS NULL AND expires_at > ?1",
            params![u.at, &invite[..]],
        ))?;
        if used != 1 {
            return Err(StoreError::NotFound("invite"));
        }
    }
    let inserted = exec(
        conn,
        "INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![u.username, u.display_name, u.password_hash, u.at],
    );
    match inserted {
        Err(e) => match store_error(e) {
            StoreError::Conflict(_) => Err(StoreError::Conflict("username")),
            other => Err(other),
        },
        Ok(_) => {
            let id = conn.last_insert_rowid();
            if let Some(invite) = &u.invite {
                q(exec(
                    conn,
                    "UPDATE invites SET used_by = ?1 WHERE code_hash = ?2",
                    params![id, &invite[..]],
                ))?;
            }
            Ok(User {
                id: UserId(id),
                username: u.username.clone(),
                display_name: u.display_name.clone(),
                avatar_url: None,
                created_at: u.at,
            })
        }
    }
}

pub fn credentials(conn: &Connection, username: &str) -> R<Option<Credentials>> {
    q(row(
        conn,
        &format!(
            "SELECT {USER_COLUMNS}, password_hash, deactivated_at IS NOT NULL FROM users WHERE username = ?1"
        ),
        [username],
        |r| {
            Ok(Credentials {
                user: rows::user(r)?,
                password_hash: r.get(5)?,
                deactivated: r.get(6)?,
            })
        },
    )
    .optional())
}

pub fn user(conn: &Connection, id: UserId) -> R<Option<User>> {
    q(row(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id.0],
        rows::user,
    )
    .optional())
}

pub fn upsert_site_user(
    conn: &Connection,
    site: &str,
    external_id: &str,
    display_name: &str,
    avatar_url: Option<&str>,
    at: Millis,
) -> R<User> {
    let existing: Option<(i64, bool)> = q(row(
        conn,
        "SELECT id, deactivated_at IS NOT NULL FROM users WHERE site = ?1 AND external_id = ?2",
        params![site, external_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional())?;
    let id = match existing {
        Some((_, true)) => return Err(StoreError::Conflict("deactivated")),
        Some((id, false)) => {
            q(exec(
                conn,
                "UPDATE users SET display_name = ?1, avatar_url = COALESCE(?2, avatar_url) WHERE id = ?3",
                params![display_name, avatar_url, id],
            ))?;
            UserId(id)
        }
        None => {
            // No password: the empty hash matches nothing, and the username
            // (with its ':') is not one a login form can send.
            q(exec(
                conn,
                "INSERT INTO users (username, display_name, avatar_url, password_hash, created_at, site, external_id)
                 VALUES (?1, ?2, ?3, '', ?4, ?5, ?6)",
                params![format!("{site}:{external_id}"), display_name, avatar_url, at, site, external_id],
            ))?;
            UserId(conn.last_insert_rowid())
        }
    };
    user(conn, id)?.ok_or(StoreError::NotFound("user"))
}

pub fn site_user(conn: &Connection, site: &str, external_id: &str) -> R<Option<User>> {
    q(row(
        conn,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE site = ?1 AND external_id = ?2"),
        params![site, external_id],
        rows::user,
    )
    .optional())
}

pub fn end_user_sessions(
    conn: &Connection,
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
    let mut stmt = q(conn.prepare_cached(
        "UPDATE sessions SET ended_reason = ?1, ended_at = ?2
         WHERE user_id = ?3 AND ended_reason IS NULL AND id != ?4 RETURNING id",
    ))?;
    q(stmt
        .query_map(params![reason.as_str(), at, user.0, keep], |r| {
            Ok(SessionId(r.get(0)?))
        })
        .and_then(|it| it.collect()))
}

pub fn live_sessions(conn: &Connection, user: UserId, now: Millis) -> R<Vec<SessionInfo>> {
    let mut stmt = q(conn.prepare_cached(
        "SELECT id, created_at, expires_at FROM sessions
         WHERE user_id = ?1 AND ended_reason IS NULL AND expires_at > ?2 ORDER BY id",
    ))?;
    q(stmt
        .query_map(params![user.0, now], |r| {
            Ok(SessionInfo {
                id: SessionId(r.get(0)?),
                created_at: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })
        .and_then(|it| it.collect()))
}

pub fn set_password(
    conn: &Connection,
    user: UserId,
    password_hash: &str,
    ending: EndSessions,
    at: Millis,
) -> R<Vec<SessionId>> {
    let changed = q(exec(
        conn,
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![password_hash, user.0],
    ))?;
    if changed == 0 {
        return Err(StoreError::NotFound("user"));
    }
    end_user_sessions(conn, user, ending, EndReason::LoggedOut, at)
}

pub fn set_deactivated(
    conn: &Connection,
    user: UserId,
    deactivated: bool,
    at: Millis,
) -> R<Vec<SessionId>> {
    let changed = q(exec(
        conn,
        "UPDATE users SET deactivated_at = CASE WHEN ?1 THEN COALESCE(deactivated_at, ?2) END WHERE id = ?3",
        params![deactivated, at, user.0],
    ))?;
    if changed == 0 {
        return Err(StoreError::NotFound("user"));
    }
    if !deactivated {
        return Ok(Vec::new());
    }
    end_user_sessions(conn, user, EndSessions::All, EndReason::Deactivated, at)
}

pub fn is_deactivated(conn: &Connection, user: UserId) -> R<Option<bool>> {
    q(row(
        conn,
        "SELECT deactivated_at IS NOT NULL FROM users WHERE id = ?1",
        [user.0],
        |r| r.get(0),
    )
    .optional())
}

pub fn create_invite(
    conn: &Connection,
    code_hash: &[u8; 32],
    at: Millis,
    expires_at: Millis,
) -> R<()> {
    q(exec(
        conn,
        "INSERT INTO invites (code_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
        params![&code_hash[..], at, expires_at],
    ))?;
    Ok(())
}

pub fn claim_token_id(
    conn: &Connection,
    site: &str,
    jti: &str,
    expires_at: Millis,
    now: Millis,
) -> R<bool> {
    q(exec(
        conn,
        "DELETE FROM sso_token_ids WHERE expires_at < ?1",
        params![now],
    ))?;
    let inserted = q(exec(
        conn,
        "INSERT OR IGNORE INTO sso_token_ids (site, jti, expires_at) VALUES (?1, ?2, ?3)",
        params![site, jti, expires_at],
    ))?;
    Ok(inserted == 1)
}

pub fn update_profile(conn: &Connection, id: UserId, patch: &ProfilePatch) -> R<User> {
    if let Some(name) = &patch.display_name {
        q(exec(
            conn,
            "UPDATE users SET display_name = ?1 WHERE id = ?2",
            params![name, id.0],
        ))?;
    }
    if let Some(url) = &patch.avatar_url {
        q(exec(
            conn,
            "UPDATE users SET avatar_url = ?1 WHERE id = ?2",
            params![url, id.0],
        ))?;
    }
    user(conn, id)?.ok_or(StoreError::NotFound("user"))
}

pub fn create_session(conn: &Connection, s: &NewSession) -> R<(SessionId, Vec<SessionId>)> {
    // Checked in the transaction that writes the session: a deactivation
    // or password change that committed while the password was being
    // checked wins.
    let (deactivated, hash): (bool, String) = q(row(
        conn,
        "SELECT deactivated_at IS NOT NULL, password_hash FROM users WHERE id = ?1",
        [s.user.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional())?
    .ok_or(StoreError::NotFound("user"))?;
    if deactivated {
        return Err(StoreError::Conflict("deactivated"));
    }
    if s.password_hash
        .as_ref()
        .is_some_and(|expected| *expected != hash)
    {
        return Err(StoreError::Conflict("password_changed"));
    }
    let ended = match s.end_others {
        Some(reason) => end_user_sessions(conn, s.user, EndSessions::All, reason, s.at)?,
        None => Vec::new(),
    };
    q(exec(
        conn,
        "INSERT INTO sessions (user_id, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![s.user.0, &s.token_hash[..], s.at, s.expires_at],
    ))?;
    Ok((SessionId(conn.last_insert_rowid()), ended))
}

pub fn session_by_token(conn: &Connection, hash: &[u8; 32]) -> R<Option<SessionRecord>> {
    q(row(
        conn,
        "SELECT id, user_id, expires_at, ended_reason FROM sessions WHERE token_hash = ?1",
        [&hash[..]],
        |r| {
            Ok(SessionRecord {
                id: SessionId(r.get(0)?),
                user: UserId(r.get(1)?),
                expires_at: r.get(2)?,
                ended: r.get::<_, Option<String>>(3)?.map(|s| EndReason::parse(&s)),
            })
        },
    )
    .optional())
}

/// Those of `ids` that have ended: one indexed lookup each, in one read.
pub fn ended_sessions(
    conn: &Connection,
    ids: &[SessionId],
) -> R<Vec<(UserId, SessionId, EndReason)>> {
    let mut stmt = q(conn.prepare_cached(
        "SELECT user_id, ended_reason FROM sessions WHERE id = ?1 AND ended_reason IS NOT NULL",
    ))?;
    let mut ended = Vec::new();
    for id in ids {
        let found = q(stmt
            .query_row([id.0], |r| Ok((UserId(r.get(0)?), r.get::<_, String>(1)?)))
            .optional())?;
        if let Some((user, reason)) = found {
            ended.push((user, *id, EndReason::parse(&reason)));
        }
    }
    Ok(ended)
}

pub fn end_session(conn: &Connection, id: SessionId, reason: EndReason, at: Millis) -> R<()> {
    q(exec(
        conn,
        "UPDATE sessions SET ended_reason = ?1, ended_at = ?2 WHERE id = ?3 AND ended_reason IS NULL",
        params![reason.as_str(), at, id.0],
    ))?;
    Ok(())
}
