//! The server-to-server admin API's rules: a host site's backend keeps
//! natter in step with its own world — rooms for its groups, rosters of
//! members, names and avatars, notices, ending a user's sessions.
//!
//! Rooms it creates are owned by the `natter:system` user, which also
//! signs the notices it posts.

use sha2::{Digest, Sha256};

use super::{Chat, room_event};
use crate::error::{ChatError, ChatResult};
use crate::model::{EndReason, Event, Role, Room, RoomId, User, UserId, Visibility, now_ms};
use crate::store::{Action, EndSessions, NewRoom};
use crate::text::{AvatarUrl, ClientMsgId, DisplayName, MessageText, RoomTitle};

/// Names a user in an admin call: by natter id, or by a site's own id.
#[derive(Clone, Debug)]
pub enum MemberRef {
    Id(UserId),
    /// Created on first mention, with `name` (or the id) as display name.
    Site {
        site: String,
        external_id: String,
        name: Option<String>,
        avatar_url: Option<String>,
    },
}

/// A site the admin API named that is not configured.
fn unknown_site(site: &str) -> ChatError {
    ChatError::Invalid(crate::text::Invalid {
        code: "unknown_site",
        message: format!("no site {site:?} is configured"),
    })
}

/// A member reference whose fields have all been checked.
enum CheckedMember {
    /// A user that exists and needs no change.
    Existing(User),
    /// A site's user to create, or to update with a new name or avatar.
    Upsert {
        site: String,
        external_id: String,
        display: String,
        avatar: Option<String>,
    },
}

/// What a roster sync changed.
#[derive(Debug)]
pub struct RosterChange {
    pub added: usize,
    pub removed: usize,
    pub members: Vec<User>,
}

use super::communities::SYSTEM_SITE;

impl Chat {
    /// Whether `key` is one of the configured admin keys. Compared as
    /// digests, so the time taken says nothing about the keys.
    pub fn is_admin_key(&self, key: &str) -> bool {
        let given = Sha256::digest(key.as_bytes());
        let mut found = false;
        for k in &self.config.admin_keys.0 {
            found |= Sha256::digest(k.as_bytes()) == given;
        }
        found
    }

    /// The user admin rooms belong to and notices come from.
    async fn system_user(&self) -> ChatResult<User> {
        let user = self
            .store
            .upsert_site_user(SYSTEM_SITE, "system", "natter".into(), None, now_ms())
            .await?;
        self.remember_name(&user);
        Ok(user)
    }

    /// Resolves a member reference, creating a site's user on first mention.
    async fn resolve(&self, member: &MemberRef) -> ChatResult<User> {
        let checked = self.check_member(member).await?;
        self.materialize(checked).await
    }

    /// Checks every field of a member reference and finds the user it
    /// names, writing nothing: a call that names several members checks
    /// them all before it changes anything.
    async fn check_member(&self, member: &MemberRef) -> ChatResult<CheckedMember> {
        let (site, external_id, name, avatar_url) = match member {
            MemberRef::Id(id) => return Ok(CheckedMember::Existing(self.user(*id).await?)),
            MemberRef::Site {
                site,
                external_id,
                name,
                avatar_url,
            } => (site, external_id, name, avatar_url),
        };
        if self.site(site).is_none() {
            return Err(unknown_site(site));
        }
        let external_id = external_id.trim();
        if external_id.is_empty()
            || external_id.len() > 128
            || external_id.chars().any(char::is_control)
        {
            return Err(ChatError::Invalid(crate::text::Invalid {
                code: "invalid_external_id",
                message: "external_id must be 1-128 characters".into(),
            }));
        }
        let existing = self.store.site_user(site, external_id).await?;
        if let Some(user) = &existing
            && (name.is_some() || avatar_url.is_some())
            && self.store.is_deactivated(user.id).await? == Some(true)
        {
            // Found now, not half-way through the writes.
            return Err(ChatError::AccountDeactivated);
        }
        let display = match (name, &existing) {
            (Some(n), _) => DisplayName::parse(n)?.into_string(),
            (None, Some(user)) => user.display_name.clone(),
            (None, None) => {
                let fallback: String = external_id.chars().take(DisplayName::MAX_CHARS).collect();
                DisplayName::parse(&fallback)?.into_string()
            }
        };
        let avatar = avatar_url
            .as_deref()
            .map(|a| AvatarUrl::parse(a).map(AvatarUrl::into_string))
            .transpose()?;
        Ok(match (existing, name, avatar_url) {
            (Some(user), None, None) => CheckedMember::Existing(user),
            _ => CheckedMember::Upsert {
                site: site.clone(),
                external_id: external_id.to_owned(),
                display,
                avatar,
            },
        })
    }

    /// The user a checked reference names, created or updated as needed.
    async fn materialize(&self, checked: CheckedMember) -> ChatResult<User> {
        match checked {
            CheckedMember::Existing(user) => Ok(user),
            CheckedMember::Upsert {
                site,
                external_id,
                display,
                avatar,
            } => {
                let user = self
                    .store
                    .upsert_site_user(&site, &external_id, display, avatar, now_ms())
                    .await?;
                self.remember_name(&user);
                Ok(user)
            }
        }
    }

    /// Creates a group room owned by the system user, for the users of
    /// `site` (or for everyone when `None`).
    pub async fn admin_create_room(
        &self,
        title: &str,
        visibility: Visibility,
        site: Option<&str>,
    ) -> ChatResult<Room> {
        let title = RoomTitle::parse(title)?;
        if let Some(site) = site.filter(|s| self.site(s).is_none()) {
            return Err(unknown_site(site));
        }
        let system = self.system_user().await?;
        let store = self.store.clone();
        let new_room = NewRoom {
            creator: system.id,
            creator_name: system.display_name,
            community: site.map(str::to_owned),
            title: title.into_string(),
            visibility,
            at: now_ms(),
        };
        self.commit(async move {
            let (room, event) = store.create_room(new_room).await?;
            Ok((room, vec![room_event(event)]))
        })
        .await
    }

    /// Admin calls manage group rooms; direct conversations are the two
    /// people's own.
    async fn group_room(&self, room: RoomId) -> ChatResult<std::sync::Arc<crate::hub::RoomFeed>> {
        let feed = self.hub.room(room).await?;
        let found = self
            .store
            .room(room)
            .await?
            .ok_or(ChatError::RoomNotFound)?;
        if found.kind == crate::model::RoomKind::Direct {
            return Err(ChatError::NotAllowed(
                "the admin API does not touch direct conversations",
            ));
        }
        Ok(feed)
    }

    /// Adds one member to a group room.
    pub async fn admin_add_member(&self, room: RoomId, member: &MemberRef) -> ChatResult<User> {
        self.group_room(room).await?;
        let user = self.resolve(member).await?;
        let system = self.system_user().await?;
        self.add_member(room, user.id, system.id).await?;
        Ok(user)
    }

    /// Removes one member from a group room.
    pub async fn admin_remove_member(&self, room: RoomId, user: UserId) -> ChatResult<()> {
        self.group_room(room).await?;
        self.not_the_system_user(user).await?;
        self.remove_member(room, user).await
    }

    /// Makes the room's members exactly `roster` (plus the system user and
    /// the room's owner, who are never removed).
    pub async fn admin_sync_members(
        &self,
        room: RoomId,
        roster: &[MemberRef],
    ) -> ChatResult<RosterChange> {
        let feed = self.group_room(room).await?;
        // Every entry is checked before the first write: a roster with
        // one bad entry creates, renames and removes nobody.
        let mut checked = Vec::with_capacity(roster.len());
        for member in roster {
            checked.push(self.check_member(member).await?);
        }
        let system = self.system_user().await?;
        let mut wanted = Vec::with_capacity(roster.len());
        for member in checked {
            wanted.push(self.materialize(member).await?);
        }
        let current = feed.member_ids();
        let keep: std::collections::HashSet<UserId> = wanted.iter().map(|u| u.id).collect();
        let mut added = 0;
        for user in &wanted {
            if feed.role_of(user.id).is_none() {
                self.add_member(room, user.id, system.id).await?;
                added += 1;
            }
        }
        let mut removed = 0;
        for user in current {
            let protected = user == system.id || feed.role_of(user) == Some(Role::Owner);
            if !keep.contains(&user) && !protected {
                self.admin_remove_member(room, user).await?;
                removed += 1;
            }
        }
        Ok(RosterChange {
            added,
            removed,
            members: wanted,
        })
    }

    /// Changes a user's name and/or avatar (an empty avatar resets it).
    pub async fn admin_update_user(
        &self,
        user: UserId,
        display_name: Option<&str>,
        avatar_url: Option<&str>,
    ) -> ChatResult<User> {
        self.not_the_system_user(user).await?;
        self.edit_profile(user, display_name, avatar_url).await
    }

    /// The user of a site by the site's own id.
    pub async fn admin_site_user(&self, site: &str, external_id: &str) -> ChatResult<User> {
        self.store
            .site_user(site, external_id)
            .await?
            .ok_or(ChatError::UserNotFound)
    }

    /// Posts a notice as the system user (who joins the room if needed);
    /// `true` when its client message id was used before.
    pub async fn admin_post(
        &self,
        room: RoomId,
        text: &str,
        client_msg_id: Option<&str>,
    ) -> ChatResult<(Event, bool)> {
        let text = MessageText::parse(text, self.config.max_message_chars)?;
        let client_msg_id = match client_msg_id {
            Some(id) => ClientMsgId::parse(id)?.into_string(),
            None => format!("admin-{}", rand::random::<u64>()),
        };
        let feed = self.group_room(room).await?;
        let system = self.system_user().await?;
        if feed.role_of(system.id).is_none() {
            self.add_member(room, system.id, system.id).await?;
        }
        let action = Action::Send {
            client_msg_id,
            text: text.into_string(),
            reply_to: None,
        };
        let written = self.append(room, system.id, action).await?;
        let event = written
            .event
            .ok_or_else(|| ChatError::Internal("a send stored nothing".into()))?;
        Ok(((*event).clone(), !written.new))
    }

    /// Ends every session of a user; their open polls return `session_ended`.
    pub async fn admin_end_sessions(&self, user: UserId) -> ChatResult<usize> {
        self.user(user).await?;
        self.end_sessions_of(user, EndSessions::All, EndReason::LoggedOut)
            .await
    }
}
