//! Which people may find and reach each other.
//!
//! Every user belongs to a community: a host site's users to their site,
//! people who registered on natter itself to the local community, and
//! natter's own system user to none in particular. By default the
//! communities are kept apart: a user sees the public rooms, joins the
//! rooms, invites the people and opens direct conversations of their own
//! community only, so one site's users cannot list, message or join
//! another site's (or strangers who registered on natter directly).
//! `shared_community` makes a deployment one community.
//!
//! Rooms take the community of whoever created them; rooms the admin API
//! creates belong to the site it names, or to everyone when it names
//! none. And whatever the communities, a profile is shown only to people
//! who share a conversation with its owner, so walking ids reveals
//! nobody.

use super::Chat;
use crate::error::{ChatError, ChatResult};
use crate::model::{Room, User, UserId};

/// Who someone or something belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Community {
    /// natter's own system user, and rooms the admin API made for no
    /// site in particular: reachable from every community.
    Everyone,
    /// Accounts registered on natter itself.
    Local,
    /// The users of one host site.
    Site(String),
}

/// The site namespace of natter's own users.
pub(super) const SYSTEM_SITE: &str = "natter";

impl Community {
    /// A user's community, from their username (`site:external_id` for
    /// site users).
    pub fn of_user(user: &User) -> Community {
        match user.username.split_once(':') {
            Some((SYSTEM_SITE, _)) => Community::Everyone,
            Some((site, _)) => Community::Site(site.to_owned()),
            None => Community::Local,
        }
    }

    /// A room's community, as stored.
    pub fn of_room(room: &Room) -> Community {
        Community::from_stored(room.community.as_deref())
    }

    /// From the stored form: none for everyone, `""` for local, else a site.
    pub fn from_stored(stored: Option<&str>) -> Community {
        match stored {
            None => Community::Everyone,
            Some("") => Community::Local,
            Some(site) => Community::Site(site.to_owned()),
        }
    }

    /// The stored form (see [`Community::from_stored`]).
    pub fn stored(&self) -> Option<String> {
        match self {
            Community::Everyone => None,
            Community::Local => Some(String::new()),
            Community::Site(site) => Some(site.clone()),
        }
    }
}

impl Chat {
    /// Whether members of `a` may find and reach `b`.
    pub(super) fn reaches(&self, a: &Community, b: &Community) -> bool {
        self.config.shared_community
            || a == b
            || *a == Community::Everyone
            || *b == Community::Everyone
    }

    /// Refuses changes to natter's own system user: it owns the admin
    /// API's rooms and signs its notices, so renaming, removing or
    /// deactivating it would break them.
    pub(super) async fn not_the_system_user(&self, user: UserId) -> ChatResult<()> {
        if self.community_of(user).await? == Community::Everyone {
            return Err(ChatError::NotAllowed(
                "natter's own system user cannot be changed",
            ));
        }
        Ok(())
    }

    /// The community of a user.
    pub(super) async fn community_of(&self, user: UserId) -> ChatResult<Community> {
        Ok(Community::of_user(&self.user(user).await?))
    }

    /// The public rooms' filter for `user`: `None` when they may see all.
    pub(super) async fn directory_filter(&self, user: UserId) -> ChatResult<Option<String>> {
        if self.config.shared_community {
            return Ok(None);
        }
        Ok(match self.community_of(user).await? {
            Community::Everyone => None,
            // The stored form of a community other than everyone's is set.
            other => other.stored(),
        })
    }

    /// A profile the caller may see: their own, or that of someone they
    /// share a conversation with (current members of one of the caller's
    /// rooms). Anyone else is not found, existing or not.
    pub async fn visible_user(&self, viewer: UserId, id: UserId) -> ChatResult<User> {
        if viewer != id && !self.hub.share_a_room(viewer, id).await? {
            return Err(ChatError::UserNotFound);
        }
        self.user(id).await
    }
}
