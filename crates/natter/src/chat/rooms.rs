//! Conversations: group rooms and direct conversations, membership, and the
//! room list with unread counts and presence.

use super::people::name_query;
use super::{Caller, Chat, Community, Limit, invalid, room_event};
use crate::error::{ChatError, ChatResult};
use crate::model::{Role, Room, RoomId, RoomKind, Seq, UserId, Visibility, now_ms};
use crate::store::{Action, MemberPlace, MemberProfile, MemberQuery, NewRoom, RoomSummary};
use crate::text::{Invalid, RoomTitle};

/// A row of the caller's room list.
pub struct RoomListing {
    pub summary: RoomSummary,
    /// Members online now.
    pub online_count: usize,
    /// More members than `big_room_members`: presence and typing reach
    /// only those watching it (hub/watching.rs).
    pub big: bool,
}

/// A page of a room's members with their presence, and the room's counts.
pub struct MemberList {
    pub members: Vec<(MemberProfile, bool)>,
    pub online_count: usize,
    pub member_count: usize,
    /// The room's seq `member_count` is as of: a client that heard a
    /// join or leave while the page was on its way counts it only if it
    /// is newer.
    pub member_count_seq: Seq,
    /// Where the next page starts (`after`), if there is one: the
    /// page's last member, by the name they had in it.
    pub next: Option<MemberPlace>,
}

/// Which members a member list asks for (`GET …/members`).
pub struct MemberPage<'a> {
    pub after: Option<MemberPlace>,
    /// A name to look for; blank is everyone.
    pub text: Option<&'a str>,
    pub limit: Option<usize>,
}

/// Members a page holds when not told: a small room's whole list.
const MEMBERS_PAGE: usize = 200;
/// The most members a page may ask for.
pub const MAX_MEMBERS_PAGE: usize = 500;

/// How many public rooms the directory lists.
const PUBLIC_ROOMS_LIMIT: usize = 200;

impl Chat {
    /// Makes `user` a member (added by `by`) and announces it; nothing
    /// happens when they already are one.
    pub(super) async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
    ) -> ChatResult<()> {
        let join = Action::Join {
            user,
            role: Role::Member,
        };
        self.append(room, by, join).await.map(drop)
    }

    /// Creates a group room owned by the caller.
    pub async fn create_room(
        &self,
        caller: &Caller,
        title: &str,
        visibility: Visibility,
    ) -> ChatResult<Room> {
        let title = RoomTitle::parse(title)?;
        self.limits.by_user(Limit::CreateRoom, caller.user).await?;
        let new_room = NewRoom {
            creator: caller.user,
            creator_name: self.display_name(caller.user).await?,
            community: self.community_of(caller.user).await?.stored(),
            title: title.into_string(),
            visibility,
            at: now_ms(),
        };
        let store = self.store.clone();
        self.commit(async move {
            let (room, event) = store.create_room(new_room).await?;
            Ok((room, vec![room_event(event)]))
        })
        .await
    }

    /// The caller's conversations, most recently active first.
    pub async fn rooms(&self, caller: &Caller) -> ChatResult<Vec<RoomListing>> {
        let summaries = self.store.room_summaries(caller.user).await?;
        let mut listings = Vec::with_capacity(summaries.len());
        for mut summary in summaries {
            if !self.config.read_receipts {
                summary.peer_read_seq = None;
            }
            let feed = self.hub.room(summary.room.id).await?;
            listings.push(RoomListing {
                online_count: feed.online_count(),
                big: self.hub.is_big_room(&feed),
                summary,
            });
        }
        listings.sort_by_key(|l| {
            std::cmp::Reverse(
                l.summary
                    .last_message
                    .as_ref()
                    .map_or(l.summary.room.created_at, |m| m.event.at),
            )
        });
        Ok(listings)
    }

    /// Public group rooms the caller may join (their community's and
    /// everyone's), newest first.
    pub async fn public_rooms(&self, caller: &Caller) -> ChatResult<Vec<Room>> {
        let filter = self.directory_filter(caller.user).await?;
        Ok(self.store.public_rooms(PUBLIC_ROOMS_LIMIT, filter).await?)
    }

    /// A room the caller is in, or a public one of a community they reach.
    pub async fn room(&self, caller: &Caller, id: RoomId) -> ChatResult<Room> {
        let room = self.store.room(id).await?.ok_or(ChatError::RoomNotFound)?;
        let feed = self.hub.room(id).await?;
        if feed.role_of(caller.user).is_none()
            && (room.visibility == Visibility::Private || !self.may_find(caller, &room).await?)
        {
            return Err(ChatError::RoomNotFound);
        }
        Ok(room)
    }

    /// Renames a group room or changes its visibility (owners and admins).
    pub async fn update_room(
        &self,
        caller: &Caller,
        id: RoomId,
        title: Option<&str>,
        visibility: Option<Visibility>,
    ) -> ChatResult<Room> {
        let (_, role) = self.membership(caller, id).await?;
        let current = self.store.room(id).await?.ok_or(ChatError::RoomNotFound)?;
        if current.kind == RoomKind::Direct {
            return Err(ChatError::NotAllowed(
                "a direct conversation cannot be changed",
            ));
        }
        if !role.can_manage() {
            return Err(ChatError::NotAllowed(
                "only the room's owner and admins can change it",
            ));
        }
        let title = match title {
            Some(t) => RoomTitle::parse(t)?.into_string(),
            None => current.title.clone(),
        };
        let visibility = visibility.unwrap_or(current.visibility);
        if title == current.title && visibility == current.visibility {
            // Nothing changes, so nothing is announced.
            return Ok(current);
        }
        self.limits.by_user(Limit::RoomChange, caller.user).await?;
        let update = Action::UpdateRoom { title, visibility };
        self.append(id, caller.user, update).await?;
        self.store.room(id).await?.ok_or(ChatError::RoomNotFound)
    }

    /// Joins a public group room; joining one already joined changes nothing.
    pub async fn join(&self, caller: &Caller, id: RoomId) -> ChatResult<Room> {
        let room = self.store.room(id).await?.ok_or(ChatError::RoomNotFound)?;
        // Load the feed before the write, so the join lands in it.
        let feed = self.hub.room(id).await?;
        if feed.role_of(caller.user).is_some() {
            return Ok(room);
        }
        self.limits.by_user(Limit::RoomChange, caller.user).await?;
        if room.kind == RoomKind::Direct
            || room.visibility == Visibility::Private
            || !self.may_find(caller, &room).await?
        {
            return Err(ChatError::RoomNotFound);
        }
        self.add_member(id, caller.user, caller.user).await?;
        self.store.room(id).await?.ok_or(ChatError::RoomNotFound)
    }

    /// Adds another user to a group room. Any member may invite to a public
    /// room; only owners and admins to a private one.
    pub async fn invite(&self, caller: &Caller, id: RoomId, user: UserId) -> ChatResult<()> {
        let (_, role) = self.membership(caller, id).await?;
        let room = self.store.room(id).await?.ok_or(ChatError::RoomNotFound)?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::NotAllowed(
                "nobody can be added to a direct conversation",
            ));
        }
        if room.visibility == Visibility::Private && !role.can_manage() {
            return Err(ChatError::NotAllowed(
                "only the room's owner and admins can invite to a private room",
            ));
        }
        self.limits.by_user(Limit::Invite, caller.user).await?;
        // Only someone the inviter may reach, into a room of a community
        // the invitee belongs to; anyone else is nobody the inviter knows.
        let invitee = self.community_of(user).await?;
        let inviter = self.community_of(caller.user).await?;
        if !self.reaches(&inviter, &invitee) || !self.reaches(&Community::of_room(&room), &invitee)
        {
            return Err(ChatError::UserNotFound);
        }
        self.add_member(id, user, caller.user).await
    }

    /// Leaves a group room. Direct conversations cannot be left.
    pub async fn leave(&self, caller: &Caller, id: RoomId) -> ChatResult<()> {
        self.membership(caller, id).await?;
        let room = self.store.room(id).await?.ok_or(ChatError::RoomNotFound)?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::NotAllowed(
                "a direct conversation cannot be left",
            ));
        }
        self.limits.by_user(Limit::RoomChange, caller.user).await?;
        self.remove_member(id, caller.user).await
    }

    /// Takes `user` out of a room and announces it; nothing happens when
    /// they are not a member.
    pub(super) async fn remove_member(&self, room: RoomId, user: UserId) -> ChatResult<()> {
        // Recorded as the leaver's own event, whoever removed them.
        self.append(room, user, Action::Leave { user })
            .await
            .map(drop)
    }

    /// A page of the room's members, by name, for one of them: a big
    /// room's list is read a page at a time and searched, never sent whole.
    pub async fn members(
        &self,
        caller: &Caller,
        id: RoomId,
        page: MemberPage<'_>,
    ) -> ChatResult<MemberList> {
        let limit = page.limit.unwrap_or(MEMBERS_PAGE);
        if !(1..=MAX_MEMBERS_PAGE).contains(&limit) {
            return Err(invalid(
                "invalid_limit",
                format!("limit must be 1..={MAX_MEMBERS_PAGE}"),
            ));
        }
        let text = match page.text {
            Some(text) if !text.trim().is_empty() => Some(name_query(text)?.to_owned()),
            _ => None,
        };
        self.membership(caller, id).await?;
        let feed = self.hub.room(id).await?;
        // The count first, then the page: every join or leave the count
        // holds was committed before the page was read, so the page holds
        // it too.
        let (member_count, member_count_seq) = feed.member_count_as_of();
        // One more than asked says whether a next page exists.
        let mut members = self
            .store
            .member_page(
                id,
                MemberQuery {
                    after: page.after,
                    text,
                    limit: limit + 1,
                },
            )
            .await?;
        let next = (members.len() > limit).then(|| {
            let last = &members[limit - 1].user;
            MemberPlace {
                id: last.id,
                name: Some(last.display_name.clone()),
            }
        });
        members.truncate(limit);
        Ok(MemberList {
            members: members
                .into_iter()
                .map(|m| {
                    let online = self.hub.is_online(m.user.id);
                    (m, online)
                })
                .collect(),
            online_count: feed.online_count(),
            member_count,
            member_count_seq,
            next,
        })
    }

    /// The one direct conversation between the caller and `peer`, created
    /// if it does not exist yet; `true` when this call created it.
    pub async fn open_direct(&self, caller: &Caller, peer: UserId) -> ChatResult<(Room, bool)> {
        if peer == caller.user {
            return Err(Invalid {
                code: "invalid_peer",
                message: "a direct conversation needs another user".into(),
            }
            .into());
        }
        self.limits.by_user(Limit::OpenDirect, caller.user).await?;
        // natter's own users (the system user that signs notices) are
        // nobody to talk to, nor is anyone of another community.
        let peer_community = self.community_of(peer).await?;
        let own = self.community_of(caller.user).await?;
        if peer_community == Community::Everyone || !self.reaches(&own, &peer_community) {
            return Err(ChatError::UserNotFound);
        }
        let (store, opener, opener_name) = (
            self.store.clone(),
            caller.user,
            self.display_name(caller.user).await?,
        );
        self.commit(async move {
            let (room, event) = store
                .open_direct(opener, opener_name, peer, now_ms())
                .await?;
            let created = event.is_some();
            Ok(((room, created), event.into_iter().map(room_event).collect()))
        })
        .await
    }
}
